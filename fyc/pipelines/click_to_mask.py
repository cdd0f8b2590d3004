"""Clicks → object mask.

* :class:`SamSegmenter`: Segment Anything through ``transformers`` (``SamModel`` + ``SamProcessor``, hub id or local
  folder); positive and negative point prompts, best of the 3 multimask outputs by predicted IoU.
* :class:`RegionGrowSegmenter` / :func:`region_grow_mask`: the offline fallback (no weights), colour region growing
  from the clicked pixels; exact on flat-coloured objects such as the toy world's, so the toy demo uses it.

Every segmenter has ``name`` and ``is_fallback``; callers report ``name`` so a fallback mask is never mistaken for
SAM's. Conventions: image uint8 ``(H, W, 3)``; clicks ``(x, y)`` pixels with x in [0, W-1], y in [0, H-1];
masks bool ``(H, W)``.
"""
from __future__ import annotations

import math

from typing import Sequence

import cv2
import numpy as np


def check_clicks(clicks: Sequence[Sequence[float]], height: int, width: int, name: str = "clicks",
                 allow_empty: bool = False) -> list[tuple[int, int]]:
    """Validate (x, y) pixel clicks against the image size; returns the integer pixel each click falls in
    (``floor``: a click at 31.9 on a 32-px image is pixel 31).

    Raises ValueError naming ``name`` and the valid range: finite x in [0, width), y in [0, height)."""
    clicks = [] if clicks is None else list(clicks)
    if len(clicks) == 0 and not allow_empty:
        raise ValueError(f"{name}: at least one (x, y) click is needed")
    out = []
    for click in clicks:
        if len(click) != 2:
            raise ValueError(f"{name}: each click is (x, y), got {click!r}")
        fx, fy = (float(v) for v in click)
        if not (math.isfinite(fx) and math.isfinite(fy) and 0 <= fx < width and 0 <= fy < height):
            raise ValueError(f"{name}: ({fx:g}, {fy:g}) is outside the image ({width}x{height}); x must be in "
                             f"[0, {width - 1}], y in [0, {height - 1}] (pixels from the top-left corner; a "
                             f"fractional click such as {width - 1}.9 lies in pixel {width - 1})")
        out.append((int(math.floor(fx)), int(math.floor(fy))))
    return out


def region_grow_mask(image: np.ndarray, clicks: Sequence[Sequence[float]], tolerance: int = 24,
                     negative_clicks: Sequence[Sequence[float]] = ()) -> np.ndarray:
    """Flood-fill from each positive click over pixels within ``tolerance`` (per channel, 0-255) of the clicked
    colour; pixels reachable from a negative click are removed. image: uint8 (H, W, 3) → bool mask (H, W)."""
    if image.ndim != 3 or image.shape[-1] != 3 or image.dtype != np.uint8:
        raise ValueError(f"image: expected uint8 (H, W, 3), got {image.dtype} {image.shape}")
    h, w = image.shape[:2]

    def grow(points: Sequence[Sequence[float]], name: str) -> np.ndarray:
        region = np.zeros((h, w), bool)
        for x, y in check_clicks(points, h, w, name):
            flood = np.zeros((h + 2, w + 2), np.uint8)
            flags = 4 | cv2.FLOODFILL_FIXED_RANGE | cv2.FLOODFILL_MASK_ONLY | (255 << 8)
            cv2.floodFill(image.copy(), flood, (x, y), 0, (tolerance,) * 3, (tolerance,) * 3, flags)
            region |= flood[1:-1, 1:-1] > 0
        return region

    mask = grow(clicks, "clicks")
    if negative_clicks is not None and len(negative_clicks):
        mask &= ~grow(negative_clicks, "negative_clicks")
    return mask


def _points_and_labels(clicks, negative_clicks, height: int, width: int):
    positive = check_clicks(clicks, height, width, name="clicks")
    negative = check_clicks(negative_clicks, height, width, name="negative_clicks", allow_empty=True)
    points = [[float(x), float(y)] for x, y in positive + negative]
    labels = [1] * len(positive) + [0] * len(negative)
    return points, labels


class RegionGrowSegmenter:
    """The offline fallback segmenter (no weights): :func:`region_grow_mask`. Exact on flat-coloured objects (the
    toy world), poor on natural images — callers must report ``name`` so users know a fallback made the mask."""

    name = "region-growing fallback"
    is_fallback = True

    def __init__(self, tolerance: int = 24):
        self.tolerance = tolerance

    def __call__(self, image: np.ndarray, clicks, negative_clicks=()) -> np.ndarray:
        """image uint8 (H, W, 3); clicks / negative_clicks (x, y) pixels → bool mask (H, W)."""
        return region_grow_mask(image, clicks, self.tolerance, negative_clicks)


class SamSegmenter:
    """Segment Anything through ``transformers`` (``SamModel`` + ``SamProcessor``): positive and negative point
    prompts → 3 candidate masks (``multimask_output=True``) → the one with the highest predicted IoU.

    Build with :meth:`from_pretrained` from a hub id (e.g. ``facebook/sam-vit-base``) or a local folder holding both
    the model and the processor (``save_pretrained`` of each).
    """

    is_fallback = False

    def __init__(self, model, processor, name: str = "SAM"):
        self.model = model.eval()
        self.processor = processor
        self.name = name

    @classmethod
    def from_pretrained(cls, name_or_path: str, device: str | None = None, torch_dtype=None) -> "SamSegmenter":
        """Raises OSError naming ``name_or_path`` when the model or processor cannot be loaded."""
        from transformers import SamModel, SamProcessor

        try:
            model = SamModel.from_pretrained(name_or_path, torch_dtype=torch_dtype)
            processor = SamProcessor.from_pretrained(name_or_path)
        except (OSError, ValueError) as error:
            raise OSError(f"sam: could not load SamModel/SamProcessor from {name_or_path!r}: {error}") from error
        if device is not None:
            model = model.to(device)
        return cls(model, processor, name=f"SAM ({name_or_path})")

    def predict(self, image: np.ndarray, clicks, negative_clicks=()) -> tuple[np.ndarray, np.ndarray]:
        """All candidates: bool masks (K, H, W) and their predicted IoU scores (K,), K = 3."""
        import torch

        if image.ndim != 3 or image.shape[-1] != 3 or image.dtype != np.uint8:
            raise ValueError(f"image: expected uint8 (H, W, 3), got {image.dtype} {image.shape}")
        height, width = image.shape[:2]
        points, labels = _points_and_labels(clicks, negative_clicks, height, width)
        # One image, one prompt made of all its points: points (1, 1, N, 2), labels (1, 1, N).
        inputs = self.processor(images=image, input_points=[[points]], input_labels=[[labels]], return_tensors="pt")
        inputs = {k: v.to(self.model.device) if torch.is_tensor(v) else v for k, v in inputs.items()}
        with torch.no_grad():
            out = self.model(**{k: v for k, v in inputs.items() if k not in ("original_sizes", "reshaped_input_sizes")},
                             multimask_output=True)
        masks = self.processor.image_processor.post_process_masks(
            out.pred_masks.float().cpu(), inputs["original_sizes"].cpu(), inputs["reshaped_input_sizes"].cpu())[0]
        masks = masks.reshape(-1, height, width).numpy().astype(bool)
        scores = out.iou_scores.float().cpu().reshape(-1).numpy()
        return masks, scores

    def __call__(self, image: np.ndarray, clicks, negative_clicks=()) -> np.ndarray:
        """image uint8 (H, W, 3); clicks / negative_clicks (x, y) pixels → bool mask (H, W), best by predicted IoU."""
        masks, scores = self.predict(image, clicks, negative_clicks)
        return masks[int(np.argmax(scores))]


def load_segmenter(sam: str | None = None, device: str | None = None):
    """``sam`` = hub id or local folder of a SAM model+processor → :class:`SamSegmenter`; None, "" or
    "region-grow" → :class:`RegionGrowSegmenter` (the fallback). Loading errors are raised, never silently replaced
    by the fallback."""
    if not sam or sam == "region-grow":
        return RegionGrowSegmenter()
    return SamSegmenter.from_pretrained(sam, device=device)
