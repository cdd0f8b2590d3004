"""Score the toy study's oracle (the true held-out toy videos, cut and resized as the toy benchmark cuts them) with
evaluate.py's metric settings: the row every metric must read as the truth (leakage ~0, strength ρ ~1, kind ~1).

    python research/rescore_oracle.py --out outputs/oracle --val-videos 48                # the benchmark's 32 px
    python research/rescore_oracle.py --out outputs/oracle64 --val-videos 48 --resolution 64

Builds the held-out split exactly as research/toy_study.py does (scripts/make_toy_webvid.py --seed 0: val seeds
from 1,000,000; 64-px world, 16 frames), the toy benchmark at ``--resolution`` (8 frames, Farneback labels), writes
the oracle videos, scores them (fyc.eval.score.score_items with configs/evaluate.yaml's metrics) and prints the
summary with n and ± SE per metric.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from omegaconf import OmegaConf

from fyc.eval.score import format_with_se, score_items
from fyc.research.toy_study import oracle_items
from fyc.toy.benchmark import build_toy_benchmark
from fyc.toy.world import ToyWorldConfig, write_toy_webvid
from fyc.eval.manifest import load_manifest

ROOT = Path(__file__).resolve().parents[1]
VAL_FIRST_SEED = 1_000_000  # make_toy_webvid.py --seed 0: the val split's first seed (SPLIT_SEED_STRIDE)
KEYS = ("motion_leakage", "strength_spearman", "motion_kind_accuracy", "direction_accuracy", "realised_strength",
        "object_speed", "background_stillness", "i1_mse")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("outputs/oracle"))
    parser.add_argument("--val-videos", type=int, default=48)
    parser.add_argument("--resolution", type=int, default=32, help="benchmark side (the generated size)")
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--label-flow", default="farneback", help="flow backend of the requested strengths")
    parser.add_argument("overrides", nargs="*", help="metric overrides, e.g. region=first_frame dilate_px=1")
    args = parser.parse_args()

    metrics = OmegaConf.load(ROOT / "configs" / "evaluate.yaml").metrics
    metrics.merge_with_dotlist(args.overrides)
    metrics.label_flow_backend = args.label_flow
    toy = args.out / "toy"
    if not (toy / "val.csv").exists():
        write_toy_webvid(toy, "val", args.val_videos, ToyWorldConfig(), first_seed=VAL_FIRST_SEED)
    manifest = build_toy_benchmark(toy, "val", args.out / "benchmark", resolution=args.resolution,
                                   num_frames=args.frames, flow_backend=args.label_flow)
    items = load_manifest(manifest)
    oracle = oracle_items(items, args.out / "oracle_videos", args.frames, (args.resolution, args.resolution))
    rows, summary, protocol = score_items(oracle, **OmegaConf.to_container(metrics, resolve=True))
    (args.out / "oracle_results.json").write_text(json.dumps({"metrics": summary, "protocol": protocol}, indent=2))
    command = " ".join(["python research/rescore_oracle.py", *sys.argv[1:]])
    lines = [f"`{command}`", "", "| metric | oracle (true videos) |", "|---|---|"]
    lines += [f"| {key} | {format_with_se(summary, key)} |" for key in KEYS if key in summary]
    if "strength_spearman" in summary:
        lines.append(f"\nstrength ρ over {summary['strength_spearman_n']} items, measured = "
                     f"{summary['strength_spearman_of']}")
    print("\n".join(lines))
    (args.out / "oracle.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
