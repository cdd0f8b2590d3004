"""Write a WebVid CSV (+ optional motion sidecar) as WebDataset tar shards for streaming (fyc.data.shards).

    python scripts/make_webvid_shards.py --csv results_10M_train.csv --video-root videos --out shards/ \
        --motion-sidecar results_10M_train.motion.parquet --maxcount 1000

Train on them with ``data=webvid_shards data.train_dataset.shards=shards/``. Use many more shards than readers
(nodes x GPUs x dataloader workers), ideally a multiple of that count (with ``equal_length: drop`` readers then get
equal shard counts, so little is dropped); smaller shards shuffle better (a shard is read in CSV order). Labels: the
CSV's caption and ``short_prompt`` columns and the ``--motion-sidecar`` entry go into each sample's json.
"""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

from fyc.data.shards import write_shards


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--csv", type=Path, required=True)
    parser.add_argument("--video-root", type=Path, default=None)
    parser.add_argument("--path-template", default="{page_dir}/{videoid}.mp4")
    parser.add_argument("--out", type=Path, required=True, help="output folder (shard-*.tar + index.json)")
    parser.add_argument("--motion-sidecar", type=Path, default=None, help="labels from scripts/annotate_motion.py")
    parser.add_argument("--maxcount", type=int, default=1000, help="samples per shard")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    index = write_shards(args.csv, args.out, video_root=args.video_root, path_template=args.path_template,
                         motion_sidecar=args.motion_sidecar, maxcount=args.maxcount)
    print(f"{index['total']} samples in {len(index['shards'])} shards -> {args.out} (skipped {index['skipped']})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
