"""Region masks for the regional metrics: validation, resizing, dilation, and following a region along its flow.

Shared by :mod:`fyc.eval.regional`, :mod:`fyc.eval.fidelity` and :mod:`fyc.eval.motion_kind` (none of which imports
the others for these). Masks are bool ``(H, W)`` (True = the clicked object); flow is float ``(F-1, 2, H, W)`` in
pixels per consecutive frame pair (channel 0 = dx rightwards, 1 = dy downwards) on the grid of the earlier frame.

Where the region is at frame t (``region=``, :data:`REGION_MODES`):
- ``"first_frame"`` — the given mask at every frame (the clicked pixels in the input image);
- ``"swept"`` — the mask translated rigidly along its own mean flow: ``d_{t+1} = d_t + v_t`` with ``v_t`` the mean
  flow over the region at frame t; follows translation and shaking, not rotation or scaling;
- ``"tracked"`` — every pixel carried along its own flow: coverage ``c_0`` = the mask; ``c_{t+1}`` at a pixel = the
  share of what lands there (bilinear forward splatting of all pixels along flow t) that came from the region;
  region = ``c_t >= 0.5`` with pinholes closed. Follows translation, rotation, growth, shrinking and moderate
  deformation, with the flow estimator's errors.
"""
from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np
import torch

REGION_MODES = ("first_frame", "swept", "tracked")


def check_region_mask(mask, size: tuple[int, int]) -> np.ndarray:
    """Validate a region mask against the frame size ``(H, W)`` → bool numpy ``(H, W)``."""
    mask = np.asarray(mask.cpu() if torch.is_tensor(mask) else mask)
    if mask.ndim == 3 and mask.shape[0] == 1:
        mask = mask[0]
    if mask.shape != tuple(size):
        raise ValueError(f"region mask has shape {mask.shape}, frames are {tuple(size)}; "
                         "resize it first with fyc.eval.masks.resize_mask")
    return mask.astype(bool)


def resize_mask(mask, size: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize of a bool/{0,1} mask ``(h, w)`` to ``size = (H, W)`` → bool ``(H, W)``."""
    mask = np.asarray(mask.cpu() if torch.is_tensor(mask) else mask).astype(np.uint8)
    return cv2.resize(mask, (size[1], size[0]), interpolation=cv2.INTER_NEAREST).astype(bool)


def dilate_mask(mask: np.ndarray, dilate_px: int) -> np.ndarray:
    """Grow a bool ``(H, W)`` mask by ``dilate_px`` pixels (disk-shaped) → bool ``(H, W)``."""
    if dilate_px < 0:
        raise ValueError(f"dilate_px must be >= 0, got {dilate_px}")
    if dilate_px == 0:
        return mask.copy()
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * dilate_px + 1, 2 * dilate_px + 1))
    return cv2.dilate(mask.astype(np.uint8), kernel).astype(bool)


def translate_mask(mask: np.ndarray, shift: Sequence[float]) -> np.ndarray:
    """Translate a bool ``(H, W)`` mask by ``shift = (dx, dy)`` px (sub-pixel: bilinear coverage >= 0.5; what
    leaves the frame is dropped) → bool ``(H, W)``."""
    h, w = mask.shape
    matrix = np.array([[1.0, 0.0, shift[0]], [0.0, 1.0, shift[1]]], dtype=np.float64)
    moved = cv2.warpAffine(mask.astype(np.float32), matrix, (w, h), flags=cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_CONSTANT, borderValue=0.0)
    return moved >= 0.5


def flow_array(flow) -> np.ndarray:
    """Flow as float64 numpy ``(F-1, 2, H, W)``; any other shape is a ValueError."""
    flow = np.asarray(flow.detach().cpu() if torch.is_tensor(flow) else flow, dtype=np.float64)
    if flow.ndim != 4 or flow.shape[1] != 2:
        raise ValueError(f"flow must be (F-1, 2, H, W), got shape {flow.shape}")
    return flow


def nonempty_region(flow: np.ndarray, region_mask) -> np.ndarray:
    """The mask checked against the flow's frame size and for being non-empty → bool ``(H, W)``."""
    region = check_region_mask(region_mask, flow.shape[-2:])
    if not region.any():
        raise ValueError("region mask is empty")
    return region


def splat(coverage: np.ndarray, flow_pair: np.ndarray) -> np.ndarray:
    """Forward-warp float coverage ``(H, W)`` along ``flow_pair`` ``(2, H, W)`` with bilinear splatting (mass kept,
    except what leaves the frame) → float ``(H, W)``."""
    h, w = coverage.shape
    ys, xs = np.nonzero(coverage > 0)
    mass = coverage[ys, xs]
    tx, ty = xs + flow_pair[0, ys, xs], ys + flow_pair[1, ys, xs]
    x0, y0 = np.floor(tx).astype(np.int64), np.floor(ty).astype(np.int64)
    fx, fy = tx - x0, ty - y0
    out = np.zeros((h, w), dtype=np.float64)
    for dx, dy, weight in ((0, 0, (1 - fx) * (1 - fy)), (1, 0, fx * (1 - fy)), (0, 1, (1 - fx) * fy), (1, 1, fx * fy)):
        xx, yy = x0 + dx, y0 + dy
        keep = (xx >= 0) & (xx < w) & (yy >= 0) & (yy < h)
        np.add.at(out, (yy[keep], xx[keep]), (mass * weight)[keep])
    return out


def region_per_frame(flow, region_mask, region: str = "tracked") -> np.ndarray:
    """Where the region is at each frame under ``region`` ∈ :data:`REGION_MODES` (module doc).

    Args:
        flow: float ``(F-1, 2, H, W)`` px per pair.
        region_mask: bool ``(H, W)``, the region at frame 0.

    Returns:
        bool ``(F, H, W)``; frame 0 is the mask. A region that has left the frame is empty from then on.
    """
    if region not in REGION_MODES:
        raise ValueError(f"region must be one of {REGION_MODES}, got {region!r}")
    flow = flow_array(flow)
    mask = nonempty_region(flow, region_mask)
    frames = [mask]
    if region == "first_frame":
        return np.stack(frames * (flow.shape[0] + 1))
    if region == "swept":
        offset = np.zeros(2)
        for pair in flow:
            current = frames[-1]
            if current.any():
                offset = offset + pair[:, current].mean(axis=1)
                frames.append(translate_mask(mask, offset))
            else:
                frames.append(current)
        return np.stack(frames)
    coverage = mask.astype(np.float64)
    ones = np.ones_like(coverage)
    for pair in flow:
        # Share of what lands on each pixel that came from the region (object and background both splatted), so
        # a growing region stays at coverage 1 instead of thinning; pixels nothing lands on (the gaps a spreading
        # object leaves between its splats) are filled by a 3x3 closing.
        landed = splat(ones, pair)
        coverage = np.where(landed > 1e-6, splat(coverage, pair) / np.maximum(landed, 1e-6), 0.0)
        current = cv2.morphologyEx((coverage >= 0.5).astype(np.uint8), cv2.MORPH_CLOSE, np.ones((3, 3), np.uint8))
        frames.append(current.astype(bool))
        coverage = np.maximum(coverage, current)
    return np.stack(frames)


def swept_region(flow, region_mask) -> np.ndarray:
    """∪_t of the ``"swept"`` region → bool ``(H, W)``, a superset of ``region_mask``."""
    return region_per_frame(flow, region_mask, "swept").any(axis=0)


def tracked_region(flow, region_mask) -> np.ndarray:
    """∪_t of the ``"tracked"`` region → bool ``(H, W)``, a superset of ``region_mask``."""
    return region_per_frame(flow, region_mask, "tracked").any(axis=0)


def allowed_region(flow, region_mask, region: str = "first_frame", dilate_px: int = 0) -> np.ndarray:
    """∪_t of ``region``'s per-frame region, dilated by ``dilate_px`` → bool ``(H, W)``."""
    return dilate_mask(region_per_frame(flow, region_mask, region).any(axis=0), dilate_px)
