"""Motion region mask and motion strength from optical flow (Follow-Your-Click, paper Eq. 2).

For each consecutive pair i: M_i = |F_i| > mean(|F_i|); M = union_i M_i.
Strength = mean flow magnitude inside M over all pairs, in pixels per consecutive frame pair, rescaled to a
reference resolution (``reference_short_side``) so that labels from different video sizes share one unit.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class MotionLabel:
    """mask: bool ``(H, W)``; strength: px per frame pair at the reference resolution (0 when nothing moves);
    magnitude: float ``(H, W)``, each pixel's mean |flow| over the pairs in the same unit, so that the strength of
    any sub-region (e.g. a crop) is the mean of ``magnitude`` over ``mask`` there (:func:`strength_in`)."""

    mask: torch.Tensor
    strength: float
    magnitude: torch.Tensor | None = None


def strength_in(mask: torch.Tensor, magnitude: torch.Tensor) -> float:
    """Strength of the region ``mask`` (bool (H, W)) given a per-pixel mean-magnitude map (H, W): the mean of the
    map inside the mask, 0 for an empty mask. Equals :func:`motion_label_from_flow`'s strength on its own mask."""
    mask = torch.as_tensor(mask).bool()
    return float(torch.as_tensor(magnitude, dtype=torch.float32)[mask].mean()) if mask.any() else 0.0


def motion_label_from_flow(flow: torch.Tensor, reference_short_side: int | None = None,
                           min_magnitude: float = 1e-3) -> MotionLabel:
    """flow: float ``(T-1, 2, H, W)`` in pixels → :class:`MotionLabel`.

    ``min_magnitude`` keeps a completely static clip (flow noise around 0) from producing a half-image mask:
    a pixel must also move more than this many pixels to count.
    """
    if flow.ndim != 4 or flow.shape[1] != 2:
        raise ValueError(f"flow must be (T-1, 2, H, W), got {tuple(flow.shape)}")
    magnitude = flow.float().norm(dim=1)  # (T-1, H, W)
    pair_mean = magnitude.mean(dim=(1, 2), keepdim=True)
    per_pair = (magnitude > pair_mean) & (magnitude > min_magnitude)
    mask = per_pair.any(dim=0)
    scale = 1.0 if reference_short_side is None else reference_short_side / min(flow.shape[-2:])
    # mean over (pairs, pixels of the union mask) = mean over the mask of each pixel's mean over pairs
    mean_magnitude = magnitude.mean(dim=0) * scale
    return MotionLabel(mask=mask, strength=strength_in(mask, mean_magnitude), magnitude=mean_magnitude)
