"""Evaluation: read videos, return numbers. Never imports training or model code.

- :mod:`fyc.eval.frechet`       — Fréchet distance between Gaussians (float64).
- :mod:`fyc.eval.fvd`           — FVD, StyleGAN-V I3D protocol, distributed ``torchmetrics.Metric``.
- :mod:`fyc.eval.clip_metrics`  — CLIP Tem-Consis / Text-Align / Image-Align (raw cosine).
- :mod:`fyc.eval.fidelity`      — I1-MSE and background stillness (pixel scale [0, 255]).
- :mod:`fyc.eval.masks`         — region masks: checks, resizing, dilation, following a region along its flow
  (``first_frame`` / ``swept`` / ``tracked``).
- :mod:`fyc.eval.regional`      — mask-aware motion metrics (visible-motion leakage, object speed, realised
  strength in the training label's unit, direction, strength Spearman).
- :mod:`fyc.eval.truth_clips`   — constructed real-texture clips with known motion (the metrics' truth tests).
- :mod:`fyc.eval.motion_kind`   — which kind of motion (translate / rotate / grow / shrink / shake) a region made,
  from an affine fit of its flow.
- :mod:`fyc.eval.score`, :mod:`fyc.eval.runner` — score a manifest, write results.json / per_sample.csv / table.md.
- :mod:`fyc.eval.protocols`     — the fyc30 template filler/validator and the MSR-VTT FVD manifest builder.

The names below are loaded on first access, so ``import fyc.eval.manifest`` stays light (no torchmetrics/scipy).
"""
from importlib import import_module

_EXPORTS = {
    "frechet_distance": "frechet", "gaussian_stats": "frechet",
    "FrechetVideoDistance": "fvd", "videos_to_bcthw": "fvd", "fvd_clip": "fvd", "resize_center_crop": "fvd",
    "CLIPEncoder": "clip_metrics", "CLIPVideoMetrics": "clip_metrics", "clip_video_scores": "clip_metrics",
    "clip_protocol": "clip_metrics",
    "i1_mse": "fidelity", "background_stillness": "fidelity",
    "regional_motion_metrics": "regional", "RegionalMotionMetrics": "regional", "motion_precision": "regional",
    "strength_spearman": "regional", "REGION_MODES": "masks", "allowed_region": "masks",
    "swept_region": "masks", "tracked_region": "masks", "region_per_frame": "masks",
    "object_speed": "regional", "visible_motion": "regional",
    "classify_motion_kind": "motion_kind", "motion_kind_scores": "motion_kind", "prompted_kind": "motion_kind",
    "fill_fyc30_manifest": "protocols", "build_msrvtt_manifest": "protocols", "validate_benchmark_items": "protocols",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'fyc.eval' has no attribute {name!r}")
    return getattr(import_module(f"fyc.eval.{_EXPORTS[name]}"), name)
