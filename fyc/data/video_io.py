"""Video files at the boundary: uint8 ``(F, H, W, 3)`` frames in, mp4/gif out, and back (decord).

Writing uses imageio-ffmpeg with libx264 at ``crf=0``. ``pixel_format="yuv444p"`` is near-lossless (RGB↔YUV
rounding only, max error 2/255) and is what datasets and evaluation use; the default ``"yuv420p"`` halves chroma
resolution but plays in every browser/player, so it is for videos people watch. Either way a static background
decodes to the same pixels in every frame (the toy world's ground truth depends on it).
"""
from __future__ import annotations

import io
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


VideoSource = str | os.PathLike | bytes | bytearray | memoryview


def _uri(source: VideoSource):
    """decord input: a path string, or a fresh in-memory file for encoded bytes (e.g. an mp4 read from a shard)."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        return io.BytesIO(bytes(source))
    return str(source)


def video_info(path: VideoSource) -> tuple[int, float, int, int]:
    """Return ``(num_frames, fps, height, width)`` of a video file or of encoded video bytes.

    Frame count and fps come from decord (the decoder that reads the frames); the frame size from the container
    header through PyAV (no frame decoded: ~5 ms less per sample), falling back to decoding frame 0 with decord.
    """
    from decord import VideoReader, cpu

    reader = VideoReader(_uri(path), ctx=cpu(0), num_threads=1)
    length, fps = len(reader), float(reader.get_avg_fps())
    size = _header_size(path)
    if size is None:
        size = reader[0].shape[:2]
    del reader
    return length, fps, int(size[0]), int(size[1])


def _header_size(source: VideoSource) -> tuple[int, int] | None:
    """(height, width) of the first video stream from the container header (PyAV), None if unavailable."""
    try:
        import av

        with av.open(_uri(source)) as container:
            codec = container.streams.video[0].codec_context
            if codec.height > 0 and codec.width > 0:
                return codec.height, codec.width
    except Exception:  # noqa: BLE001 - any PyAV problem: decode a frame instead
        return None
    return None


def read_video(path: VideoSource, indices: Sequence[int] | None = None,
               size: tuple[int, int] | None = None) -> np.ndarray:
    """Decode frames with decord → uint8 ``(F, H, W, 3)``.

    Args:
        path: a video file, or the encoded bytes of one (mp4 in memory).
        indices: frame indices to decode (all frames when None).
        size: optional ``(height, width)``: resized inside the decoder (cheaper than resizing afterwards). decord
            0.6's resizer fails for some output widths (1-4, 6, 8, 12, 16, 24, 48, 72 px, whatever the source);
            those fall back to decoding at native size and resizing with OpenCV (area interpolation).
    """
    from decord import VideoReader, cpu
    from decord._ffi.base import DECORDError

    def decode(kwargs: dict) -> np.ndarray:
        reader = VideoReader(_uri(path), ctx=cpu(0), num_threads=1, **kwargs)
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


def limit_opencv_threads() -> None:
    """One OpenCV thread in this process. Call it in the parent *before* forking workers: a forked child that
    changes the thread count of a pool its parent had started hangs (pthread_cond_destroy on the inherited,
    thread-less pool), so workers must inherit an already single-threaded OpenCV."""
    import cv2

    if cv2.getNumThreads() != 1:
        cv2.setNumThreads(1)
