"""The toy benchmark: held-out toy videos → an evaluation manifest with ground truth.

Each item: the first frame (PNG, the image to animate), the moving object's first-frame mask (PNG, what a click
would select), the short prompt, the requested strength = the motion label of the true video computed exactly
as training labels are (same flow backend, frames and resolution), the true video as ``reference_video``, and the
truth (motion kind, direction, speed in px/frame at the toy world's resolution) as extra fields.
"""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from fyc.toy.world import read_toy_truth
from fyc.data.video_io import read_video
from fyc.eval.manifest import ManifestItem, write_manifest
from fyc.motion import FlowEstimator, motion_label_from_flow


def build_toy_benchmark(toy_root: str | Path, split: str, out_dir: str | Path, resolution: int = 32,
                        num_frames: int = 8, frame_stride: int = 1, flow_backend: str = "farneback",
                        reference_short_side: int | None = None) -> Path:
    """Write ``<out_dir>/benchmark.jsonl`` plus ``images/`` and ``masks/``; returns the manifest path."""
    toy_root, out_dir = Path(toy_root), Path(out_dir)
    (out_dir / "images").mkdir(parents=True, exist_ok=True)
    (out_dir / "masks").mkdir(parents=True, exist_ok=True)
    csv_path = toy_root / f"{split}.csv"
    if not csv_path.is_file():
        raise FileNotFoundError(f"no toy split CSV at {csv_path} (run scripts/make_toy_webvid.py first)")
    flow = FlowEstimator(flow_backend)
    items = []
    for row in tqdm(list(csv.DictReader(csv_path.open())), desc="toy benchmark", unit="video"):
        folder = toy_root / row["page_dir"]
        truth = read_toy_truth(folder / f"{row['videoid']}.json")
        frames = read_video(folder / f"{row['videoid']}.mp4", range(0, num_frames * frame_stride, frame_stride),
                            size=(resolution, resolution))
        label = motion_label_from_flow(flow(frames), reference_short_side=reference_short_side)
        mask = Image.fromarray(truth["motion_mask"].astype(np.uint8) * 255)
        mask = mask.resize((resolution, resolution), Image.NEAREST)
        image_path = out_dir / "images" / f"{row['videoid']}.png"
        mask_path = out_dir / "masks" / f"{row['videoid']}.png"
        Image.fromarray(frames[0]).save(image_path)
        mask.save(mask_path)
        moving = [o for o in truth["objects"] if o["moving"]]
        extra = {"gt_kind": moving[0]["kind"], "gt_direction": moving[0].get("direction"),
                 "gt_speed_px_per_frame": moving[0]["speed_px_per_frame"] * resolution / truth["resolution"] * frame_stride,
                 "num_frames": num_frames, "frame_stride": frame_stride} if moving else {}
        items.append(ManifestItem(id=row["videoid"], image=str(image_path), mask=str(mask_path),
                                  prompt=row["short_prompt"], strength=round(label.strength, 4),
                                  caption=row["name"], reference_video=str(folder / f"{row['videoid']}.mp4"),
                                  extra=extra))
    return write_manifest(out_dir / "benchmark.jsonl", items)
