"""One rule for shrinking a region mask to a coarser grid, shared by sidecar labels, on-the-fly labels, training
and the sampling pipeline, so that a region means the same latent pixels everywhere."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def pool_mask(mask: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Region mask ``(..., H, W)`` (bool or float in {0, 1}) → bool ``(..., h, w)``.

    A cell of the coarse grid is in the region if any pixel it covers is (adaptive max-pool): thin objects
    survive the downsampling, and a region never loses its last cell. Identity when the size already matches.
    """
    mask = torch.as_tensor(mask)
    size = (int(size[0]), int(size[1]))
    binary = mask > 0.5 if mask.is_floating_point() else mask.bool()
    if tuple(binary.shape[-2:]) == size:
        return binary
    lead = binary.shape[:-2]
    flat = binary.reshape(-1, 1, *binary.shape[-2:]).float()
    return (F.adaptive_max_pool2d(flat, size) > 0.5).reshape(*lead, *size)


def pool_mask_np(mask: np.ndarray, height: int, width: int) -> np.ndarray:
    """:func:`pool_mask` for a numpy bool ``(H, W)`` array → bool ``(height, width)``."""
    return pool_mask(torch.from_numpy(np.asarray(mask, dtype=bool)), (height, width)).numpy()
