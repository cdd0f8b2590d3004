"""Fréchet distance between two Gaussians, the core of FID/FVD.

    d² = |mu1 - mu2|² + Tr(sigma1) + Tr(sigma2) - 2 Tr( (sigma1 sigma2)^(1/2) )

Everything is float64 numpy. Two ways to get Tr((sigma1 sigma2)^(1/2)):

- ``method="sqrtm"`` (default): ``scipy.linalg.sqrtm`` of the product with pytorch-fid's handling (retry with
  ``eps`` on the diagonals if the result is not finite; drop an imaginary part only if it is numerically zero).
  This is what StyleGAN-V's FVD uses, so our FVD numbers follow the same arithmetic.
- ``method="eigen"``: the symmetric form Tr((sqrt(s1) s2 sqrt(s1))^(1/2)) through two ``eigh`` calls (negative
  round-off eigenvalues clipped to 0). Same value in exact arithmetic, never complex; the tests check one
  against the other.
"""
from __future__ import annotations

import warnings

import numpy as np
import scipy.linalg

FRECHET_METHODS = ("sqrtm", "eigen")


def _as_float64(x) -> np.ndarray:
    if hasattr(x, "detach"):  # torch tensor
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.float64)


def gaussian_stats(features) -> tuple[np.ndarray, np.ndarray]:
    """Mean and unbiased covariance of ``features`` (N, D) (numpy or torch, any float dtype).

    Returns float64 ``mu`` (D,) and ``sigma`` (D, D). Raises ValueError for N < 2 (the covariance is undefined).
    """
    features = _as_float64(features)
    if features.ndim != 2:
        raise ValueError(f"features must be (N, D), got shape {features.shape}")
    if features.shape[0] < 2:
        raise ValueError(f"need at least 2 feature vectors for a covariance, got {features.shape[0]}")
    return features.mean(axis=0), np.cov(features, rowvar=False, ddof=1).reshape(features.shape[1], -1)


def gaussian_stats_from_sums(feature_sum, outer_sum, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean and unbiased covariance from running sums (what the distributed metric states hold).

    Args:
        feature_sum: (D,) = Σ x_i.
        outer_sum: (D, D) = Σ x_i x_iᵀ.
        count: N, must be >= 2.
    """
    count = int(count)
    if count < 2:
        raise ValueError(f"need at least 2 feature vectors for a covariance, got {count}")
    feature_sum, outer_sum = _as_float64(feature_sum), _as_float64(outer_sum)
    mu = feature_sum / count
    sigma = (outer_sum - count * np.outer(mu, mu)) / (count - 1)
    return mu, sigma


def _check(mu1, sigma1, mu2, sigma2):
    mu1, mu2 = np.atleast_1d(_as_float64(mu1)), np.atleast_1d(_as_float64(mu2))
    sigma1, sigma2 = np.atleast_2d(_as_float64(sigma1)), np.atleast_2d(_as_float64(sigma2))
    d = mu1.shape[0]
    if mu1.shape != (d,) or mu2.shape != (d,) or sigma1.shape != (d, d) or sigma2.shape != (d, d):
        raise ValueError(f"shape mismatch: mu1 {mu1.shape}, sigma1 {sigma1.shape}, mu2 {mu2.shape}, "
                         f"sigma2 {sigma2.shape} (expected (D,), (D, D))")
    return mu1, sigma1, mu2, sigma2


def _trace_sqrt_product_sqrtm(sigma1: np.ndarray, sigma2: np.ndarray, eps: float) -> float:
    with warnings.catch_warnings():  # scipy warns on singular products; we handle them below
        warnings.simplefilter("ignore")
        covmean = scipy.linalg.sqrtm(sigma1 @ sigma2)
        if not np.isfinite(covmean).all():
            offset = np.eye(sigma1.shape[0]) * eps
            covmean = scipy.linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    if np.iscomplexobj(covmean):
        max_imag = np.max(np.abs(np.diagonal(covmean).imag))
        if max_imag > 1e-3:
            raise ValueError(f"sqrtm gave a complex result (max |imag| on the diagonal {max_imag:.3g}); "
                             "the covariances are ill-conditioned — use method='eigen'")
        covmean = covmean.real
    return float(np.trace(covmean))


def _psd_sqrt(sigma: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh((sigma + sigma.T) / 2)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def _trace_sqrt_product_eigen(sigma1: np.ndarray, sigma2: np.ndarray) -> float:
    root1 = _psd_sqrt(sigma1)
    middle = root1 @ sigma2 @ root1
    eigenvalues = np.linalg.eigvalsh((middle + middle.T) / 2)
    return float(np.sqrt(np.clip(eigenvalues, 0, None)).sum())


def frechet_distance(mu1, sigma1, mu2, sigma2, method: str = "sqrtm", eps: float = 1e-6) -> float:
    """Squared Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2), float64.

    Args:
        mu1, mu2: (D,) means (numpy or torch).
        sigma1, sigma2: (D, D) covariances.
        method: ``"sqrtm"`` (scipy, StyleGAN-V/pytorch-fid arithmetic) or ``"eigen"`` (symmetric eigen form).
        eps: diagonal offset for the ``sqrtm`` retry on a singular product.

    Returns:
        d² >= 0 (tiny negative round-off is clipped to 0), in squared feature units.
    """
    if method not in FRECHET_METHODS:
        raise ValueError(f"method must be one of {FRECHET_METHODS}, got {method!r}")
    mu1, sigma1, mu2, sigma2 = _check(mu1, sigma1, mu2, sigma2)
    diff = mu1 - mu2
    if method == "sqrtm":
        tr_covmean = _trace_sqrt_product_sqrtm(sigma1, sigma2, eps)
    else:
        tr_covmean = _trace_sqrt_product_eigen(sigma1, sigma2)
    value = float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * tr_covmean)
    return max(value, 0.0)
