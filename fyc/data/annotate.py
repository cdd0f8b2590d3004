"""Offline motion labels (paper Eq. 2 mask + strength) for a WebVid CSV, stored in a parquet sidecar.

Policy — **one fixed clip window per video**. RAFT inside the DataLoader is too slow, so labels are computed once,
offline, for a window chosen deterministically from the video alone: ``num_frames`` frames at ``frame_stride``
(or ``round(native_fps / target_fps)``), centred in the video (:func:`fyc.data.sampling.sample_frame_indices` with
``start="center"``; shortened stride when the video is too short, exactly as the dataset does). The window's
indices are stored in the table, and ``WebVidDataset(motion_labels="sidecar")`` decodes exactly those frames, so
the label always describes the frames the model is trained on. Spatial augmentation stays free: the mask covers
the **full frame** (no crop) and the dataset resizes/crops it together with the pixels. ``start="first"`` puts the
window at the video's first frame instead.

**Object masks** (``mask_file``, not the paper's default): the stored mask is read from an image per video (e.g.
``{page_dir}/{videoid}_mask.png``, white = the moving object(s) in the window's first frame: SAM masks made offline,
or the toy world's truth) instead of Eq. 2's flow mask; the strength stays Eq. 2's (mean flow inside the flow mask).
Why: at inference the mask channel gets the clicked object's mask, while Eq. 2's union of per-pair flow masks
covers everything the object sweeps over the clip, plus the flow's spatial spill — several times the object's area
on toy videos (``research/sidecar_stats.py`` measures it). A model trained on the union learns "the mask is where
the object goes" and, given an object mask, keeps the object in place (docs/results.md). The mask describes
frame 0 of the video, so it needs ``start="first"``.

Per video (one row, keyed by ``videoid``):

===================== ================ ===================================================================
column                type             meaning
===================== ================ ===================================================================
``videoid``           string           the CSV's ``videoid``
``status``            string           ``"ok"`` or the skip reason (``missing_file``, ``decode_error``,
                                       ``too_few_frames``); failed rows are kept so a rerun does not retry them
``detail``            string           error message for failed rows, "" otherwise
``frame_indices``     list<int32>      the window: ascending source-frame indices, step ``frame_stride``
``frame_stride``      int32            stride actually used (>= 1)
``fps``               float32          native fps / frame_stride
``video_height/width`` int32           source video size (px)
``mask_height/width`` int32            mask grid: the full frame resized so its short side is
                                       ``min(mask_short_side, flow short side)`` (aspect kept)
``mask_bits``         binary           the mask, ``numpy.packbits`` of the row-major bool (mask_h, mask_w) grid
``mask_fraction``     float32          fraction of the frame inside the mask, in [0, 1]
``strength``          float32          mean |flow| inside the mask, px per pair of window frames, at a frame
                                       whose short side is ``reference_short_side`` (>= 0)
``flow_backend``      string           the backend that produced the row (after any fallback)
``magnitude_bits``    binary           float16 (mask_h, mask_w): each cell's mean |flow| over the window's pairs,
                                       in ``strength``'s unit (version >= 2; lets a crop re-derive its strength)
===================== ================ ===================================================================

Flow is computed on the full frame resized to short side ``flow_short_side`` (never upscaled: a smaller video is
used at its native size); the mask at that resolution is pooled to the mask grid by the project's one rule
(:func:`fyc.motion.masks.pool_mask`, a cell is in the mask if any of its pixels is), the magnitude map by area
averaging. Labels are computed on the full frame; the dataset crops mask and magnitude with the pixels and
re-derives the strength of what remains (a crop that cuts the moving region away gets strength 0).
The annotation parameters are stored in the parquet schema metadata (key ``fyc_motion_sidecar``, JSON).

Resumable and shardable: each shard (``shard=(i, n)``, row ``j`` belongs to shard ``j % n``) appends part files
``<out>.parts/shard-iiiii-of-nnnnn-kkkkkk.parquet`` every ``flush_every`` clips (atomic renames); a rerun reads
every part and skips the videoids already there. When the parts cover every row of the CSV, they are merged
into ``out`` (whichever shard finishes last does it; ``merge_sidecar`` does it by hand).
"""
from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import torch

from fyc.data.sampling import TooFewFramesError, sample_frame_indices
# Reading sidecars lives in fyc.data.sidecar (the dataset needs it without the annotator); names re-exported here.
from fyc.data.sidecar import (METADATA_KEY, SIDECAR_VERSION, MissingSidecarError, MotionSidecar,  # noqa: F401
                              _sidecar_files, pack_floats, pack_mask, parts_dir, read_sidecar, read_sidecar_metadata,
                              sidecar_stats, unpack_floats, unpack_mask)
from fyc.motion.masks import pool_mask_np

logger = logging.getLogger(__name__)
SKIP_REASONS = ("missing_file", "decode_error", "too_few_frames", "bad_row")


@dataclass
class AnnotateConfig:
    """What an annotation run computes (stored in the sidecar's metadata).

    num_frames, frame_stride, target_fps: the window (fixed stride or stride from a target fps; not a range).
    flow: backend (``fyc.motion.FLOW_BACKENDS``); weights: RAFT weights ("DEFAULT" = torchvision weights API, a
        local state-dict path, or None = random weights, for speed tests only).
    allow_fallback: when RAFT weights cannot be loaded, warn loudly and use ``dis`` instead of failing.
    flow_short_side: flow resolution (short side px); mask_short_side: stored mask grid (short side px; 64 is
        the latent grid of 512-px training); reference_short_side: the unit of ``strength``.
    start: where the window sits: "center" (default) or "first" (from the video's first frame).
    mask_file: None (Eq. 2 flow mask) or a path template of an object-mask image per video, relative to the video
        root and formatted with the CSV row's columns like the video's ``path_template`` (needs ``start="first"``).
    """

    num_frames: int = 16
    frame_stride: int | None = 4
    target_fps: float | None = None
    flow: str = "dis"
    weights: str | None = "DEFAULT"
    allow_fallback: bool = False
    device: str = "cpu"
    flow_short_side: int = 256
    mask_short_side: int = 64
    reference_short_side: int = 512
    min_magnitude: float = 1e-3
    start: str = "center"
    mask_file: str | None = None

    def __post_init__(self):
        if self.start not in ("center", "first"):
            raise ValueError(f"start must be 'center' or 'first' (one window per video), got {self.start!r}")
        if self.mask_file is not None and self.start != "first":
            raise ValueError(f"mask_file={self.mask_file!r} holds each video's first-frame object mask, so the window "
                             f"must start there: start='first', got {self.start!r}")
        if isinstance(self.frame_stride, (tuple, list)):
            raise ValueError(f"annotation needs a fixed frame_stride (one window per video), got a range "
                             f"{tuple(self.frame_stride)}")
        if self.frame_stride is not None and self.target_fps is not None:
            raise ValueError("give either frame_stride or target_fps, not both")
        if self.num_frames < 2:
            raise ValueError(f"num_frames must be >= 2 (flow needs a pair), got {self.num_frames}")
        for name in ("flow_short_side", "mask_short_side", "reference_short_side"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")


@dataclass
class AnnotateResult:
    """Counts of one run: ``done`` (already in the sidecar), ``processed`` (labelled now), ``skipped`` (reason →
    count, this run), ``seconds``, ``clips_per_s`` (processed clips / wall time), ``merged`` (path or None)."""

    total: int = 0
    done: int = 0
    processed: int = 0
    skipped: Counter = field(default_factory=Counter)
    seconds: float = 0.0
    clips_per_s: float = 0.0
    backend: str = ""
    merged: Path | None = None


def parse_shard(spec: str | None) -> tuple[int, int]:
    """``"i/n"`` → (i, n); None → from torchrun's ``RANK``/``WORLD_SIZE`` (or SLURM's), else (0, 1)."""
    if spec is None:
        for rank_var, world_var in (("RANK", "WORLD_SIZE"), ("SLURM_PROCID", "SLURM_NTASKS")):
            if rank_var in os.environ and world_var in os.environ:
                return parse_shard(f"{os.environ[rank_var]}/{os.environ[world_var]}")
        return 0, 1
    try:
        i, n = (int(v) for v in str(spec).split("/"))
    except ValueError:
        raise ValueError(f"shard must look like 'i/n' (e.g. 0/4), got {spec!r}") from None
    if not 0 <= i < n:
        raise ValueError(f"shard {spec!r}: need 0 <= i < n")
    return i, n


def label_grid(height: int, width: int, short_side: int) -> tuple[int, int]:
    """(h, w) of a frame resized so its short side is ``min(short_side, current short side)``, aspect kept."""
    scale = min(1.0, short_side / min(height, width))
    return max(1, round(height * scale)), max(1, round(width * scale))


def downsample_mask(mask: np.ndarray, height: int, width: int) -> np.ndarray:
    """bool (H, W) → bool (height, width) by the project's one pooling rule (:func:`fyc.motion.masks.pool_mask`:
    a cell is in the region if any of its pixels is), as the training module and the pipeline pool masks."""
    return pool_mask_np(mask, height, width)


def downsample_magnitude(magnitude: np.ndarray, height: int, width: int) -> np.ndarray:
    """float (H, W) per-pixel mean |flow| → float32 (height, width) by area averaging."""
    import cv2

    magnitude = np.asarray(magnitude, dtype=np.float32)
    if magnitude.shape == (height, width):
        return magnitude
    return cv2.resize(magnitude, (width, height), interpolation=cv2.INTER_AREA)


def window_for(length: int, native_fps: float, config: AnnotateConfig):
    """The fixed window of a video: :class:`~fyc.data.sampling.FrameSample` (``config.start``)."""
    return sample_frame_indices(length, config.num_frames, native_fps, stride=config.frame_stride,
                                target_fps=config.target_fps, start=config.start)


class _Failed(Exception):
    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason, self.detail = reason, detail


def decode_window(source, config: AnnotateConfig) -> dict:
    """Decode a video's window at flow resolution → dict(frames uint8 (F, h, w, 3), frame_indices, frame_stride,
    fps, video_height, video_width). Raises ``_Failed`` with a skip reason."""
    from decord._ffi.base import DECORDError

    from fyc.data.video_io import read_video, video_info

    if isinstance(source, (str, Path)) and not Path(source).is_file():
        raise _Failed("missing_file", "no such file")
    try:
        length, native_fps, h, w = video_info(source)
    except (DECORDError, RuntimeError, OSError) as err:
        raise _Failed("decode_error", f"cannot open: {err}") from None
    if not np.isfinite(native_fps) or native_fps <= 0:
        raise _Failed("decode_error", f"invalid fps {native_fps}")
    try:
        clip = window_for(length, native_fps, config)
    except TooFewFramesError as err:
        raise _Failed("too_few_frames", str(err)) from None
    size = label_grid(h, w, config.flow_short_side)
    try:
        frames = read_video(source, clip.indices.tolist(), size=size if size != (h, w) else None)
    except (DECORDError, RuntimeError, OSError) as err:
        raise _Failed("decode_error", f"cannot decode frames: {err}") from None
    return {"frames": frames, "frame_indices": clip.indices.astype(np.int32), "frame_stride": clip.stride,
            "fps": clip.fps, "video_height": h, "video_width": w}


def read_object_mask(path: str | Path, height: int, width: int) -> np.ndarray:
    """An object-mask image (white = object; any channels) of a ``height`` x ``width`` video → bool (height, width).
    Raises ``_Failed`` naming the file when it is missing, unreadable, of another size or empty."""
    import cv2

    if not Path(path).is_file():
        raise _Failed("missing_file", f"no object mask {path}")
    image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if image is None:
        raise _Failed("decode_error", f"cannot read the object mask {path}")
    if image.shape != (height, width):
        raise _Failed("decode_error", f"object mask {path} is {image.shape[1]}x{image.shape[0]}, the video "
                                      f"{width}x{height}")
    mask = image > 127
    if not mask.any():
        raise _Failed("decode_error", f"object mask {path} is empty (no pixel > 127)")
    return mask


def _schema():
    import pyarrow as pa

    return pa.schema([("videoid", pa.string()), ("status", pa.string()), ("detail", pa.string()),
                      ("frame_indices", pa.list_(pa.int32())), ("frame_stride", pa.int32()), ("fps", pa.float32()),
                      ("video_height", pa.int32()), ("video_width", pa.int32()), ("mask_height", pa.int32()),
                      ("mask_width", pa.int32()), ("mask_bits", pa.binary()), ("mask_fraction", pa.float32()),
                      ("strength", pa.float32()), ("flow_backend", pa.string()), ("magnitude_bits", pa.binary())])


def _empty_row(videoid: str, status: str, detail: str, backend: str) -> dict:
    return {"videoid": videoid, "status": status, "detail": detail, "frame_indices": [], "frame_stride": 0,
            "fps": 0.0, "video_height": 0, "video_width": 0, "mask_height": 0, "mask_width": 0, "mask_bits": b"",
            "mask_fraction": 0.0, "strength": 0.0, "flow_backend": backend, "magnitude_bits": b""}


def _write_parquet(rows: list[dict], path: Path, metadata: dict) -> None:
    """Atomic write of rows (dicts in the sidecar schema) with the run's metadata."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = _schema().with_metadata({METADATA_KEY: json.dumps(metadata).encode()})
    table = pa.Table.from_pylist(rows, schema=schema)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    pq.write_table(table, tmp)
    os.replace(tmp, path)


def merge_sidecar(out: str | Path) -> Path:
    """Merge ``out`` and its parts into ``out`` (atomic; parts are kept so running shards can still resume)."""
    import pyarrow.parquet as pq

    out = Path(out)
    metadata = read_sidecar_metadata(out)
    table = read_sidecar(out)
    table = table.replace_schema_metadata({METADATA_KEY: json.dumps(metadata).encode()})
    tmp = out.with_name(f".{out.name}.tmp{os.getpid()}")
    pq.write_table(table, tmp)
    os.replace(tmp, out)
    return out


def build_flow_estimator(config: AnnotateConfig):
    """(FlowEstimator, backend actually used). RAFT without loadable weights raises unless ``allow_fallback``,
    which warns loudly and uses ``dis`` (the weight-free backend whose labels scale with speed)."""
    from fyc.motion import FlowEstimator

    try:
        return FlowEstimator(config.flow, weights=config.weights, device=config.device), config.flow
    except (RuntimeError, FileNotFoundError, OSError) as err:
        if not (config.flow.startswith("raft") and config.allow_fallback):
            raise
        message = (f"!!! RAFT weights unavailable ({err}). FALLING BACK TO OpenCV dis flow for every clip "
                   "of this run (recorded in the sidecar's flow_backend column) !!!")
        logger.warning(message)
        print(message, file=sys.stderr, flush=True)
        return FlowEstimator("dis"), "dis"


def label_clips(estimator, clips: list[np.ndarray], config: AnnotateConfig) -> list[tuple]:
    """Eq. 2 labels for clips (uint8 (F, h, w, 3) each) → [(mask bool (h, w), strength at reference,
    per-pixel mean |flow| float32 (h, w) at reference)].

    Clips of the same size are batched into one ``FlowEstimator.pairs`` call (one RAFT batch on the GPU)."""
    from fyc.motion import motion_label_from_flow

    out: list = [None] * len(clips)
    groups: dict[tuple, list[int]] = {}
    for k, clip in enumerate(clips):
        groups.setdefault(clip.shape, []).append(k)
    for members in groups.values():
        first = np.concatenate([clips[k][:-1] for k in members])
        second = np.concatenate([clips[k][1:] for k in members])
        flow = estimator.pairs(first, second)
        start = 0
        for k in members:
            pairs = clips[k].shape[0] - 1
            label = motion_label_from_flow(flow[start:start + pairs], config.reference_short_side,
                                           config.min_magnitude)
            out[k] = (label.mask.numpy(), float(label.strength), label.magnitude.numpy())
            start += pairs
    return out


class _WindowSource(torch.utils.data.Dataset):
    """Decodes the windows of the rows to do (runs in DataLoader workers)."""

    def __init__(self, items: list[tuple[str, str, str | None]], config: AnnotateConfig):
        self.items, self.config = items, config

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, k: int) -> dict:
        videoid, path, mask_path = self.items[k]
        try:
            item = {"videoid": videoid, **decode_window(path, self.config)}
            if mask_path is not None:
                item["object_mask"] = read_object_mask(mask_path, item["video_height"], item["video_width"])
            return item
        except _Failed as failed:
            return {"videoid": videoid, "failed": failed.reason, "detail": f"{path}: {failed.detail}"}


def _worker_init(_worker_id: int) -> None:
    from fyc.data.video_io import limit_opencv_threads

    limit_opencv_threads()
    torch.set_num_threads(1)


def annotate_motion(csv_path: str | Path, out: str | Path, config: AnnotateConfig | None = None, *,
                    video_root: str | Path | None = None, path_template: str = "{page_dir}/{videoid}.mp4",
                    shard: tuple[int, int] | str | None = None, batch_size: int = 8, num_workers: int = 0,
                    flush_every: int = 256, retry_failed: bool = False, limit: int | None = None,
                    progress: bool = True, merge: bool = True) -> AnnotateResult:
    """Label every video of ``csv_path`` (this shard's rows) into the sidecar ``out``; see the module docstring.

    Args:
        shard: ``(i, n)`` or ``"i/n"``; None → torchrun/SLURM environment or (0, 1).
        batch_size: clips per flow batch (and per DataLoader batch); num_workers: decoding processes.
        flush_every: clips per part file (the work lost by a kill is at most this many clips).
        retry_failed: also redo rows stored with a failure status.
        limit: stop after this many clips (for tests and smoke runs).
    Returns:
        :class:`AnnotateResult`. Skipped rows are counted, logged and visible in the progress bar.
    """
    from tqdm.auto import tqdm

    from fyc.data.webvid import WebVidDataset

    config = config or AnnotateConfig()
    out = Path(out)
    i, n = shard if isinstance(shard, tuple) else parse_shard(shard)
    # The dataset's CSV parsing: required columns (fails at start naming them), malformed lines counted.
    csv_rows = WebVidDataset(csv_path, video_root, path_template=path_template, motion_labels=None,
                             num_frames=config.num_frames, caption_column="videoid")
    result = AnnotateResult(total=0)
    result.skipped.update(csv_rows.skipped)  # malformed CSV lines (counted once, by shard 0 only below)
    if i != 0:
        result.skipped.clear()

    done: set[str] = set()
    if _sidecar_files(out):
        existing = read_sidecar(out, columns=["videoid", "status"])
        previous = read_sidecar_metadata(out)
        ours = _metadata(config, "")
        changed = {k: (previous.get(k), v) for k, v in ours.items()
                   if k in ("num_frames", "frame_stride", "target_fps", "mask_short_side", "flow_short_side",
                            "reference_short_side", "start", "mask_file") and previous.get(k) != v}
        if changed:
            raise ValueError(f"{out} was written with different annotation settings {changed} (old, new); "
                             "use another --out or the old settings")
        status = existing["status"].to_pylist()
        done = {v for v, s in zip(existing["videoid"].to_pylist(), status) if s == "ok" or not retry_failed}

    if config.mask_file is not None:
        import string

        mask_fields = {f for _, f, _, _ in string.Formatter().parse(config.mask_file) if f}
        unknown = sorted(mask_fields - set(csv_rows.path_fields))
        if unknown:
            raise ValueError(f"mask_file={config.mask_file!r} uses {unknown}; it may use videoid and the fields of "
                             f"path_template={path_template!r}")
    todo: list[tuple[str, str, str | None]] = []
    seen: set[str] = set()
    for j in range(len(csv_rows)):
        if j % n != i:
            continue
        videoid = csv_rows._videoids[j]
        result.total += 1
        if not videoid:
            result.skipped["bad_row"] += 1
            continue
        if videoid in done or videoid in seen:
            result.done += 1
            continue
        seen.add(videoid)
        try:
            mask_path = None if config.mask_file is None else str(csv_rows.row_path(config.mask_file, j))
            todo.append((videoid, str(csv_rows.video_path(j)), mask_path))
        except (KeyError, IndexError, ValueError):
            result.skipped["bad_row"] += 1
    if limit is not None:
        todo = todo[:limit]

    estimator, backend = build_flow_estimator(config)
    result.backend = backend
    metadata = _metadata(config, backend)
    parts = parts_dir(out)
    part_no = len(list(parts.glob(f"shard-{i:05d}-of-{n:05d}-*.parquet"))) if parts.is_dir() else 0
    pending: list[dict] = []

    def flush():
        nonlocal part_no, pending
        if pending:
            while (parts / f"shard-{i:05d}-of-{n:05d}-{part_no:06d}.parquet").exists():
                part_no += 1
            _write_parquet(pending, parts / f"shard-{i:05d}-of-{n:05d}-{part_no:06d}.parquet", metadata)
            part_no, pending = part_no + 1, []

    if num_workers > 0:
        from fyc.data.video_io import limit_opencv_threads

        limit_opencv_threads()  # before forking (see there); flow in this process then uses one OpenCV thread
    loader = torch.utils.data.DataLoader(_WindowSource(todo, config), batch_size=max(1, batch_size),
                                         num_workers=num_workers, collate_fn=list,
                                         worker_init_fn=_worker_init if num_workers > 0 else None)
    start = time.perf_counter()
    bar = tqdm(total=len(todo), unit="clip", desc=f"annotate {config.flow}->{backend} shard {i}/{n}",
               disable=not progress, dynamic_ncols=True)
    try:
        for batch in loader:
            good = [item for item in batch if "failed" not in item]
            labels = label_clips(estimator, [item["frames"] for item in good], config)
            for item in batch:
                if "failed" in item:
                    result.skipped[item["failed"]] += 1
                    logger.warning("skipping %s (%s): %s", item["videoid"], item["failed"], item["detail"])
                    pending.append(_empty_row(item["videoid"], item["failed"], item["detail"], backend))
            for item, (mask, strength, magnitude) in zip(good, labels):
                mask = item.get("object_mask", mask)  # mask_file: the object mask replaces Eq. 2's (strength stays)
                h, w = item["frames"].shape[1:3]
                grid = label_grid(h, w, config.mask_short_side)
                small = downsample_mask(mask, *grid)
                pending.append({"videoid": item["videoid"], "status": "ok", "detail": "",
                                "frame_indices": item["frame_indices"].tolist(),
                                "frame_stride": int(item["frame_stride"]), "fps": float(item["fps"]),
                                "video_height": int(item["video_height"]), "video_width": int(item["video_width"]),
                                "mask_height": grid[0], "mask_width": grid[1], "mask_bits": pack_mask(small),
                                "mask_fraction": float(small.mean()), "strength": strength, "flow_backend": backend,
                                "magnitude_bits": pack_floats(downsample_magnitude(magnitude, *grid))})
                result.processed += 1
            if len(pending) >= flush_every:
                flush()
            bar.update(len(batch))
            elapsed = time.perf_counter() - start
            bar.set_postfix(ok=result.processed, skipped=sum(result.skipped.values()),
                            clips_s=f"{len(batch) and bar.n / max(elapsed, 1e-9):.2f}", refresh=False)
    finally:
        flush()
        bar.close()
    result.seconds = time.perf_counter() - start
    result.clips_per_s = result.processed / result.seconds if result.seconds > 0 else 0.0
    if result.skipped:
        logger.warning("shard %d/%d: skipped %s", i, n, dict(result.skipped))
    logger.info("shard %d/%d: %d labelled (%.2f clips/s), %d already done, skipped %s", i, n, result.processed,
                result.clips_per_s, result.done, dict(result.skipped))

    if merge and limit is None:
        table = read_sidecar(out, columns=["videoid"])
        have = set(table["videoid"].to_pylist())
        wanted = {v for v in (csv_rows._videoids[j] for j in range(len(csv_rows))) if v}
        if wanted <= have:
            result.merged = merge_sidecar(out)
    return result


def _metadata(config: AnnotateConfig, backend: str) -> dict:
    meta = asdict(config)
    meta.update(version=SIDECAR_VERSION, flow_backend=backend, requested_flow=config.flow,
                weights=None if config.weights is None else str(config.weights),
                strength_unit=f"px per frame pair at short side {config.reference_short_side}",
                mask_pooling="any pixel (fyc.motion.masks.pool_mask)")
    return meta


