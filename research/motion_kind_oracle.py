"""How well does the motion-kind classifier (fyc/eval/motion_kind.py) read the *true* toy videos?

Renders held-out toy scenes with one moving object of each kind (fyc.toy.world, no files), cuts and resizes
them as the toy study's benchmark does, estimates flow, classifies the moving object's motion from its frame-0
mask, and prints the confusion matrix (rows = true kind, columns = measured). Its accuracy is the ceiling a model's
motion-kind accuracy can reach on that benchmark.

    python research/motion_kind_oracle.py                       # 40 scenes per kind, 64-px world, 8 frames at 32 px
    python research/motion_kind_oracle.py --per-kind 10 --out outputs/motion_kind_oracle.md
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np
from tqdm.auto import tqdm

from fyc.toy.world import MOTION_KINDS, ToyWorldConfig, render_toy_video
from fyc.eval.motion_kind import DEFAULT_KIND_DILATE_PX, STILL, classify_motion_kind
from fyc.eval.masks import resize_mask
from fyc.motion import FlowEstimator


def confusion_table(pairs: list[tuple[str, str]]) -> str:
    """Markdown confusion matrix of (true, measured) kinds with per-kind and overall accuracy."""
    measured_kinds = list(MOTION_KINDS) + [STILL]
    lines = ["| true \\ measured | " + " | ".join(measured_kinds) + " | accuracy |",
             "|---|" + "---:|" * (len(measured_kinds) + 1)]
    for kind in MOTION_KINDS:
        row = [m for t, m in pairs if t == kind]
        if not row:
            continue
        counts = [sum(m == k for m in row) for k in measured_kinds]
        accuracy = counts[MOTION_KINDS.index(kind)] / len(row)
        lines.append(f"| {kind} | " + " | ".join(map(str, counts)) + f" | {accuracy:.3f} |")
    overall = np.mean([t == m for t, m in pairs])
    lines.append(f"\noverall accuracy {overall:.3f} over {len(pairs)} videos")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--per-kind", type=int, default=40, help="scenes per motion kind")
    parser.add_argument("--first-seed", type=int, default=1_000_000, help="the toy study's held-out seeds")
    parser.add_argument("--resolution", type=int, default=64, help="toy world resolution (px)")
    parser.add_argument("--video-frames", type=int, default=16, help="frames per rendered toy video")
    parser.add_argument("--frames", type=int, default=8, help="frames scored (the benchmark's first 8)")
    parser.add_argument("--size", type=int, default=32, help="side the benchmark scores at (the generated size)")
    parser.add_argument("--flow", default="dis", help="flow backend (fyc.motion.FlowEstimator)")
    parser.add_argument("--dilate-px", type=int, default=DEFAULT_KIND_DILATE_PX)
    parser.add_argument("--upsample", type=int, default=1,
                        help="estimate flow on frames enlarged this many times (bicubic; flow scaled back)")
    parser.add_argument("--out", type=Path, help="also write the table here (markdown)")
    args = parser.parse_args()

    flow_estimator = FlowEstimator(args.flow)
    pairs = []
    for index, kind in enumerate(tqdm(MOTION_KINDS, desc="kinds")):
        config = ToyWorldConfig(resolution=args.resolution, num_frames=args.video_frames, motion_kinds=(kind,),
                                min_moving=1, max_moving=1)
        for k in range(args.per_kind):
            video = render_toy_video(args.first_seed + index * 100_000 + k, config)
            frames = np.stack([cv2.resize(f, (args.size, args.size), interpolation=cv2.INTER_AREA)
                               for f in video.frames[:args.frames]])
            mask = resize_mask(video.motion_mask, (args.size, args.size))
            if args.upsample > 1:  # flow estimators' fixed patch sizes vs small objects: does enlarging help?
                side = args.size * args.upsample
                frames = np.stack([cv2.resize(f, (side, side), interpolation=cv2.INTER_CUBIC) for f in frames])
                flow = flow_estimator(frames)[..., ::args.upsample, ::args.upsample] / args.upsample
            else:
                flow = flow_estimator(frames)
            pairs.append((kind, classify_motion_kind(flow, mask, args.dilate_px)))
    table = confusion_table(pairs)
    print(table)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        command = " ".join(["python research/motion_kind_oracle.py", *sys.argv[1:]])
        args.out.write_text(f"`{command}`\n\n" + table)


if __name__ == "__main__":
    main()
