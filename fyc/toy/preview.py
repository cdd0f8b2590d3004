"""A preview a person can see: the input with the clicked mask beside the animation, upscaled by nearest neighbour,
with the prompt written under it. uint8 in, uint8 out."""
from __future__ import annotations

from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from fyc.pipelines.visualize import side_by_side


def upscale_nearest(frames: np.ndarray, scale: int) -> np.ndarray:
    """(..., H, W, C) uint8 → (..., H*scale, W*scale, C), every pixel repeated (no blur)."""
    if scale < 1:
        raise ValueError(f"scale must be >= 1, got {scale}")
    return frames.repeat(scale, axis=-3).repeat(scale, axis=-2)


def captioned_preview(frames: np.ndarray, masks: Sequence[np.ndarray] | np.ndarray, image: np.ndarray,
                      caption: str, scale: int = 8, clicks: Sequence[Sequence[float]] = ()) -> np.ndarray:
    """[input + mask overlay | animation] upscaled ``scale``x with ``caption`` in a band below.

    frames uint8 (F, H, W, 3); masks bool (R, H, W) or (H, W); image uint8 (H, W, 3) → uint8
    (F, H*scale + band, 2*W*scale, 3), band = 3 text lines' height.
    """
    panel = upscale_nearest(side_by_side(frames, masks, image), scale)
    font = ImageFont.load_default()
    line_height = 14
    band = np.full((panel.shape[0], 3 * line_height + 8, panel.shape[2], 3), 255, np.uint8)
    text = Image.fromarray(band[0])
    draw = ImageDraw.Draw(text)
    chars_per_line = max(8, panel.shape[2] // 7)
    lines = [caption[i:i + chars_per_line] for i in range(0, len(caption), chars_per_line)][:3]
    for k, line in enumerate(lines):
        draw.text((6, 4 + k * line_height), line, fill=(0, 0, 0), font=font)
    band[:] = np.asarray(text)
    out = np.concatenate([panel, band], axis=1)
    for x, y in clicks:  # a green cross on the clicked pixel of the input panel
        cx, cy = int((x + 0.5) * scale), int((y + 0.5) * scale)
        out[:, max(0, cy - 1):cy + 2, max(0, cx - scale):cx + scale] = (0, 255, 0)
        out[:, max(0, cy - scale):cy + scale, max(0, cx - 1):cx + 2] = (0, 255, 0)
    return out
