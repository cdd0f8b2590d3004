"""Precompute motion labels (paper Eq. 2 mask + strength) for a WebVid CSV into a parquet sidecar.

    python scripts/annotate_motion.py --csv data/toy/train.csv --video-root data/toy --out data/toy/train.motion.parquet \
        --flow dis --frames 16 --stride 4
    # 8 GPUs, one process each (torchrun sets RANK/WORLD_SIZE; or pass --shard i/n explicitly):
    torchrun --nproc_per_node 8 scripts/annotate_motion.py --csv results_10M_train.csv --video-root videos \
        --out results_10M_train.motion.parquet --flow raft_large --device cuda --batch-size 16 --workers 6

One fixed window per video (centred, --frames at --stride or --target-fps), recorded in the table; train with
``WebVidDataset(motion_labels="sidecar")`` / ``data.train_dataset.motion_labels=sidecar`` to use exactly those
frames. Reruns skip videos already labelled (kill and restart freely); shards write their own part files and the
last one to finish merges them into --out. See fyc/data/annotate.py for the table's columns and units.
"""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

from fyc.data.annotate import AnnotateConfig, annotate_motion, merge_sidecar, parse_shard
from fyc.motion import FLOW_BACKENDS


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--csv", type=Path, required=True, help="WebVid CSV (videoid, page_dir, ...)")
    parser.add_argument("--video-root", type=Path, default=None, help="folder the video paths are relative to "
                        "(default: the CSV's folder)")
    parser.add_argument("--path-template", default="{page_dir}/{videoid}.mp4")
    parser.add_argument("--out", type=Path, required=True, help="sidecar parquet file")
    parser.add_argument("--flow", choices=FLOW_BACKENDS, default="raft_large")
    parser.add_argument("--weights", default="DEFAULT",
                        help="RAFT weights: DEFAULT (torchvision weights API), a local state-dict file, or 'none' "
                             "(random weights: speed tests only, the labels are meaningless)")
    parser.add_argument("--allow-fallback", action="store_true",
                        help="if RAFT weights cannot be loaded, warn and use farneback instead of failing")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--frames", type=int, default=16, help="frames per window (= training num_frames)")
    parser.add_argument("--stride", type=int, default=None, help="frame stride of the window (default 4)")
    parser.add_argument("--target-fps", type=float, default=None, help="stride = round(native fps / this)")
    parser.add_argument("--flow-short-side", type=int, default=256, help="flow resolution (short side, px)")
    parser.add_argument("--mask-short-side", type=int, default=64, help="stored mask grid (short side, px)")
    parser.add_argument("--reference-short-side", type=int, default=512, help="strength unit: px per frame pair "
                        "at this short side")
    parser.add_argument("--start", choices=["center", "first"], default="center",
                        help="window position in the video")
    parser.add_argument("--mask-file", default=None, metavar="TEMPLATE",
                        help="object masks instead of the Eq. 2 flow mask: an image per video (white = the moving "
                        "object in the first frame), path relative to --video-root formatted with the row's columns, "
                        "e.g. '{page_dir}/{videoid}_mask.png' (the toy world's); needs --start first")
    parser.add_argument("--shard", default=None, help="i/n (default: RANK/WORLD_SIZE from torchrun, else 0/1)")
    parser.add_argument("--batch-size", type=int, default=8, help="clips per flow batch")
    parser.add_argument("--workers", type=int, default=2, help="decoding processes")
    parser.add_argument("--flush-every", type=int, default=256, help="clips per part file")
    parser.add_argument("--retry-failed", action="store_true", help="redo rows stored with a failure status")
    parser.add_argument("--limit", type=int, default=None, help="stop after this many clips (smoke runs)")
    parser.add_argument("--merge-only", action="store_true", help="only merge the part files into --out")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    if args.merge_only:
        print(f"merged -> {merge_sidecar(args.out)}")
        return 0
    stride = args.stride if args.stride is not None or args.target_fps is not None else 4
    weights = None if str(args.weights).lower() == "none" else args.weights
    config = AnnotateConfig(num_frames=args.frames, frame_stride=stride, target_fps=args.target_fps,
                            flow=args.flow, weights=weights, allow_fallback=args.allow_fallback, device=args.device,
                            flow_short_side=args.flow_short_side, mask_short_side=args.mask_short_side,
                            reference_short_side=args.reference_short_side, start=args.start,
                            mask_file=args.mask_file)
    shard = parse_shard(args.shard)
    result = annotate_motion(args.csv, args.out, config, video_root=args.video_root,
                             path_template=args.path_template, shard=shard, batch_size=args.batch_size,
                             num_workers=args.workers, flush_every=args.flush_every, retry_failed=args.retry_failed,
                             limit=args.limit, progress=not args.no_progress)
    print(f"shard {shard[0]}/{shard[1]}: {result.processed} labelled with {result.backend} "
          f"({result.clips_per_s:.2f} clips/s), {result.done} already done, skipped {dict(result.skipped)}"
          + (f"; merged -> {result.merged}" if result.merged else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
