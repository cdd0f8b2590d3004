"""Which frames of a video a training/eval sample uses (pure functions, no I/O).

A clip is ``num_frames`` frames ``start, start + stride, ..., start + (num_frames - 1) * stride``. The stride is
fixed, drawn per sample from an inclusive ``(min, max)`` range, or derived from a target fps
(``round(native_fps / target_fps)``). When the video is too short for that stride, the largest stride that fits is
used (>= 1); a video with fewer than ``num_frames`` frames cannot give a sample (:class:`TooFewFramesError`).

The returned stride and fps are the ones actually used (fps = native_fps / stride): unlike the official FYC
loader, the label always matches the frames.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

START_MODES = ("random", "center", "first")


class TooFewFramesError(ValueError):
    """The video has fewer frames than one sample needs."""


@dataclass(frozen=True)
class FrameSample:
    """indices: int64 (num_frames,) ascending; stride: frames between samples; fps: native_fps / stride."""

    indices: np.ndarray
    stride: int
    fps: float


def requested_stride(stride: int | tuple[int, int] | None = None, target_fps: float | None = None,
                     native_fps: float | None = None, rng: np.random.Generator | None = None) -> int:
    """The stride a sample asks for before fitting it to the video length.

    Exactly one of ``stride`` (int, or inclusive (min, max) range drawn with ``rng``) and ``target_fps``
    (needs ``native_fps``) may be given; neither → 1.
    """
    if stride is not None and target_fps is not None:
        raise ValueError("give either a frame stride or a target fps, not both")
    if target_fps is not None:
        if target_fps <= 0 or native_fps is None or not math.isfinite(native_fps) or native_fps <= 0:
            raise ValueError(f"target_fps={target_fps} needs a positive native fps, got {native_fps}")
        return max(1, round(native_fps / target_fps))
    if stride is None:
        return 1
    if isinstance(stride, (tuple, list)):
        low, high = (int(s) for s in stride)
        if not 1 <= low <= high:
            raise ValueError(f"stride range must be 1 <= min <= max, got {tuple(stride)}")
        if rng is None:
            raise ValueError("a stride range needs an rng")
        return int(rng.integers(low, high + 1))
    if int(stride) < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    return int(stride)


def sample_frame_indices(video_length: int, num_frames: int, native_fps: float, *,
                         stride: int | tuple[int, int] | None = None, target_fps: float | None = None,
                         start: str = "random", rng: np.random.Generator | None = None) -> FrameSample:
    """Choose the frames of one clip from a video of ``video_length`` frames at ``native_fps``.

    Args:
        stride: fixed int, or inclusive (min, max) range drawn per call; ``None`` → 1 (or from ``target_fps``).
        target_fps: derive the stride as ``round(native_fps / target_fps)`` instead.
        start: ``"random"`` (uniform over valid starts, needs ``rng``), ``"center"`` or ``"first"``.
    Raises:
        TooFewFramesError: ``video_length < num_frames``.
    """
    if num_frames < 1:
        raise ValueError(f"num_frames must be >= 1, got {num_frames}")
    if start not in START_MODES:
        raise ValueError(f"start must be one of {START_MODES}, got {start!r}")
    if video_length < num_frames:
        raise TooFewFramesError(f"video has {video_length} frames, a sample needs {num_frames}")
    wanted = requested_stride(stride, target_fps, native_fps, rng)
    # Largest stride whose span still fits in the video (a single-frame clip fits any stride).
    fits = (video_length - 1) // (num_frames - 1) if num_frames > 1 else wanted
    used = max(1, min(wanted, fits))
    last_start = video_length - ((num_frames - 1) * used + 1)
    if start == "random":
        if rng is None:
            raise ValueError("start='random' needs an rng")
        first = int(rng.integers(0, last_start + 1))
    elif start == "center":
        first = last_start // 2
    else:
        first = 0
    indices = first + used * np.arange(num_frames, dtype=np.int64)
    return FrameSample(indices=indices, stride=used, fps=float(native_fps) / used)
