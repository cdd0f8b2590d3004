"""First-frame latent masking (training-time augmentation of the image condition).

Follow-Your-Click zeroes a random subset of the first-frame latent z0 before it is concatenated to the noisy
video latent (paper §4.2, ratio 0.7 best). The paper draws square patches (Fig. 2) while the official inference
code masks single latent pixels; the patch size is therefore a parameter (1 = latent pixel). The official config
lists rates [0, 0.3, 0.5, 0.7], read here as "one rate drawn per sample".

Exactly ``round(ratio * num_patches)`` patches are masked per sample (not a Bernoulli draw), so the masked
fraction equals the ratio up to rounding and edge patches cropped when h or w is not a multiple of patch_size.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass

import torch


def first_frame_keep_mask(
    batch: int,
    height: int,
    width: int,
    ratio: float | Sequence[float],
    patch_size: int = 1,
    prob: float = 1.0,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Random keep-mask for first-frame latents.

    Args:
        batch, height, width: latent batch size and spatial size (h, w).
        ratio: fraction of patches to zero, in [0, 1]; a sequence -> one value drawn uniformly per sample.
        patch_size: patch side in latent pixels (>= 1). Edge patches are cropped when h/w are not multiples.
        prob: probability in [0, 1] that a sample is masked at all (others keep everything).
        generator: torch.Generator for reproducibility; random numbers are drawn on its device.
        device: device of the returned mask (default: the generator's device, else CPU).

    Returns:
        (B, 1, h, w) float mask, 1 = keep, 0 = masked; broadcast it over latent channels.
    """
    ratios = [float(ratio)] if isinstance(ratio, numbers.Real) else [float(r) for r in ratio]
    if not ratios or any(not 0.0 <= r <= 1.0 for r in ratios):
        raise ValueError(f"ratio must be a number or a non-empty sequence of numbers in [0, 1], got {ratio!r}")
    if patch_size < 1:
        raise ValueError(f"patch_size must be >= 1, got {patch_size}")
    if not 0.0 <= prob <= 1.0:
        raise ValueError(f"prob must be in [0, 1], got {prob}")

    draw_device = generator.device if generator is not None else torch.device("cpu")
    grid_h, grid_w = math.ceil(height / patch_size), math.ceil(width / patch_size)
    num_patches = grid_h * grid_w

    ratio_index = torch.randint(len(ratios), (batch,), generator=generator, device=draw_device)
    apply = torch.rand(batch, generator=generator, device=draw_device) < prob
    num_masked = torch.tensor([round(ratios[i] * num_patches) for i in ratio_index.tolist()], device=draw_device)
    num_masked = torch.where(apply, num_masked, torch.zeros_like(num_masked))

    # Rank of each patch in a random permutation; the num_masked lowest-ranked patches are masked.
    ranks = torch.rand(batch, num_patches, generator=generator, device=draw_device).argsort(dim=1).argsort(dim=1)
    keep = (ranks >= num_masked[:, None]).float().reshape(batch, 1, grid_h, grid_w)
    keep = keep.repeat_interleave(patch_size, dim=2).repeat_interleave(patch_size, dim=3)[:, :, :height, :width]
    return keep.to(device if device is not None else draw_device)


def mask_first_frame_latent(
    latent: torch.Tensor,
    ratio: float | Sequence[float],
    patch_size: int = 1,
    prob: float = 1.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Zero a random subset of patches of the first-frame latent, shared over channels.

    latent: (B, C, h, w) first-frame latent. Other arguments as :func:`first_frame_keep_mask`.
    Returns a new (B, C, h, w) tensor (the input is not modified).
    """
    batch, _, height, width = latent.shape
    keep = first_frame_keep_mask(batch, height, width, ratio, patch_size, prob, generator, device=latent.device)
    return latent * keep.to(latent.dtype)


@dataclass(frozen=True)
class FirstFrameMasking:
    """Config-friendly holder of the masking settings; ``masking(latent, generator)`` applies them.

    Defaults follow the paper: ratio 0.7, latent-pixel patches, every sample masked.
    """

    ratio: float | tuple[float, ...] = 0.7
    patch_size: int = 1
    prob: float = 1.0

    def __call__(self, latent: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """latent (B, C, h, w) -> masked copy (B, C, h, w)."""
        return mask_first_frame_latent(latent, self.ratio, self.patch_size, self.prob, generator)
