"""Mask overlays and side-by-side videos for the CLI, the app and notebooks. uint8 in, uint8 out."""
from __future__ import annotations

from typing import Sequence

import numpy as np

# One colour per region (RGB), cycled.
REGION_COLOURS = np.array([[255, 40, 40], [40, 120, 255], [40, 220, 80], [255, 200, 0], [200, 60, 255]], np.float32)


def overlay_masks(image: np.ndarray, masks: Sequence[np.ndarray] | np.ndarray, alpha: float = 0.5,
                  clicks: Sequence[Sequence[float]] = (), negative_clicks: Sequence[Sequence[float]] = ()
                  ) -> np.ndarray:
    """image uint8 (H, W, 3), masks bool (R, H, W) or (H, W) → uint8 (H, W, 3): each region tinted with its colour
    (``alpha`` in [0, 1]); positive clicks drawn as green dots, negative ones as red."""
    out = image.astype(np.float32).copy()
    masks = np.asarray(masks, bool)
    if masks.ndim == 2:
        masks = masks[None]
    for k, mask in enumerate(masks):
        colour = REGION_COLOURS[k % len(REGION_COLOURS)]
        out[mask] = (1 - alpha) * out[mask] + alpha * colour
    h, w = out.shape[:2]
    radius = max(1, min(h, w) // 64)
    for points, colour in ((clicks, (0, 255, 0)), (negative_clicks, (255, 0, 0))):
        for x, y in points:
            x, y = int(round(x)), int(round(y))
            out[max(0, y - radius):y + radius + 1, max(0, x - radius):x + radius + 1] = colour
    return out.round().clip(0, 255).astype(np.uint8)


def side_by_side(frames: np.ndarray, masks: Sequence[np.ndarray] | np.ndarray, image: np.ndarray | None = None
                 ) -> np.ndarray:
    """[input image with the mask overlay | video] per frame: frames uint8 (F, H, W, 3), masks bool (R, H, W) or
    (H, W), image uint8 (H, W, 3) (default: the first frame) → uint8 (F, H, 2W, 3)."""
    overlay = overlay_masks(frames[0] if image is None else image, masks)
    overlay = np.broadcast_to(overlay, frames.shape)
    return np.concatenate([overlay, frames], axis=2)
