"""Clicks → object mask. The offline fallback segmenter: colour region growing from the clicked pixels.

SAM (``transformers.SamModel``) is the real segmenter for natural images; this fallback needs no weights and is
exact on flat-coloured objects such as the toy world's, so it is what the toy demo uses. Callers should report
which segmenter produced a mask.
"""
from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np


def check_clicks(clicks: Sequence[Sequence[float]], height: int, width: int) -> list[tuple[int, int]]:
    """Validate (x, y) pixel clicks against the image size; returns integer clicks."""
    if len(clicks) == 0:
        raise ValueError("clicks: at least one (x, y) click is needed")
    out = []
    for click in clicks:
        if len(click) != 2:
            raise ValueError(f"clicks: each click is (x, y), got {click!r}")
        x, y = (int(round(float(v))) for v in click)
        if not (0 <= x < width and 0 <= y < height):
            raise ValueError(f"clicks: ({x}, {y}) is outside the image; x must be in [0, {width - 1}], "
                             f"y in [0, {height - 1}]")
        out.append((x, y))
    return out


def region_grow_mask(image: np.ndarray, clicks: Sequence[Sequence[float]], tolerance: int = 24,
                     negative_clicks: Sequence[Sequence[float]] = ()) -> np.ndarray:
    """Flood-fill from each positive click over pixels within ``tolerance`` (per channel, 0-255) of the clicked
    colour; pixels reachable from a negative click are removed. image: uint8 (H, W, 3) → bool mask (H, W)."""
    if image.ndim != 3 or image.shape[-1] != 3 or image.dtype != np.uint8:
        raise ValueError(f"image: expected uint8 (H, W, 3), got {image.dtype} {image.shape}")
    h, w = image.shape[:2]

    def grow(points: Sequence[Sequence[float]]) -> np.ndarray:
        region = np.zeros((h, w), bool)
        for x, y in check_clicks(points, h, w):
            flood = np.zeros((h + 2, w + 2), np.uint8)
            flags = 4 | cv2.FLOODFILL_FIXED_RANGE | cv2.FLOODFILL_MASK_ONLY | (255 << 8)
            cv2.floodFill(image.copy(), flood, (x, y), 0, (tolerance,) * 3, (tolerance,) * 3, flags)
            region |= flood[1:-1, 1:-1] > 0
        return region

    mask = grow(clicks)
    if len(negative_clicks):
        mask &= ~grow(negative_clicks)
    return mask
