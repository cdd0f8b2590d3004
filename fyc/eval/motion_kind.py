"""Which kind of motion did the clicked region make? An affine decomposition of its optical flow.

Per frame pair t, the flow inside the region (the clicked mask, dilated by ``dilate_px`` so that a growing object's
outward-moving edge is seen) is fitted by least squares with an affine field ``f(p) = v_t + A_t p`` (``p`` = pixel
position relative to the region's centroid, px). ``v_t`` is the region's translation, ``A_t`` its 2x2 velocity
gradient: ``div_t = (A_00 + A_11) / 2`` is the isotropic expansion rate and ``rot_t = (A_10 − A_01) / 2`` the rotation
rate (1/pair, +clockwise on screen since y points down). Each kind gets a score in px per pair, the speed of the
region's edge it implies (``R`` = the region's RMS radius × √2, the radius of a disc with that spread):

- ``translate`` — ``|mean_t v_t|``: a steady drift;
- ``shake`` — ``mean_t |v_t| − |mean_t v_t|``: translation that does not add up (oscillation);
- ``rotate`` — ``|mean_t rot_t| · R``;
- ``grow`` / ``shrink`` — ``max(±mean_t div_t, 0) · R``.

The measured kind is the highest score, or ``"still"`` when no score exceeds ``min_magnitude``. The toy world's
kinds (``fyc.toy.world``: translate / rotate "spin" / grow / shrink / shake) are these five; on its true
videos the classifier's accuracy is the floor a model can reach (``research/motion_kind_oracle.py``). Inputs as in
:mod:`fyc.eval.regional`: flow float ``(F-1, 2, H, W)`` px per pair (channel 0 = dx right, 1 = dy down), region
bool ``(H, W)``.
"""
from __future__ import annotations

import numpy as np

from fyc.eval.masks import dilate_mask, flow_array, nonempty_region
from fyc.eval.regional import DEFAULT_MIN_MAGNITUDE

MOTION_KINDS = ("translate", "rotate", "grow", "shrink", "shake")
STILL = "still"
# Prompt words naming a kind ("move left" → translate, "spin" → rotate); a prompt naming exactly one kind has one.
KIND_WORDS = {"move": "translate", "moving": "translate", "spin": "rotate", "spinning": "rotate",
              "rotate": "rotate", "rotating": "rotate", "turn": "rotate", "grow": "grow", "growing": "grow",
              "expand": "grow", "shrink": "shrink", "shrinking": "shrink", "shake": "shake", "shaking": "shake"}
DEFAULT_KIND_DILATE_PX = 1


def prompted_kind(prompt: str) -> str | None:
    """"move left" → "translate", "spin" → "rotate"; a prompt naming no kind or several → None."""
    words = prompt.lower().replace(",", " ").split()
    kinds = {KIND_WORDS[w] for w in words if w in KIND_WORDS}
    return kinds.pop() if len(kinds) == 1 else None


def affine_flow_fit(flow, region_mask) -> tuple[np.ndarray, np.ndarray, float]:
    """Least-squares affine fit of each pair's flow over the region.

    Args:
        flow: float ``(F-1, 2, H, W)`` px per pair.
        region_mask: bool ``(H, W)``, at least 3 pixels not on one line.

    Returns:
        ``v`` ``(F-1, 2)`` translation px/pair, ``A`` ``(F-1, 2, 2)`` velocity gradient (``A[t, i, j]`` =
        d flow_i / d p_j, 1/pair), and the region's radius ``R`` in px (RMS distance to the centroid × √2).
    """
    flow = flow_array(flow)
    region = nonempty_region(flow, region_mask)
    ys, xs = np.nonzero(region)
    positions = np.stack([xs, ys], axis=1).astype(np.float64)
    positions -= positions.mean(axis=0)
    design = np.concatenate([np.ones((len(positions), 1)), positions], axis=1)  # (N, 3)
    if np.linalg.matrix_rank(design) < 3:
        raise ValueError(f"region of {len(positions)} pixels is too thin for an affine fit (needs 2-D extent)")
    targets = flow[:, :, ys, xs].transpose(2, 0, 1).reshape(len(positions), -1)  # (N, (F-1)*2)
    weights, *_ = np.linalg.lstsq(design, targets, rcond=None)  # (3, (F-1)*2)
    weights = weights.reshape(3, flow.shape[0], 2).transpose(1, 0, 2)  # (F-1, 3, 2)
    v = weights[:, 0, :]
    gradient = weights[:, 1:, :].transpose(0, 2, 1)  # [t, i, j] = d flow_i / d p_j
    radius = float(np.sqrt(2.0 * (positions ** 2).sum(axis=1).mean()))
    return v, gradient, radius


def motion_kind_scores(flow, region_mask, dilate_px: int = DEFAULT_KIND_DILATE_PX) -> dict[str, float]:
    """Score of each kind in :data:`MOTION_KINDS`, px per pair at the region's edge (module doc)."""
    flow = flow_array(flow)
    v, gradient, radius = affine_flow_fit(flow, dilate_mask(nonempty_region(flow, region_mask), dilate_px))
    drift = float(np.linalg.norm(v.mean(axis=0)))
    divergence = float((gradient[:, 0, 0] + gradient[:, 1, 1]).mean() / 2)
    rotation = float((gradient[:, 1, 0] - gradient[:, 0, 1]).mean() / 2)
    return {
        "translate": drift,
        "rotate": abs(rotation) * radius,
        "grow": max(divergence, 0.0) * radius,
        "shrink": max(-divergence, 0.0) * radius,
        "shake": float(np.linalg.norm(v, axis=1).mean()) - drift,
    }


def classify_motion_kind(flow, region_mask, dilate_px: int = DEFAULT_KIND_DILATE_PX,
                         min_magnitude: float = DEFAULT_MIN_MAGNITUDE) -> str:
    """The kind with the highest :func:`motion_kind_scores`, or ``"still"`` when none exceeds ``min_magnitude``."""
    scores = motion_kind_scores(flow, region_mask, dilate_px)
    kind = max(scores, key=scores.get)
    return kind if scores[kind] > min_magnitude else STILL
