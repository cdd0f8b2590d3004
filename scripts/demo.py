"""The toy-world demo behind `make demo`: data → train → animate a clicked held-out object → evaluate.

Every step is a documented command of its own; this script only runs them in order and prints them.
Ends with two lines: `video: <mp4>` and `metrics: <results.json>`.
"""
import argparse
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

from fyc.steps import ROOT, run  # noqa: E402  (one documented step: echo it, run it, stop on failure)


def printed(output: str, key: str) -> str:
    for line in output.splitlines():
        if line.startswith(f"{key}: "):
            return line.split(": ", 1)[1].strip()
    raise SystemExit(f"expected a '{key}: <path>' line in the step's output")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="outputs/demo")
    parser.add_argument("--train-videos", type=int, default=160)
    parser.add_argument("--val-videos", type=int, default=8)
    parser.add_argument("--steps", type=int, default=600, help="training steps")
    args = parser.parse_args()
    out = (ROOT / args.out).resolve()
    toy = out / "toy"
    py = sys.executable

    run([py, "scripts/make_toy_webvid.py", "--out", str(toy), "--train", str(args.train_videos),
         "--val", str(args.val_videos), "--seed", "0"])
    run([py, "scripts/make_toy_components.py", "--out", str(toy / "components")])
    train_dir = out / "train"
    train_out = run([py, "train.py", "experiment=toy", f"paths.toy_root={toy}", f"trainer.max_steps={args.steps}",
                     f"hydra.run.dir={train_dir}"])
    pipeline_dir = printed(train_out, "pipeline_dir")
    bench_out = run([py, "scripts/make_toy_benchmark.py", "--toy-root", str(toy), "--split", "val",
                     "--out", str(toy / "benchmark")])
    manifest = Path(printed(bench_out, "manifest"))

    # Click the centre of the first held-out item's moving object, as a user would.
    first = json.loads(manifest.read_text().splitlines()[0])
    mask = np.asarray(Image.open(manifest.parent / first["mask"]).convert("L")) > 0
    ys, xs = np.nonzero(mask)
    pick = np.argmin((xs - xs.mean()) ** 2 + (ys - ys.mean()) ** 2)  # an object pixel nearest the centroid
    video = out / "animation.mp4"
    run([py, "scripts/animate.py", "--model", pipeline_dir, "--image", str(manifest.parent / first["image"]),
         "--click", f"{xs[pick]},{ys[pick]}", "--prompt", first["prompt"], "--strength", str(first["strength"]),
         "--frames", "8", "--out", str(video), "--side-by-side"])
    eval_out = run([py, "evaluate.py", "mode=all", f"manifest={manifest}", f"pipeline_dir={pipeline_dir}",
                    f"hydra.run.dir={out / 'eval'}", f"output_dir={out / 'eval'}"])
    print(f"\nvideo: {video}")
    print(f"metrics: {printed(eval_out, 'results')}")


if __name__ == "__main__":
    main()
