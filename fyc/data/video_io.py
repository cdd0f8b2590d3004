"""Video files at the boundary: uint8 ``(F, H, W, 3)`` frames in, mp4/gif out, and back (decord).

Writing uses imageio-ffmpeg with libx264 at ``crf=0``. ``pixel_format="yuv444p"`` is near-lossless (RGB↔YUV
rounding only, max error 2/255) and is what datasets and evaluation use; the default ``"yuv420p"`` halves chroma
resolution but plays in every browser/player, so it is for videos people watch. Either way a static background
decodes to the same pixels in every frame (the toy world's ground truth depends on it).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np


def _check_frames(frames: np.ndarray) -> np.ndarray:
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be uint8 (F, H, W, 3), got shape {frames.shape}")
    if frames.dtype != np.uint8:
        raise ValueError(f"frames must be uint8, got {frames.dtype}")
    return frames


def write_video(path: str | os.PathLike, frames: np.ndarray, fps: float = 8.0, crf: int = 0,
                pixel_format: str = "yuv420p") -> Path:
    """Write uint8 ``(F, H, W, 3)`` frames to ``path`` (.mp4 via libx264, or .gif). Atomic: the file
    appears complete or not at all. Returns the path."""
    import imageio.v2 as imageio

    frames = _check_frames(frames)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    if path.suffix.lower() == ".gif":
        imageio.mimsave(tmp, list(frames), duration=1000.0 / fps, loop=0)
    else:
        h, w = frames.shape[1:3]
        if h % 2 or w % 2:
            raise ValueError(f"mp4 needs even height and width, got {h}x{w}")
        writer = imageio.get_writer(tmp, fps=fps, codec="libx264", format="FFMPEG", macro_block_size=1,
                                    pixelformat=pixel_format, ffmpeg_log_level="error",
                                    output_params=["-crf", str(crf), "-preset", "veryfast"])
        try:
            for frame in frames:
                writer.append_data(frame)
        finally:
            writer.close()
    os.replace(tmp, path)
    return path


def video_info(path: str | os.PathLike) -> tuple[int, float, int, int]:
    """Return ``(num_frames, fps, height, width)`` of a video file (decord)."""
    from decord import VideoReader, cpu

    reader = VideoReader(str(path), ctx=cpu(0))
    h, w = reader[0].shape[:2]
    return len(reader), float(reader.get_avg_fps()), h, w


def read_video(path: str | os.PathLike, indices: Sequence[int] | None = None,
               size: tuple[int, int] | None = None) -> np.ndarray:
    """Decode frames with decord → uint8 ``(F, H, W, 3)``.

    Args:
        indices: frame indices to decode (all frames when None).
        size: optional ``(height, width)``: resized inside the decoder (cheaper than resizing afterwards). decord
            0.6's resizer fails for some output widths (1-4, 6, 8, 12, 16, 24, 48, 72 px, whatever the source);
            those fall back to decoding at native size and resizing with OpenCV (area interpolation).
    """
    from decord import VideoReader, cpu
    from decord._ffi.base import DECORDError

    def decode(kwargs: dict) -> np.ndarray:
        reader = VideoReader(str(path), ctx=cpu(0), num_threads=1, **kwargs)
        frames = reader.get_batch(list(range(len(reader)) if indices is None else indices)).asnumpy()
        del reader  # frees the file handle now, not at garbage collection
        return frames

    if size is None:
        return decode({})
    try:
        return decode({"height": int(size[0]), "width": int(size[1])})
    except DECORDError:
        import cv2

        frames = decode({})
        return np.stack([cv2.resize(f, (int(size[1]), int(size[0])), interpolation=cv2.INTER_AREA) for f in frames])
