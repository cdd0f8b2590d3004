"""Measure the shipped toy models on their small fixed sets and write <model>/metrics.json (model cards).

python scripts/toy_asset_metrics.py --base assets/toy_base --random-base <toy>/components --fyc assets/toy_fyc

The same functions (fyc.toy.regression) run in tests/test_toy_base.py, which checks these values reproduce.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from fyc.toy.regression import base_denoising_loss, fyc_sample_metrics


def _update(path: Path, key: str, values: dict) -> None:
    data = json.loads(path.read_text()) if path.is_file() else {}
    data[key] = values
    path.write_text(json.dumps(data, indent=2) + "\n")
    print(f"{path}: {key} = {values}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", default=None, help="toy base folder (SD layout)")
    parser.add_argument("--random-base", default=None,
                        help="the random components it started from (its loss is recorded for comparison)")
    parser.add_argument("--fyc", default=None, help="FYC pipeline folder")
    parser.add_argument("--count", type=int, default=8, help="fixed items")
    parser.add_argument("--steps", type=int, default=10, help="sampling steps for the FYC set")
    args = parser.parse_args(argv)
    if args.base:
        start = time.time()
        values = {"count": args.count, **base_denoising_loss(args.base, args.count)}
        if args.random_base:
            values["random_init_loss_caption"] = base_denoising_loss(args.random_base, args.count)["loss_caption"]
        values["seconds"] = round(time.time() - start, 1)
        _update(Path(args.base) / "metrics.json", "fixed_set", values)
    if args.fyc:
        start = time.time()
        values = {"count": args.count, "steps": args.steps, **fyc_sample_metrics(args.fyc, args.count, args.steps)}
        values["seconds"] = round(time.time() - start, 1)
        _update(Path(args.fyc) / "metrics.json", "fixed_set", values)


if __name__ == "__main__":
    main()
