"""Mask-aware motion metrics: did the requested region move, how much, which way, and did anything else move?

No peer ships these (peer-codebases.md §10.4). Inputs are a video uint8 ``(F, H, W, 3)``, a region mask bool
``(H, W)`` (True = the clicked object, allowed to move) and optical flow from :class:`fyc.motion.FlowEstimator`
(float ``(F-1, 2, H, W)``, pixels per consecutive frame pair, channel 0 = dx rightwards, 1 = dy downwards).
The region can be dilated by ``dilate_px`` to forgive boundary pixels (flow estimators smear motion a few pixels
past an object's edge). In :func:`regional_motion_metrics` the *allowed region* (below), dilated, is used by the
metrics that judge motion *outside* the region (``motion_leakage``, ``out_region_magnitude``, ``motion_precision``,
``background_stillness``); the metrics of the region's own motion (``in_region_magnitude``, ``direction_*``) use
the mask as given, since a ring of still background around it would only dilute them.

Allowed region (``region=``, :data:`REGION_MODES`; all three keep the same flow and dilation):
- ``"first_frame"`` — the given mask itself (the clicked object in the input image): a strict "nothing may move
  outside the clicked pixels" reading. An object that moves correctly leaves it, so its own motion counts as
  leakage (true toy videos, 32 px, Farneback, ``dilate_px=1``: ≈ 0.35).
- ``"swept"`` — the area the clicked object sweeps if it moves rigidly with its own measured mean motion:
  ``M_0`` = the mask; for each pair t, ``v_t`` = mean flow vector over ``M_t`` (where the object is at frame t),
  ``d_{t+1} = d_t + v_t``, ``M_{t+1}`` = the mask translated by ``d_{t+1}`` (bilinear, coverage >= 0.5);
  allowed = ∪_t M_t (:func:`swept_region`). Follows translation and shaking; rotation, scaling or deformation
  that leaves the first-frame footprint still counts as leakage.
- ``"tracked"`` — every mask pixel carried along its own flow: coverage ``c_0`` = the mask, ``c_{t+1}`` = ``c_t``
  forward-warped along flow t (bilinear splatting, mass-preserving); allowed = ∪_t {c_t >= 0.5}
  (:func:`tracked_region`). Also follows rotation and moderate deformation; strong growth (an object several
  times its first-frame size) thins the coverage below 0.5 and is not followed.

Both ``swept`` and ``tracked`` are supersets of the mask, so their leakage is never above ``first_frame``'s; only
flow *inside* the tracked mask moves them, but they inherit the flow estimator's errors (Farneback underestimates
the motion of large flat objects and smears motion ~4 px past edges on 32-64 px frames; DIS ~1 px).

Units:
- ``motion_leakage`` — Σ|flow| outside the region / Σ|flow| over the frame, all pairs, in [0, 1]. Flow at or below
  ``min_magnitude`` px counts as still (estimator noise on a static background). With no motion at all the value
  is 0 and ``no_motion`` = 1.
- ``in_region_magnitude`` — mean |flow| over region pixels and all pairs, px per frame pair; with
  ``reference_short_side`` rescaled to that short side like the training strength label
  (:func:`fyc.motion.motion_label_from_flow`): when the region is the clip's Eq. 2 motion mask the two coincide,
  so it is the realised counterpart of the requested strength.
- ``direction_dx`` / ``direction_dy`` — mean in-region flow vector, px per pair (+x right, +y down).
- ``motion_precision`` — AnimateAnything's |moved boxes ∩ region| / |moved boxes| in [0, 1] (1 when nothing moved).
- ``background_stillness`` — :func:`fyc.eval.fidelity.background_stillness`, gray levels [0, 255].
"""
from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import cv2
import numpy as np
import scipy.stats
import torch
from torchmetrics import Metric

from fyc.eval.fidelity import background_stillness

DIRECTIONS = {"left": (-1.0, 0.0), "right": (1.0, 0.0), "up": (0.0, -1.0), "down": (0.0, 1.0)}
# A measured direction counts as correct when it is within 45° of the requested one.
DIRECTION_COS_THRESHOLD = math.cos(math.pi / 4)
DEFAULT_MIN_MAGNITUDE = 0.1  # px per pair; tuned OpenCV flow stays below this on static textured backgrounds
REGION_MODES = ("first_frame", "swept", "tracked")


# ---------------------------------------------------------------------------------------------------- masks

def check_region_mask(mask, size: tuple[int, int]) -> np.ndarray:
    """Validate a region mask against the frame size ``(H, W)`` → bool numpy ``(H, W)``."""
    mask = np.asarray(mask.cpu() if torch.is_tensor(mask) else mask)
    if mask.ndim == 3 and mask.shape[0] == 1:
        mask = mask[0]
    if mask.shape != tuple(size):
        raise ValueError(f"region mask has shape {mask.shape}, frames are {tuple(size)}; "
                         "resize it first with fyc.eval.regional.resize_mask")
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


def swept_region(flow, region_mask) -> np.ndarray:
    """The area a region sweeps when it moves rigidly with its own mean flow (see the module doc, ``"swept"``).

    Args:
        flow: float ``(F-1, 2, H, W)`` px per pair (channel 0 = dx, 1 = dy) on the grid of the earlier frame.
        region_mask: bool ``(H, W)``, the region at frame 0.

    Returns:
        bool ``(H, W)`` = ∪_t M_t, a superset of ``region_mask``. Tracking stops once the translated mask has
        left the frame.
    """
    flow = _flow_numpy(flow)
    region = _region(flow, region_mask)
    swept, current, offset = region.copy(), region, np.zeros(2)
    for pair in flow:
        if not current.any():
            break
        offset = offset + pair[:, current].mean(axis=1)
        current = translate_mask(region, offset)
        swept |= current
    return swept


def _splat(coverage: np.ndarray, flow_pair: np.ndarray) -> np.ndarray:
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


def tracked_region(flow, region_mask) -> np.ndarray:
    """The area the region covers when each of its pixels is carried along its own flow (see the module doc,
    ``"tracked"``).

    Args:
        flow: float ``(F-1, 2, H, W)`` px per pair on the grid of the earlier frame.
        region_mask: bool ``(H, W)``, the region at frame 0.

    Returns:
        bool ``(H, W)`` = ∪_t {c_t >= 0.5}, where c_0 = the mask as coverage and c_{t+1} = c_t forward-warped along
        flow t (bilinear splatting, mass-preserving); a superset of ``region_mask``.
    """
    flow = _flow_numpy(flow)
    coverage = _region(flow, region_mask).astype(np.float64)
    tracked = coverage >= 0.5
    for pair in flow:
        coverage = _splat(coverage, pair)
        tracked |= coverage >= 0.5
    return tracked


def allowed_region(flow, region_mask, region: str = "first_frame", dilate_px: int = 0) -> np.ndarray:
    """The region motion is allowed in: ``region`` ∈ :data:`REGION_MODES` applied to the frame-0 mask, then
    dilated by ``dilate_px`` → bool ``(H, W)``."""
    if region not in REGION_MODES:
        raise ValueError(f"region must be one of {REGION_MODES}, got {region!r}")
    if region == "swept":
        mask = swept_region(flow, region_mask)
    elif region == "tracked":
        mask = tracked_region(flow, region_mask)
    else:
        mask = _region(_flow_numpy(flow), region_mask)
    return dilate_mask(mask, dilate_px)


# ----------------------------------------------------------------------------------------------- flow based

def _flow_numpy(flow) -> np.ndarray:
    flow = np.asarray(flow.detach().cpu() if torch.is_tensor(flow) else flow, dtype=np.float64)
    if flow.ndim != 4 or flow.shape[1] != 2:
        raise ValueError(f"flow must be (F-1, 2, H, W), got shape {flow.shape}")
    return flow


def _region(flow: np.ndarray, region_mask) -> np.ndarray:
    region = check_region_mask(region_mask, flow.shape[-2:])
    if not region.any():
        raise ValueError("region mask is empty")
    return region


def motion_leakage(flow, region_mask, min_magnitude: float = DEFAULT_MIN_MAGNITUDE) -> tuple[float, bool]:
    """Share of the total flow magnitude that lies outside the region.

    Args:
        flow: float ``(F-1, 2, H, W)`` px per pair.
        region_mask: bool ``(H, W)`` (dilate it beforehand if wanted).
        min_magnitude: flow magnitudes <= this (px) count as no motion.

    Returns:
        ``(leakage in [0, 1], no_motion)``; when nothing moves anywhere, ``(0.0, True)``.
    """
    flow = _flow_numpy(flow)
    region = _region(flow, region_mask)
    magnitude = np.linalg.norm(flow, axis=1)
    magnitude = np.where(magnitude > min_magnitude, magnitude, 0.0)
    total = magnitude.sum()
    if total == 0:
        return 0.0, True
    return float(magnitude[:, ~region].sum() / total), False


def in_region_magnitude(flow, region_mask, reference_short_side: int | None = None) -> float:
    """Mean |flow| over region pixels and all pairs, px per frame pair (at ``reference_short_side`` if given)."""
    flow = _flow_numpy(flow)
    region = _region(flow, region_mask)
    value = float(np.linalg.norm(flow, axis=1)[:, region].mean())
    if reference_short_side is not None:
        value *= reference_short_side / min(flow.shape[-2:])
    return value


def motion_direction(flow, region_mask) -> tuple[float, float]:
    """Mean in-region flow vector ``(dx, dy)``, px per pair, +x right, +y down."""
    flow = _flow_numpy(flow)
    region = _region(flow, region_mask)
    mean = flow.transpose(1, 0, 2, 3)[:, :, region].reshape(2, -1).mean(axis=1)
    return float(mean[0]), float(mean[1])


def direction_cosine(expected: str | Sequence[float], measured: Sequence[float]) -> float:
    """Cosine between an expected direction (``"left"``/``"right"``/``"up"``/``"down"`` or a vector) and the
    measured mean flow vector, in [-1, 1]; 0 when nothing moved. ``>= DIRECTION_COS_THRESHOLD`` = correct."""
    if isinstance(expected, str):
        if expected not in DIRECTIONS:
            raise ValueError(f"direction must be one of {sorted(DIRECTIONS)}, got {expected!r}")
        expected = DIRECTIONS[expected]
    e, m = np.asarray(expected, np.float64), np.asarray(measured, np.float64)
    norm = np.linalg.norm(e) * np.linalg.norm(m)
    return float(e @ m / norm) if norm > 0 else 0.0


def strength_spearman(requested: Sequence[float], measured: Sequence[float]) -> float:
    """Spearman rank correlation between requested strengths and measured in-region magnitudes, in [-1, 1].

    Ties get average ranks (scipy). A constant ``measured`` (the model ignores the strength) gives 0.0; a
    constant ``requested`` is not a sweep and raises ValueError, as do fewer than 2 pairs or non-finite values.
    """
    requested, measured = np.asarray(requested, np.float64), np.asarray(measured, np.float64)
    if requested.shape != measured.shape or requested.ndim != 1 or len(requested) < 2:
        raise ValueError(f"need two equal-length 1-D sequences of >= 2 values, got {requested.shape} and {measured.shape}")
    if not (np.isfinite(requested).all() and np.isfinite(measured).all()):
        raise ValueError("strengths must be finite")
    if np.ptp(requested) == 0:
        raise ValueError("all requested strengths are equal: a strength sweep needs at least 2 distinct values")
    if np.ptp(measured) == 0:
        return 0.0
    return float(scipy.stats.spearmanr(requested, measured).statistic)


# ------------------------------------------------------------------------------------ frame-difference based

def moved_area_boxes(video, move_threshold: int = 20) -> np.ndarray:
    """AnimateAnything's moved area (``utils/common.py::get_moved_area_mask(move_th=20, th=0)``).

    Gray |x_t - x_0| > ``move_threshold`` (gray levels) for any t → union mask → bounding box of every contour,
    filled. Differences from the original: frames are read as RGB (it converted RGB frames with BGR2GRAY), and
    no box is dropped (its ``th=0``).

    Returns:
        bool ``(H, W)``.
    """
    video = np.asarray(video)
    if video.ndim != 4 or video.shape[-1] != 3 or video.dtype != np.uint8:
        raise ValueError(f"video must be uint8 (F, H, W, 3), got {video.dtype} {video.shape}")
    gray = np.stack([cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY) for frame in video]).astype(np.int16)
    moved = (np.abs(gray[1:] - gray[:1]) > move_threshold).any(axis=0).astype(np.uint8)
    contours, _ = cv2.findContours(moved, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    boxes = np.zeros(moved.shape, dtype=bool)
    for contour in contours:
        x, y, w, h = cv2.boundingRect(contour)
        boxes[y:y + h, x:x + w] = True
    return boxes


def motion_precision(video, region_mask, move_threshold: int = 20) -> float:
    """|moved boxes ∩ region| / |moved boxes| in [0, 1] (AnimateAnything ``calculate_motion_precision``).

    video uint8 ``(F, H, W, 3)``, region bool ``(H, W)``. When nothing moved the value is 1.0 (no motion outside
    the region); the original divides 0 by 0.
    """
    boxes = moved_area_boxes(video, move_threshold)
    region = check_region_mask(region_mask, boxes.shape)
    moved = boxes.sum()
    return float((boxes & region).sum() / moved) if moved else 1.0


# ------------------------------------------------------------------------------------------------ entry point

REGIONAL_METRIC_KEYS = ("motion_leakage", "no_motion", "in_region_magnitude", "out_region_magnitude", "direction_dx",
                        "direction_dy", "motion_precision", "background_stillness")


def regional_motion_metrics(video, region_mask, flow_estimator: Callable | None, dilate_px: int = 0,
                            reference_short_side: int | None = None,
                            min_magnitude: float = DEFAULT_MIN_MAGNITUDE, flow=None,
                            region: str = "first_frame") -> dict[str, float]:
    """All regional metrics of one video (keys :data:`REGIONAL_METRIC_KEYS`, units in the module doc).

    Args:
        video: uint8 ``(F>=2, H, W, 3)``.
        region_mask: bool ``(H, W)`` — the clicked object's mask at the video's resolution.
        flow_estimator: e.g. ``fyc.motion.FlowEstimator("raft_large")``; called on ``video`` (may be None when
            ``flow`` is given).
        dilate_px: grow the allowed region by this many pixels for ``motion_leakage``, ``motion_precision``,
            ``background_stillness`` and ``out_region_magnitude``.
        reference_short_side: report ``in_region_magnitude`` / ``out_region_magnitude`` at this short side.
        min_magnitude: flow noise floor (px) for ``leakage`` / ``no_motion``.
        flow: precomputed flow ``(F-1, 2, H, W)`` (skips the estimator).
        region: the allowed region, ``"first_frame"`` or ``"swept"`` (module doc).
    """
    video = np.asarray(video)
    if video.ndim != 4 or video.shape[-1] != 3 or video.dtype != np.uint8 or video.shape[0] < 2:
        raise ValueError(f"video must be uint8 (F>=2, H, W, 3), got {video.dtype} {video.shape}")
    if region not in REGION_MODES:
        raise ValueError(f"region must be one of {REGION_MODES}, got {region!r}")
    region_mask = check_region_mask(region_mask, video.shape[1:3])
    if flow is None:
        if flow_estimator is None:
            raise ValueError("pass a flow_estimator or a precomputed flow")
        flow = flow_estimator(video)
    flow = _flow_numpy(flow)
    if flow.shape[0] != video.shape[0] - 1 or flow.shape[-2:] != video.shape[1:3]:
        raise ValueError(f"flow {flow.shape} does not match video {video.shape}")
    grown = allowed_region(flow, region_mask, region, dilate_px)
    region = region_mask
    leakage, no_motion = motion_leakage(flow, grown, min_magnitude)
    dx, dy = motion_direction(flow, region)
    scale = 1.0 if reference_short_side is None else reference_short_side / min(video.shape[1:3])
    magnitude = np.linalg.norm(flow, axis=1)
    outside = magnitude[:, ~grown]
    return {
        "motion_leakage": leakage,
        "no_motion": float(no_motion),
        "in_region_magnitude": in_region_magnitude(flow, region, reference_short_side),
        "out_region_magnitude": float(outside.mean() * scale) if outside.size else 0.0,
        "direction_dx": dx,
        "direction_dy": dy,
        "motion_precision": motion_precision(video, grown),
        "background_stillness": background_stillness(video, grown) if (~grown).any() else 0.0,
    }


class RegionalMotionMetrics(Metric):
    """Distributed mean of :func:`regional_motion_metrics` over videos, plus sweep-level statistics.

    Args:
        flow_estimator: callable on uint8 ``(F, H, W, 3)`` → flow ``(F-1, 2, H, W)``.
        dilate_px, reference_short_side, min_magnitude, region: as in :func:`regional_motion_metrics`.

    ``update(videos, region_masks, requested_strengths=None, directions=None)``: a list (or ``(B, F, H, W, 3)``
    array) of uint8 videos, B bool ``(H, W)`` masks, optionally B requested strengths (for ``strength_spearman``,
    computed over all videos of all processes) and B direction words (for ``direction_cosine`` and
    ``direction_accuracy`` = share of videos within 45° of the requested direction).
    ``compute()`` → dict of means over videos (``no_motion`` becomes the share of frozen videos).
    """

    is_differentiable = False
    full_state_update = False

    def __init__(self, flow_estimator: Callable, dilate_px: int = 0, reference_short_side: int | None = None,
                 min_magnitude: float = DEFAULT_MIN_MAGNITUDE, region: str = "first_frame", **kwargs: Any):
        super().__init__(**kwargs)
        if region not in REGION_MODES:
            raise ValueError(f"region must be one of {REGION_MODES}, got {region!r}")
        self.flow_estimator = flow_estimator
        self.region = region
        self.dilate_px = dilate_px
        self.reference_short_side = reference_short_side
        self.min_magnitude = min_magnitude
        self._mean_keys = REGIONAL_METRIC_KEYS + ("direction_cosine", "direction_accuracy")
        for key in self._mean_keys:
            self.add_state(f"{key}_sum", torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
            self.add_state(f"{key}_count", torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")
        self.add_state("requested", [], dist_reduce_fx="cat")
        self.add_state("measured", [], dist_reduce_fx="cat")

    def _add(self, key: str, value: float) -> None:
        setattr(self, f"{key}_sum", getattr(self, f"{key}_sum") + value)
        setattr(self, f"{key}_count", getattr(self, f"{key}_count") + 1)

    def update(self, videos, region_masks, requested_strengths: Sequence[float] | None = None,
               directions: Sequence[str] | None = None) -> None:
        n = len(videos)
        for name, values in (("region_masks", region_masks), ("requested_strengths", requested_strengths),
                             ("directions", directions)):
            if values is not None and len(values) != n:
                raise ValueError(f"got {n} videos but {len(values)} {name}")
        for i in range(n):
            values = regional_motion_metrics(videos[i], region_masks[i], self.flow_estimator, self.dilate_px,
                                             self.reference_short_side, self.min_magnitude, region=self.region)
            for key in REGIONAL_METRIC_KEYS:
                self._add(key, values[key])
            if directions is not None:
                cosine = direction_cosine(directions[i], (values["direction_dx"], values["direction_dy"]))
                self._add("direction_cosine", cosine)
                self._add("direction_accuracy", float(cosine >= DIRECTION_COS_THRESHOLD))
            if requested_strengths is not None:
                self.requested.append(torch.tensor([float(requested_strengths[i])], dtype=torch.float64))
                self.measured.append(torch.tensor([values["in_region_magnitude"]], dtype=torch.float64))

    def compute(self) -> dict[str, float]:
        out = {key: (getattr(self, f"{key}_sum") / getattr(self, f"{key}_count")).item()
               for key in self._mean_keys if int(getattr(self, f"{key}_count")) > 0}
        requested, measured = self.requested, self.measured
        if isinstance(requested, list):  # unsynced list state (single process)
            requested = torch.cat(requested) if requested else torch.zeros(0, dtype=torch.float64)
            measured = torch.cat(measured) if measured else torch.zeros(0, dtype=torch.float64)
        if len(requested) >= 2 and torch.unique(requested).numel() >= 2:
            out["strength_spearman"] = strength_spearman(requested.tolist(), measured.tolist())
        return out
