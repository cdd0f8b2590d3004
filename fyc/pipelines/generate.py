"""Batch generation for evaluation: a manifest in, one video file per item out (samples to disk, then score)."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm.auto import tqdm

from fyc.data.video_io import write_video
from fyc.eval.manifest import ManifestItem
from fyc.eval.paired import SWEEP_KEY
from fyc.pipelines.click_to_mask import region_grow_mask


def load_image_uint8(path: str | Path) -> np.ndarray:
    """RGB uint8 (H, W, 3)."""
    return np.asarray(Image.open(path).convert("RGB"))


def item_mask(item: ManifestItem, image: np.ndarray) -> np.ndarray:
    """bool (H, W): the manifest's mask file, or region growing from its clicks (offline fallback segmenter)."""
    if item.mask is not None:
        mask = np.asarray(Image.open(item.mask).convert("L")) > 0
        if mask.shape != image.shape[:2]:
            raise ValueError(f"{item.id}: mask {item.mask} is {mask.shape}, image is {image.shape[:2]}")
        return mask
    return region_grow_mask(image, item.clicks)


def item_seeds(items: list[ManifestItem], seed: int = 0) -> list[int]:
    """Sampling seed of each item: ``seed + k`` for the k-th item, except that the rows of one strength sweep
    (same ``sweep_of``, :func:`fyc.research.toy_study.strength_sweep_items`) all take the seed of the sweep's first row,
    so that only the requested strength differs between them (otherwise the per-item strength Spearman would also
    measure the seed's noise)."""
    first_row: dict[str, int] = {}
    seeds = []
    for k, item in enumerate(items):
        group = item.extra.get(SWEEP_KEY)
        seeds.append(seed + (k if group is None else first_row.setdefault(str(group), k)))
    return seeds


#: keys added to each generated item's ``extra`` (written to generated.jsonl): what the video was sampled with
USED_KEYS = ("strength_used", "strength_reason", "frame_stride_used", "fps")


def generate_videos(pipeline, items: list[ManifestItem], out_dir: str | Path, num_frames: int = 16,
                    num_inference_steps: int = 25, guidance_scale: float = 7.5, seed: int = 0,
                    fps: float | None = None, guidance_interval=None, strength: float | None = None,
                    frame_stride: float | None = None) -> list[ManifestItem]:
    """Animate every item; writes ``<out_dir>/<id>.mp4`` (near-lossless yuv444p, so scoring sees what the model
    made) and returns the items with ``video`` set and :data:`USED_KEYS` in ``extra``. Item k uses seed
    ``seed + k``, the rows of a strength sweep their first row's (:func:`item_seeds`). ``guidance_interval``: the
    pipeline's ``(t_min, t_max)`` (None: guidance at every step).

    strength: for items without their own; None → the pipeline's default (the training median recorded in the
    export's training contract). frame_stride: None → the contract's training stride (stride-conditioned models).
    fps: of the written videos; None → the training clips' effective fps (``pipeline.default_fps``)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    pipeline.set_progress_bar_config(disable=True)
    done = []
    for item, item_seed in zip(tqdm(items, desc="generate", unit="video"), item_seeds(items, seed)):
        image = load_image_uint8(item.image)
        mask = item_mask(item, image)
        generator = torch.Generator().manual_seed(item_seed)
        out = pipeline(image, mask=mask, prompt=item.prompt,
                       strength=item.strength if item.strength is not None else strength, num_frames=num_frames,
                       num_inference_steps=num_inference_steps, guidance_scale=guidance_scale,
                       guidance_interval=None if guidance_interval is None else tuple(guidance_interval),
                       frame_stride=frame_stride, generator=generator)
        item_fps = float(fps) if fps is not None else float(getattr(out, "fps", None) or 8.0)
        video = write_video(out_dir / f"{item.id}.mp4", (out.frames[0] * 255).round().astype(np.uint8), fps=item_fps,
                            pixel_format="yuv444p")
        used = {"strength_used": (getattr(out, "strengths", None) or [None])[0],
                "strength_reason": getattr(out, "strength_reason", None),
                "frame_stride_used": getattr(out, "frame_stride", None), "fps": item_fps}
        done.append(dataclasses.replace(item, video=str(video), extra={**item.extra, **used}))
    return done
