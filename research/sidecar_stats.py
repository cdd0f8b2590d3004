"""Summaries of motion sidecars (scripts/annotate_motion.py): rows per status, mask coverage and strength spread.

    python research/sidecar_stats.py outputs/toy_study/toy/train.object.motion.parquet outputs/toy_study/toy/train.motion.parquet

Prints a markdown table (one row per sidecar), e.g. to compare the Eq. 2 flow mask with object masks on the same
videos (docs/results.md), or to check a WebVid shard's labels before training.
"""
from __future__ import annotations

import argparse

from fyc.data.annotate import read_sidecar_metadata, sidecar_stats


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sidecars", nargs="+", help="sidecar parquet files")
    args = parser.parse_args(argv)
    print("| sidecar | mask | ok / rows | mask coverage mean (p10, median, p90) | strength mean (p10, median, p90) |")
    print("|---|---|---:|---:|---:|")
    for path in args.sidecars:
        meta, stats = read_sidecar_metadata(path), sidecar_stats(path)
        mask = meta.get("mask_file") or f"Eq. 2 flow ({meta.get('flow_backend')})"
        cells = []
        for key in ("mask_coverage", "strength"):
            s = stats[key]
            cells.append(f"{s['mean']:.3f} ({s['p10']:.3f}, {s['median']:.3f}, {s['p90']:.3f})" if s else "–")
        print(f"| {path} | {mask} | {stats['ok']} / {stats['rows']} | {cells[0]} | {cells[1]} |")


if __name__ == "__main__":
    main()
