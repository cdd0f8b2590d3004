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
    """mask: bool ``(H, W)``; strength: px per frame pair at the reference resolution (0 when nothing moves)."""

    mask: torch.Tensor
    strength: float


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
    if mask.any():
        strength = magnitude[:, mask].mean().item()
    else:
        strength = 0.0
    if reference_short_side is not None:
        strength *= reference_short_side / min(flow.shape[-2:])
    return MotionLabel(mask=mask, strength=strength)
