"""Mask-aware motion metrics: did the clicked region move, how much, which way, and did anything else move?

No peer codebase ships these. Inputs are a video uint8 ``(F, H, W, 3)``, a region mask bool
``(H, W)`` (True = the clicked object at frame 0) and optical flow from :class:`fyc.motion.FlowEstimator`
(float ``(F-1, 2, H, W)``, pixels per consecutive frame pair, channel 0 = dx rightwards, 1 = dy downwards).
Where the region is at each frame follows ``region=`` (:data:`fyc.eval.masks.REGION_MODES`: ``tracked`` carries
each mask pixel along its own flow, ``swept`` translates the mask along its mean flow, ``first_frame`` keeps it
where it was clicked); ``R_t`` below.

Metrics (keys :data:`REGIONAL_METRIC_KEYS`):
- ``object_speed`` — mean over pairs t of the median |flow_t| over ``R_t``: the object's speed measured where it is,
  px per frame pair (at ``reference_short_side`` when given). An object that moves rigidly reads its true speed;
  under ``first_frame`` the object's own motion out of its footprint dilutes it.
- ``realised_strength`` — the training label's definition (:func:`fyc.motion.motion_label_from_flow`, paper Eq. 2)
  on the video, from the flow of the labels' backend (``label_flow``): the quantity a model was trained to
  produce for a requested strength. Only present when ``label_flow`` is given.
- ``motion_leakage`` — share of the *visible* motion that lies outside the region, in [0, 1]. Visible motion at
  pixel p of pair t is |flow_t(p)| where it exceeds ``min_magnitude`` px *and* the pixel changed
  (max over RGB of |x_{t+1}(p) − x_t(p)| > ``change_threshold`` gray levels): flow estimators report flow on flat
  still background and a few px past a moving object's edges where no pixel changes. Outside means outside
  ``R_t ∪ R_{t+1}`` dilated by ``dilate_px`` (forgives the estimator's edge smear and sub-pixel coverage). With
  no visible motion at all the value is 0 and ``no_motion`` = 1.
- ``out_region_magnitude`` — mean visible motion outside the dilated region over pixels and pairs, px per pair.
- ``direction_dx`` / ``direction_dy`` — mean flow vector over ``R_t`` and all pairs, px per pair (+x right, +y down).
- ``motion_precision`` — AnimateAnything's |moved boxes ∩ region| / |moved boxes| in [0, 1] (1 when nothing moved),
  region = ∪_t R_t dilated.
- ``background_stillness`` — :func:`fyc.eval.fidelity.background_stillness` outside ∪_t R_t dilated, gray levels
  [0, 255] (pixel change, no flow involved).
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
from fyc.eval.masks import (REGION_MODES, allowed_region, check_region_mask, dilate_mask, flow_array,  # noqa: F401
                            nonempty_region, region_per_frame, resize_mask, swept_region, tracked_region,
                            translate_mask)
from fyc.motion import motion_label_from_flow

DIRECTIONS = {"left": (-1.0, 0.0), "right": (1.0, 0.0), "up": (0.0, -1.0), "down": (0.0, 1.0)}
# A measured direction counts as correct when it is within 45° of the requested one.
DIRECTION_COS_THRESHOLD = math.cos(math.pi / 4)
DEFAULT_MIN_MAGNITUDE = 0.1  # px per pair; tuned OpenCV flow stays below this on static textured backgrounds
DEFAULT_CHANGE_THRESHOLD = 4.0  # gray levels: near-lossless codec noise on a still background stays below it


# ----------------------------------------------------------------------------------------------- flow based

def changed_pixels(video, change_threshold: float = DEFAULT_CHANGE_THRESHOLD) -> np.ndarray:
    """Which pixels change between consecutive frames: max over RGB of |x_{t+1} − x_t| > ``change_threshold``.

    video uint8 ``(F, H, W, 3)`` → bool ``(F-1, H, W)`` on the grid of the earlier frame (as flow is)."""
    video = np.asarray(video)
    change = np.abs(video[1:].astype(np.int16) - video[:-1].astype(np.int16)).max(axis=-1)
    return change > change_threshold


def visible_motion(video, flow, min_magnitude: float = DEFAULT_MIN_MAGNITUDE,
                   change_threshold: float = DEFAULT_CHANGE_THRESHOLD) -> np.ndarray:
    """|flow| where it exceeds ``min_magnitude`` px and the pixel changed (:func:`changed_pixels`), else 0.

    video uint8 ``(F, H, W, 3)``, flow ``(F-1, 2, H, W)`` → float ``(F-1, H, W)`` px per pair."""
    flow = flow_array(flow)
    magnitude = np.linalg.norm(flow, axis=1)
    keep = (magnitude > min_magnitude) & changed_pixels(video, change_threshold)
    return np.where(keep, magnitude, 0.0)


def allowed_per_pair(regions: np.ndarray, dilate_px: int = 0) -> np.ndarray:
    """Region motion of pair t is allowed in: ``R_t ∪ R_{t+1}`` dilated by ``dilate_px``.

    regions bool ``(F, H, W)`` (:func:`fyc.eval.masks.region_per_frame`) → bool ``(F-1, H, W)``."""
    return np.stack([dilate_mask(regions[t] | regions[t + 1], dilate_px) for t in range(len(regions) - 1)])


def motion_leakage(motion: np.ndarray, allowed: np.ndarray) -> tuple[float, bool]:
    """Share of the motion that lies outside the allowed region.

    Args:
        motion: float ``(F-1, H, W)`` px per pair, e.g. :func:`visible_motion` (0 = no motion).
        allowed: bool ``(F-1, H, W)`` (e.g. :func:`allowed_per_pair`) or ``(H, W)`` for every pair.

    Returns:
        ``(leakage in [0, 1], no_motion)``; when nothing moves anywhere, ``(0.0, True)``.
    """
    motion = np.asarray(motion, dtype=np.float64)
    allowed = np.broadcast_to(np.asarray(allowed, dtype=bool), motion.shape)
    total = motion.sum()
    if total == 0:
        return 0.0, True
    return float(motion[~allowed].sum() / total), False


def object_speed(flow, regions: np.ndarray, reference_short_side: int | None = None) -> float:
    """Mean over pairs t of the median |flow_t| over ``regions[t]`` (pairs whose region left the frame are skipped),
    px per pair (at ``reference_short_side`` if given). flow ``(F-1, 2, H, W)``, regions bool ``(F, H, W)``."""
    flow = flow_array(flow)
    magnitude = np.linalg.norm(flow, axis=1)
    # the median, not the mean: flow estimators under-read a moving object's outermost pixels (edge smear)
    per_pair = [np.median(magnitude[t][regions[t]]) for t in range(len(flow)) if regions[t].any()]
    value = float(np.mean(per_pair)) if per_pair else 0.0
    if reference_short_side is not None:
        value *= reference_short_side / min(flow.shape[-2:])
    return value


def motion_direction(flow, regions: np.ndarray) -> tuple[float, float]:
    """Mean flow vector ``(dx, dy)`` over ``regions[t]`` (bool ``(F, H, W)``, or one ``(H, W)`` mask for every
    pair) and all pairs, px per pair, +x right, +y down."""
    flow = flow_array(flow)
    regions = np.asarray(regions, dtype=bool)
    if regions.ndim == 2:
        regions = np.broadcast_to(regions, (len(flow) + 1,) + regions.shape)
    vectors = [flow[t][:, regions[t]] for t in range(len(flow)) if regions[t].any()]
    if not vectors:
        return 0.0, 0.0
    mean = np.concatenate(vectors, axis=1).mean(axis=1)
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
    """Spearman rank correlation between requested and realised strengths, in [-1, 1].

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


MIN_SPEARMAN_ITEMS = 3


def spearman_or_reason(requested: Sequence[float], measured: Sequence[float]) -> tuple[float | None, str | None]:
    """:func:`strength_spearman`, or ``(None, why)`` when the set cannot carry one (fewer than
    :data:`MIN_SPEARMAN_ITEMS` items, or a single requested strength) instead of an exception."""
    if len(requested) < MIN_SPEARMAN_ITEMS:
        return None, f"{len(requested)} items with a strength; a rank correlation needs >= {MIN_SPEARMAN_ITEMS}"
    if len(set(float(r) for r in requested)) < 2:
        return None, f"all {len(requested)} items request the same strength ({float(requested[0]):g}); no sweep"
    return strength_spearman(requested, measured), None


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

REGIONAL_METRIC_KEYS = ("motion_leakage", "no_motion", "object_speed", "out_region_magnitude", "direction_dx",
                        "direction_dy", "motion_precision", "background_stillness")
DEFAULT_REGION = "tracked"
DEFAULT_DILATE_PX = 2


def regional_motion_metrics(video, region_mask, flow_estimator: Callable | None, dilate_px: int = DEFAULT_DILATE_PX,
                            reference_short_side: int | None = None,
                            min_magnitude: float = DEFAULT_MIN_MAGNITUDE, flow=None,
                            region: str = DEFAULT_REGION, change_threshold: float = DEFAULT_CHANGE_THRESHOLD,
                            label_flow=None) -> dict[str, float]:
    """All regional metrics of one video (keys :data:`REGIONAL_METRIC_KEYS`, plus ``realised_strength`` when
    ``label_flow`` is given; units in the module doc).

    Args:
        video: uint8 ``(F>=2, H, W, 3)``.
        region_mask: bool ``(H, W)`` — the clicked object's mask at frame 0, at the video's resolution.
        flow_estimator: e.g. ``fyc.motion.FlowEstimator("dis")``; called on ``video`` (may be None when ``flow``
            is given).
        dilate_px: margin (px) around the region within which motion is not leakage; forgives the flow
            estimator's edge smear. Also used for ``motion_precision`` / ``background_stillness``.
        reference_short_side: report ``object_speed``, ``realised_strength`` and ``out_region_magnitude`` at
            this short side.
        min_magnitude: flow noise floor (px per pair) of visible motion.
        flow: precomputed flow ``(F-1, 2, H, W)`` (skips the estimator).
        region: how the region is followed over frames, one of :data:`fyc.eval.masks.REGION_MODES`.
        change_threshold: gray levels a pixel must change by for its flow to count as visible motion.
        label_flow: flow ``(F-1, 2, H, W)`` from the backend the training labels were made with; adds
            ``realised_strength`` (Eq. 2 on this video). None leaves it out.
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
    flow = flow_array(flow)
    if flow.shape[0] != video.shape[0] - 1 or flow.shape[-2:] != video.shape[1:3]:
        raise ValueError(f"flow {flow.shape} does not match video {video.shape}")
    regions = region_per_frame(flow, region_mask, region)
    allowed = allowed_per_pair(regions, dilate_px)
    motion = visible_motion(video, flow, min_magnitude, change_threshold)
    leakage, no_motion = motion_leakage(motion, allowed)
    dx, dy = motion_direction(flow, regions)
    scale = 1.0 if reference_short_side is None else reference_short_side / min(video.shape[1:3])
    outside = motion[~allowed]
    grown = dilate_mask(regions.any(axis=0), dilate_px)
    values = {
        "motion_leakage": leakage,
        "no_motion": float(no_motion),
        "object_speed": object_speed(flow, regions, reference_short_side),
        "out_region_magnitude": float(outside.mean() * scale) if outside.size else 0.0,
        "direction_dx": dx,
        "direction_dy": dy,
        "motion_precision": motion_precision(video, grown),
        "background_stillness": background_stillness(video, grown) if (~grown).any() else 0.0,
    }
    if label_flow is not None:
        label_flow = torch.as_tensor(flow_array(label_flow))
        if tuple(label_flow.shape) != flow.shape:
            raise ValueError(f"label_flow {tuple(label_flow.shape)} does not match flow {flow.shape}")
        values["realised_strength"] = motion_label_from_flow(label_flow, reference_short_side).strength
    return values


class RegionalMotionMetrics(Metric):
    """Distributed mean of :func:`regional_motion_metrics` over videos, plus sweep-level statistics.

    Args:
        flow_estimator: callable on uint8 ``(F, H, W, 3)`` → flow ``(F-1, 2, H, W)``.
        dilate_px, reference_short_side, min_magnitude, region, change_threshold: as in
            :func:`regional_motion_metrics`.
        label_flow_estimator: the training labels' flow backend; adds ``realised_strength`` and makes it the
            measured side of ``strength_spearman`` (else ``object_speed`` is).

    ``update(videos, region_masks, requested_strengths=None, directions=None)``: a list (or ``(B, F, H, W, 3)``
    array) of uint8 videos, B bool ``(H, W)`` masks, optionally B requested strengths (for ``strength_spearman``,
    computed over all videos of all processes; absent when they cannot carry one) and B direction words (for
    ``direction_cosine`` and ``direction_accuracy`` = share of videos within 45° of the requested direction).
    ``compute()`` → dict of means over videos (``no_motion`` becomes the share of frozen videos).
    """

    is_differentiable = False
    full_state_update = False

    def __init__(self, flow_estimator: Callable, dilate_px: int = DEFAULT_DILATE_PX,
                 reference_short_side: int | None = None, min_magnitude: float = DEFAULT_MIN_MAGNITUDE,
                 region: str = DEFAULT_REGION, change_threshold: float = DEFAULT_CHANGE_THRESHOLD,
                 label_flow_estimator: Callable | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        if region not in REGION_MODES:
            raise ValueError(f"region must be one of {REGION_MODES}, got {region!r}")
        self.flow_estimator = flow_estimator
        self.label_flow_estimator = label_flow_estimator
        self.region = region
        self.dilate_px = dilate_px
        self.reference_short_side = reference_short_side
        self.min_magnitude = min_magnitude
        self.change_threshold = change_threshold
        self._mean_keys = REGIONAL_METRIC_KEYS + ("realised_strength", "direction_cosine", "direction_accuracy")
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
            video = np.asarray(videos[i])
            label_flow = None if self.label_flow_estimator is None else self.label_flow_estimator(video)
            values = regional_motion_metrics(video, region_masks[i], self.flow_estimator, self.dilate_px,
                                             self.reference_short_side, self.min_magnitude, region=self.region,
                                             change_threshold=self.change_threshold, label_flow=label_flow)
            for key in values:
                self._add(key, values[key])
            if directions is not None:
                cosine = direction_cosine(directions[i], (values["direction_dx"], values["direction_dy"]))
                self._add("direction_cosine", cosine)
                self._add("direction_accuracy", float(cosine >= DIRECTION_COS_THRESHOLD))
            if requested_strengths is not None:
                measured = values.get("realised_strength", values["object_speed"])
                self.requested.append(torch.tensor([float(requested_strengths[i])], dtype=torch.float64))
                self.measured.append(torch.tensor([measured], dtype=torch.float64))

    def compute(self) -> dict[str, float]:
        out = {key: (getattr(self, f"{key}_sum") / getattr(self, f"{key}_count")).item()
               for key in self._mean_keys if int(getattr(self, f"{key}_count")) > 0}
        requested, measured = self.requested, self.measured
        if isinstance(requested, list):  # unsynced list state (single process)
            requested = torch.cat(requested) if requested else torch.zeros(0, dtype=torch.float64)
            measured = torch.cat(measured) if measured else torch.zeros(0, dtype=torch.float64)
        rho, _ = spearman_or_reason(requested.tolist(), measured.tolist())
        if rho is not None:
            out["strength_spearman"] = rho
        return out
