"""Write toy-world train/val(/test) splits in WebVid format (see data/README.md).

    python scripts/make_toy_webvid.py --out data/toy --train 200 --val 16 --seed 0 --resolution 64 --frames 16

Split k of (train, val, test) uses seeds ``seed + k * SPLIT_SEED_STRIDE + i``: disjoint ranges, and growing one
split never changes another.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from fyc.toy.world import MOTION_KINDS, ToyWorldConfig, write_toy_webvid

SPLIT_SEED_STRIDE = 1_000_000


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("data/toy"), help="output root")
    parser.add_argument("--train", type=int, default=200, help="number of training videos")
    parser.add_argument("--val", type=int, default=16, help="number of validation videos")
    parser.add_argument("--test", type=int, default=0, help="number of test videos")
    parser.add_argument("--seed", type=int, default=0, help="first seed of the train split")
    parser.add_argument("--resolution", type=int, default=64)
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--fps", type=int, default=8)
    parser.add_argument("--min-objects", type=int, default=2)
    parser.add_argument("--max-objects", type=int, default=3)
    parser.add_argument("--min-moving", type=int, default=1)
    parser.add_argument("--max-moving", type=int, default=1)
    parser.add_argument("--motion-kinds", nargs="+", default=list(MOTION_KINDS), choices=MOTION_KINDS)
    parser.add_argument("--speed-min", type=float, default=0.5, help="px/frame")
    parser.add_argument("--speed-max", type=float, default=3.0, help="px/frame")
    parser.add_argument("--balanced-translation", action="store_true",
                        help="place translating objects independently of their direction (ToyWorldConfig)")
    parser.add_argument("--workers", type=int, default=4,
                        help="rendering+encoding processes (more than cores helps: encoder start-up waits)")
    args = parser.parse_args(argv)

    config = ToyWorldConfig(resolution=args.resolution, num_frames=args.frames, fps=args.fps,
                            min_objects=args.min_objects, max_objects=args.max_objects, min_moving=args.min_moving,
                            max_moving=args.max_moving, motion_kinds=tuple(args.motion_kinds),
                            speed_range=(args.speed_min, args.speed_max),
                            balanced_translation=args.balanced_translation)
    for k, (split, count) in enumerate([("train", args.train), ("val", args.val), ("test", args.test)]):
        if count > 0:
            csv_path = write_toy_webvid(args.out, split, count, config, first_seed=args.seed + k * SPLIT_SEED_STRIDE,
                                        num_workers=args.workers)
            print(f"{split}: {count} videos -> {csv_path}")


if __name__ == "__main__":
    main()
