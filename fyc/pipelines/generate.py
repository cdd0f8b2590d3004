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
    so that only the requested strength differs between them (before 2026-12-03 each row had its own seed, and
    the per-item strength Spearman also measured the seed's noise)."""
    first_row: dict[str, int] = {}
    seeds = []
    for k, item in enumerate(items):
        group = item.extra.get(SWEEP_KEY)
        seeds.append(seed + (k if group is None else first_row.setdefault(str(group), k)))
    return seeds


def generate_videos(pipeline, items: list[ManifestItem], out_dir: str | Path, num_frames: int = 16,
                    num_inference_steps: int = 25, guidance_scale: float = 7.5, seed: int = 0,
                    fps: float = 8.0, guidance_interval=None) -> list[ManifestItem]:
    """Animate every item; writes ``<out_dir>/<id>.mp4`` (near-lossless yuv444p, so scoring sees what the model
    made) and returns the items with ``video`` set. Item k uses seed ``seed + k``, the rows of a strength sweep
    their first row's (:func:`item_seeds`). ``guidance_interval``: the
    pipeline's ``(t_min, t_max)`` (None: guidance at every step)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    pipeline.set_progress_bar_config(disable=True)
    done = []
    for item, item_seed in zip(tqdm(items, desc="generate", unit="video"), item_seeds(items, seed)):
        image = load_image_uint8(item.image)
        mask = item_mask(item, image)
        generator = torch.Generator().manual_seed(item_seed)
        frames = pipeline(image, mask=mask, prompt=item.prompt, strength=item.strength, num_frames=num_frames,
                          num_inference_steps=num_inference_steps, guidance_scale=guidance_scale,
                          guidance_interval=None if guidance_interval is None else tuple(guidance_interval),
                          generator=generator).frames[0]
        video = write_video(out_dir / f"{item.id}.mp4", (frames * 255).round().astype(np.uint8), fps=fps,
                            pixel_format="yuv444p")
        done.append(dataclasses.replace(item, video=str(video)))
    return done
