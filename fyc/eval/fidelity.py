"""Fidelity to the input image: I1-MSE and out-of-region stillness.

Scale: pixels in [0, 255] (uint8 gray levels), so an MSE is in squared gray levels. This is the scale on which
the Follow-Your-Click Table 1 numbers are plausible: FYC's I1-MSE 21.46 is an RMSE of 4.6 gray levels
(PSNR 34.8 dB), DynamiCrafter's 98.19 is PSNR 28.2 dB, I2VGen-XL's 117.86 is 27.4 dB — a diffusion VAE round
trip and a loosely conditioned first frame. On a [0, 1] scale an MSE cannot exceed 1, and on [0, 1]×1000 the
baselines would sit at PSNR 9–17 dB (an unrelated image), so [0, 255] is the reading we adopt.
PSNR = 10·log10(255² / MSE) converts between the two.
"""
from __future__ import annotations

import cv2
import numpy as np
import torch

from fyc.eval.masks import check_region_mask, dilate_mask


def _as_uint8_image(image, name: str) -> np.ndarray:
    image = np.asarray(image.cpu() if torch.is_tensor(image) else image)
    if image.ndim != 3 or image.shape[-1] != 3 or image.dtype != np.uint8:
        raise ValueError(f"{name} must be uint8 (H, W, 3), got {image.dtype} {image.shape}")
    return image


def i1_mse(first_frame, input_image, resize: bool = True) -> float:
    """MSE between the generated first frame and the input image, over pixels and RGB channels, in [0, 255]².

    Args:
        first_frame: uint8 ``(H, W, 3)`` — frame 0 of the generated video.
        input_image: uint8 ``(h, w, 3)`` — the conditioning image.
        resize: when the sizes differ, resize the input image to the frame size (``cv2.INTER_AREA``, the
            anti-aliased choice for downscaling); with False a size mismatch is an error.

    Returns:
        MSE in [0, 65025] (0 = identical).
    """
    frame = _as_uint8_image(first_frame, "first_frame")
    image = _as_uint8_image(input_image, "input_image")
    if image.shape != frame.shape:
        if not resize:
            raise ValueError(f"first frame {frame.shape} and input image {image.shape} differ in size")
        image = cv2.resize(image, (frame.shape[1], frame.shape[0]), interpolation=cv2.INTER_AREA)
    diff = frame.astype(np.float64) - image.astype(np.float64)
    return float(np.mean(diff ** 2))


def background_stillness(video, region_mask, dilate_px: int = 0) -> float:
    """Mean absolute change of out-of-region pixels relative to frame 0 (lower = stiller background).

    Args:
        video: uint8 ``(F>=2, H, W, 3)``.
        region_mask: bool ``(H, W)``, True = the region allowed to move.
        dilate_px: grow the region by this many pixels first (forgives boundary pixels).

    Returns:
        mean over frames t >= 1, pixels outside the (dilated) region and RGB channels of |x_t - x_0|, in gray
        levels [0, 255].
    """
    video = np.asarray(video)
    if video.ndim != 4 or video.shape[-1] != 3 or video.dtype != np.uint8 or video.shape[0] < 2:
        raise ValueError(f"video must be uint8 (F>=2, H, W, 3), got {video.dtype} {video.shape}")
    region = dilate_mask(check_region_mask(region_mask, video.shape[1:3]), dilate_px)
    outside = ~region
    if not outside.any():
        raise ValueError("the (dilated) region covers the whole frame: no background to measure")
    change = np.abs(video[1:].astype(np.int16) - video[:1].astype(np.int16))  # (F-1, H, W, 3)
    return float(change[:, outside].mean())
