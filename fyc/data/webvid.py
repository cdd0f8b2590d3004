"""WebVid-style video dataset: CSV rows → decoded, resized clips with on-the-fly motion labels.

CSV schema (WebVid-10M): ``videoid, contentUrl, duration, page_dir, name`` (+ optional ``short_prompt`` for
WebVid-Motion / the toy world). Only the columns the dataset uses are required: the fields of ``path_template``,
``videoid``, ``caption_column`` and, with ``require_short_prompt``, ``short_prompt_column``.
"""
from __future__ import annotations

import logging
import string
from collections import Counter
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch.utils.data import Dataset

from fyc.data.sampling import START_MODES, TooFewFramesError, sample_frame_indices
from fyc.data.video_io import read_video, video_info

logger = logging.getLogger(__name__)

#: ``label_fn(frames, sample) -> fyc.motion.MotionLabel``: ``frames`` uint8 (F, H, W, 3) exactly as returned,
#: ``sample`` the sample dict built so far (``videoid``, ``frame_indices``, ``frame_stride``, ``fps``, ...).
LabelFn = Callable[[np.ndarray, dict], Any]


class FlowMotionLabeler:
    """Paper Eq. 2 labels from optical flow of the returned frames (``fyc.motion``).

    The flow estimator is built on first use, so every DataLoader worker builds its own (RAFT is not shared
    across processes). ``reference_short_side=None`` keeps strengths in pixels of the returned frames.
    """

    def __init__(self, backend: str = "dis", weights: str | None = "DEFAULT",
                 reference_short_side: int | None = None):
        self.backend, self.weights, self.reference_short_side = backend, weights, reference_short_side
        self._estimator = None

    def __call__(self, frames: np.ndarray, sample: dict):
        from fyc.motion import FlowEstimator, motion_label_from_flow

        if self._estimator is None:
            self._estimator = FlowEstimator(self.backend, weights=self.weights)
        return motion_label_from_flow(self._estimator(frames), self.reference_short_side)


class _PackedStrings:
    """A string column as one UTF-8 buffer + offsets. A list of Python strings has its refcounts touched on every
    access, which un-shares the memory of forked DataLoader workers (copy-on-write, pytorch#13246); numpy
    buffers stay shared, which matters for a 10M-row CSV."""

    def __init__(self, values):
        encoded = [str(v).encode("utf-8") for v in values]
        self._offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
        np.cumsum([len(e) for e in encoded], out=self._offsets[1:])
        self._data = np.frombuffer(b"".join(encoded), dtype=np.uint8)

    def __len__(self) -> int:
        return len(self._offsets) - 1

    def __getitem__(self, i: int) -> str:
        return self._data[self._offsets[i]:self._offsets[i + 1]].tobytes().decode("utf-8")


def _read_table(csv_path: Path, columns: list[str]):
    """The CSV's ``columns`` as strings (empty fields → ""), and the parser's messages for lines it dropped
    (e.g. an unquoted comma in a caption gives too many fields)."""
    import warnings

    import pandas as pd

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", pd.errors.ParserWarning)
        # No usecols: with it pandas silently truncates a line with too many fields instead of reporting it.
        table = pd.read_csv(csv_path, dtype=str, keep_default_na=False, on_bad_lines="warn")
    malformed = [line.strip() for w in caught if issubclass(w.category, pd.errors.ParserWarning)
                 for line in str(w.message).splitlines() if line.startswith("Skipping line")]
    return table[columns].fillna(""), malformed


#: Why a sample was skipped (keys of ``WebVidDataset.skipped``).
SKIP_REASONS = ("missing_file", "decode_error", "too_few_frames", "bad_row", "no_short_prompt", "no_label",
                "stale_label")


class _Skip(Exception):
    """A sample that cannot be used; ``reason`` is the key counted in ``WebVidDataset.skipped``."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


class WebVidDataset(Dataset):
    """Clips of ``num_frames`` frames from the videos listed in a WebVid CSV.

    Sample dict (``F = num_frames``, ``(H, W) = resolution``):

    ==================  ====================  ===================================================================
    key                 type / shape          values
    ==================  ====================  ===================================================================
    ``pixel_values``    float32 (3, F, H, W)  RGB in [-1, 1]
    ``motion_mask``     float32 (1, H, W)     {0, 1}: union over frame pairs of |flow| > mean |flow| (Eq. 2)
    ``motion_strength`` float32 ()            >= 0, mean |flow| inside the mask, px per pair of returned frames
                                              at ``reference_short_side`` (None: at the returned resolution)
    ``frame_stride``    int64 ()              >= 1, stride actually used between returned frames
    ``fps``             float32 ()            native fps / frame_stride (the fps of the returned clip)
    ``frame_indices``   int64 (F,)            indices into the source video, ascending, step ``frame_stride``
    ``caption``         str                   ``caption_column`` (WebVid ``name``)
    ``short_prompt``    str                   ``short_prompt_column``, "" when the CSV has none
    ``videoid``         str                   ``videoid`` column
    ==================  ====================  ===================================================================

    ``motion_mask`` and ``motion_strength`` are absent when ``motion_labels=None``. A DataLoader's default
    collate stacks tensors to a leading batch dim and turns strings into lists.

    Args:
        csv_path: the CSV. ``video_root``: folder the paths are relative to (default: the CSV's folder).
        resolution: output (H, W), or an int for square. Frames are resized (shorter side first, decode-time when
            downscaling) then centre-cropped, or randomly cropped with ``random_crop``.
        num_frames, frame_stride, target_fps, start: frame sampling, see :func:`fyc.data.sampling.sample_frame_indices`
            (``frame_stride`` int or inclusive (min, max) range; ``start`` "random" | "center" | "first").
        path_template: video path relative to ``video_root``, ``str.format``-ed with the row's columns.
        caption_column, short_prompt_column: text columns; a missing short-prompt column gives "" unless
            ``require_short_prompt`` (then the column is required and rows with an empty prompt are skipped).
        motion_labels: "flow" (default) labels every sample from the optical flow of exactly the returned frames;
            "sidecar" (or the path of one) reads precomputed labels from a parquet sidecar written by
            ``scripts/annotate_motion.py`` (:mod:`fyc.data.annotate`): each video then uses the sidecar's fixed
            frame window (``frame_stride``/``target_fps``/``start`` are ignored, crops stay random), the
            full-frame mask is resized and cropped with the pixels, and rows without an ok label are skipped
            (``no_label``); None omits the motion keys.
        motion_sidecar: the sidecar for ``motion_labels="sidecar"`` (default: ``<csv stem>.motion.parquet``
            beside the CSV).
        flow_backend, flow_weights, reference_short_side: the flow labeller (see ``fyc.motion``).
        label_fn: replaces the flow labeller (e.g. precomputed labels), see :data:`LabelFn`.
        seed: sample ``i``'s randomness (stride, start, crop) comes from ``(seed, epoch, i)`` only, so it does not
            depend on the number of workers; change the epoch with :meth:`set_epoch`.
        max_attempts: a broken sample is replaced by the next index, at most this many tries in total.

    Broken samples (missing file, undecodable video, too few frames, bad row) are skipped: counted per reason in
    ``self.skipped`` (per process: each DataLoader worker counts its own) and warned about once per file;
    :attr:`skipped_all_processes` sums the counts of the main process and all its (forked or spawned) workers.
    """

    def __init__(self, csv_path: str | Path, video_root: str | Path | None = None, *,
                 resolution: int | tuple[int, int] = 256, num_frames: int = 16,
                 frame_stride: int | tuple[int, int] | None = None, target_fps: float | None = None,
                 start: str = "random", random_crop: bool = False,
                 path_template: str = "{page_dir}/{videoid}.mp4", caption_column: str = "name",
                 short_prompt_column: str = "short_prompt", require_short_prompt: bool = False,
                 motion_labels: str | Path | None = "flow", flow_backend: str = "dis",
                 flow_weights: str | None = "DEFAULT", reference_short_side: int | None = None,
                 label_fn: LabelFn | None = None, seed: int = 0, max_attempts: int = 10,
                 motion_sidecar: str | Path | None = None):
        import pandas as pd

        self.csv_path = Path(csv_path)
        self.video_root = Path(video_root) if video_root is not None else self.csv_path.parent
        self.resolution = (int(resolution), int(resolution)) if isinstance(resolution, int) else \
            tuple(int(r) for r in resolution)
        self.num_frames = int(num_frames)
        if frame_stride is not None and target_fps is not None:
            raise ValueError("give either frame_stride or target_fps, not both")
        # Any sequence (also an OmegaConf ListConfig from Hydra) is a (min, max) range.
        self.frame_stride = frame_stride if frame_stride is None or isinstance(frame_stride, int) else \
            tuple(int(v) for v in frame_stride)
        self.target_fps = target_fps
        if start not in START_MODES:
            raise ValueError(f"start must be one of {START_MODES}, got {start!r}")
        self.start, self.random_crop = start, random_crop
        self.path_template = path_template
        self.seed, self.max_attempts = int(seed), int(max_attempts)
        self.require_short_prompt = require_short_prompt
        self.reference_short_side = reference_short_side
        sidecar_path = None
        if motion_labels == "sidecar":
            sidecar_path = Path(motion_sidecar) if motion_sidecar is not None else \
                self.csv_path.with_name(self.csv_path.stem + ".motion.parquet")
        elif isinstance(motion_labels, Path) or (isinstance(motion_labels, str) and motion_labels != "flow"):
            if not str(motion_labels).endswith(".parquet") and not Path(motion_labels).exists():
                raise ValueError(f"motion_labels must be 'flow', 'sidecar', a sidecar path or None, "
                                 f"got {motion_labels!r}")
            sidecar_path = Path(motion_labels)
        if motion_labels is None and label_fn is not None:
            raise ValueError("label_fn given but motion_labels=None")
        if sidecar_path is not None and label_fn is not None:
            raise ValueError("label_fn and sidecar motion labels are exclusive")
        self.label_fn = None if motion_labels is None or sidecar_path is not None else (
            label_fn or FlowMotionLabeler(flow_backend, flow_weights, reference_short_side))

        if not self.csv_path.is_file():
            raise FileNotFoundError(f"WebVid CSV not found: {self.csv_path}")
        template_fields = {f for _, f, _, _ in string.Formatter().parse(path_template) if f}
        required = {"videoid", caption_column} | template_fields
        if require_short_prompt:
            required.add(short_prompt_column)
        header = pd.read_csv(self.csv_path, nrows=0).columns
        missing = sorted(required - set(header))
        if missing:
            raise ValueError(f"{self.csv_path}: missing required column(s) {missing} (has {list(header)}); "
                             f"needed by path_template={path_template!r}, caption_column={caption_column!r}"
                             + (f", short_prompt_column={short_prompt_column!r}" if require_short_prompt else ""))
        has_prompt = short_prompt_column in header
        keep = sorted(required | ({short_prompt_column} if has_prompt else set()))
        table, malformed = _read_table(self.csv_path, keep)
        if len(table) == 0:
            raise ValueError(f"{self.csv_path}: no rows")
        self._template_fields = sorted(template_fields)
        self._columns = {c: _PackedStrings(table[c]) for c in keep}
        self._videoids = self._columns["videoid"]
        self._captions = self._columns[caption_column]
        self._prompts = self._columns.get(short_prompt_column)
        del table
        self.sidecar = None
        if sidecar_path is not None:
            from fyc.data.sidecar import MissingSidecarError, MotionSidecar, annotate_command

            try:
                self.sidecar = MotionSidecar(sidecar_path, (self._videoids[i] for i in range(len(self._videoids))))
            except MissingSidecarError:
                stride = self.frame_stride if isinstance(self.frame_stride, int) else 4
                raise MissingSidecarError(
                    f"motion_labels=sidecar but {sidecar_path} does not exist. This recipe reads its motion labels "
                    f"from a sidecar written once, before training (docs/training.md, 'Training contract'):\n  "
                    + annotate_command(self.csv_path, sidecar_path, self.num_frames, stride,
                                       flow_short_side=min(self.resolution),
                                       reference_short_side=reference_short_side or min(self.resolution))
                    + (f" --video-root {self.video_root}" if video_root is not None else "")) from None
            meta = self.sidecar.metadata
            if int(meta.get("flow_short_side", 0)) < min(self.resolution) or meta.get("flow_backend") != flow_backend:
                logger.warning("%s: labels were computed with %s flow at short side %s, this dataset is configured "
                               "for %s at %s px (flow_backend, resolution): the strength unit may differ from "
                               "on-the-fly labels", sidecar_path, meta.get("flow_backend"),
                               meta.get("flow_short_side"), flow_backend, min(self.resolution))
            if self.sidecar.num_frames != self.num_frames:
                raise ValueError(f"{sidecar_path}: num_frames={self.sidecar.num_frames} in the sidecar, but the "
                                 f"dataset asks for num_frames={self.num_frames}")
            if self.sidecar.coverage < 1.0:
                logger.warning("%s: %.1f%% of the rows of %s have no ok motion label; they will be skipped "
                               "(no_label)", sidecar_path, 100 * (1 - self.sidecar.coverage), self.csv_path)

        # Shared memory so that set_epoch() in the main process reaches persistent DataLoader workers too.
        self._epoch = torch.zeros((), dtype=torch.int64).share_memory_()
        self.skipped: Counter[str] = Counter()
        # Counts over all DataLoader workers (shared memory, like the epoch); increments are not atomic across
        # processes, so a rare simultaneous skip may be lost: good enough for monitoring.
        self._shared_skips = torch.zeros(len(SKIP_REASONS), dtype=torch.int64).share_memory_()
        self._construction_skips: Counter[str] = Counter()
        if malformed:  # lines pandas could not parse never become samples; count them once, here
            self.skipped["bad_row"] += len(malformed)
            self._construction_skips["bad_row"] += len(malformed)
            logger.warning("%s: skipped %d malformed line(s): %s", self.csv_path, len(malformed),
                           "; ".join(malformed[:5]))
        self._warned: set[str] = set()

    def __len__(self) -> int:
        return len(self._videoids)

    def set_epoch(self, epoch: int) -> None:
        """Samples of a new epoch draw new strides/starts/crops (deterministically from (seed, epoch, index))."""
        self._epoch.fill_(int(epoch))

    @property
    def epoch(self) -> int:
        return int(self._epoch.item())

    @property
    def path_fields(self) -> tuple[str, ...]:
        """The columns a path template may use: ``videoid`` and those of ``path_template``."""
        return ("videoid", *self._template_fields)

    def row_path(self, template: str, index: int) -> Path:
        """``video_root / template`` formatted with row ``index``'s :attr:`path_fields` (e.g. a per-video file
        beside the video)."""
        fields = {f: self._columns[f][index] for f in self._template_fields}
        fields["videoid"] = self._videoids[index]
        return self.video_root / template.format(**fields)

    def video_path(self, index: int) -> Path:
        """Path of row ``index``'s video (``path_template`` formatted with the row's columns)."""
        return self.row_path(self.path_template, index)

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} samples")
        failures = []
        for attempt in range(min(self.max_attempts, len(self))):
            j = (index + attempt) % len(self)
            try:
                return self._load(j)
            except _Skip as skip:
                path = str(self.video_path(j)) if skip.reason != "bad_row" else f"{self.csv_path} row {j}"
                self._record_skip(path, skip)
                failures.append(f"{path} ({skip})")
        raise RuntimeError(f"{len(failures)} consecutive samples from index {index} of {self.csv_path} are "
                           f"unusable:\n  " + "\n  ".join(failures))

    @property
    def skipped_all_processes(self) -> dict[str, int]:
        """Skipped samples per reason, summed over this process and its DataLoader workers (since creation;
        malformed CSV lines are counted once, at construction)."""
        counts = Counter({r: int(c) for r, c in zip(SKIP_REASONS, self._shared_skips.tolist()) if c})
        counts.update(self._construction_skips)
        return dict(counts)

    def _record_skip(self, path: str, skip: _Skip) -> None:
        self.skipped[skip.reason] += 1
        self._shared_skips[SKIP_REASONS.index(skip.reason)] += 1
        if path not in self._warned:
            self._warned.add(path)
            logger.warning("skipping %s: %s", path, skip)

    def _load(self, index: int) -> dict:
        videoid = self._videoids[index]
        try:
            path = self.video_path(index)
        except (KeyError, IndexError, ValueError) as err:
            raise _Skip("bad_row", f"cannot build the path: {err!r}") from err
        if not videoid or any(not self._columns[f][index] for f in self._template_fields):
            raise _Skip("bad_row", "empty videoid or path field")
        short_prompt = self._prompts[index] if self._prompts is not None else ""
        if self.require_short_prompt and not short_prompt.strip():
            raise _Skip("no_short_prompt", "empty short prompt")
        if not path.is_file():
            raise _Skip("missing_file", "no such file")
        if path.stat().st_size == 0:
            raise _Skip("decode_error", "empty file")

        rng = np.random.default_rng([self.seed, self.epoch, index])
        window = None
        if self.sidecar is not None:
            window = self.sidecar.entry(index)
            if window is None:
                raise _Skip("no_label", f"no ok row for videoid {videoid!r} in the motion sidecar")
        return self._make_sample(path, rng, videoid, self._captions[index], short_prompt, window)

    def _make_sample(self, source, rng: np.random.Generator, videoid: str, caption: str, short_prompt: str,
                     window: dict | None = None) -> dict:
        """Decode ``source`` (path or encoded bytes), sample, resize/crop, label → the sample dict."""
        frames, clip, (size, top, left) = self._decode(source, rng, window)
        sample = {
            "pixel_values": torch.from_numpy(frames).permute(3, 0, 1, 2)
            .to(torch.float32, memory_format=torch.contiguous_format).div_(127.5).sub_(1.0),
            "frame_stride": torch.tensor(clip.stride, dtype=torch.int64),
            "fps": torch.tensor(clip.fps, dtype=torch.float32),
            "frame_indices": torch.from_numpy(clip.indices),
            "caption": caption,
            "short_prompt": short_prompt,
            "videoid": videoid,
        }
        if window is not None:
            mask, strength = self._window_label(window, size, top, left)
            sample["motion_mask"] = torch.from_numpy(mask).float()[None]
            sample["motion_strength"] = torch.tensor(strength, dtype=torch.float32)
        elif self.label_fn is not None:
            label = self.label_fn(frames, sample)
            sample["motion_mask"] = torch.as_tensor(label.mask, dtype=torch.float32).reshape(1, *frames.shape[1:3])
            sample["motion_strength"] = torch.tensor(float(label.strength), dtype=torch.float32)
        return sample

    def _window_label(self, window: dict, size: tuple[int, int], top: int, left: int) -> tuple[np.ndarray, float]:
        """Sidecar label → (mask bool (H, W) cropped like the pixels, strength in this dataset's unit).

        The label was computed on the full frame; the strength is re-derived for the crop: the stored strength times
        (mean |flow| inside the cropped mask) / (mean |flow| inside the full mask), from the stored per-cell
        magnitude map. A crop that cuts the moving region away gets strength 0. Sidecars without a magnitude map
        (version 1) keep the full-frame strength, with a warning."""
        import cv2

        full = cv2.resize(window["mask"].astype(np.uint8), (size[1], size[0]), interpolation=cv2.INTER_NEAREST)
        out_h, out_w = self.resolution
        mask = full[top:top + out_h, left:left + out_w].astype(bool)
        # px per pair at the sidecar's reference short side → px of the resized frame (the returned pixels' scale)
        reference = window.get("reference_short_side") or self.sidecar.reference_short_side
        strength = window["strength"] * min(size) / reference
        if "magnitude" in window:
            magnitude = cv2.resize(window["magnitude"], (size[1], size[0]), interpolation=cv2.INTER_NEAREST)
            inside_full = magnitude[full.astype(bool)]
            inside_crop = magnitude[top:top + out_h, left:left + out_w][mask]
            if inside_crop.size == 0:
                strength = 0.0
            elif inside_full.size and inside_full.mean() > 0:
                strength *= float(inside_crop.mean() / inside_full.mean())
        elif (top, left, out_h, out_w) != (0, 0, *size) and "old_sidecar" not in self._warned:
            self._warned.add("old_sidecar")
            logger.warning("%s has no per-pixel magnitude (sidecar version 1): cropped samples keep the full-frame "
                           "strength; rewrite it with scripts/annotate_motion.py for crop-consistent labels",
                           self.sidecar.path)
        if self.reference_short_side is not None:  # same unit as the on-the-fly labeller
            strength *= self.reference_short_side / min(out_h, out_w)
        return mask, float(strength)

    def _decode(self, path, rng: np.random.Generator, window: dict | None = None):
        """→ uint8 (F, H, W, 3) at ``resolution``, the :class:`~fyc.data.sampling.FrameSample` used and the
        geometry ``(resized size (h, w), crop top, crop left)``. ``window``: fixed frames (sidecar entry)."""
        from decord._ffi.base import DECORDError

        from fyc.data.sampling import FrameSample

        try:
            length, native_fps, h, w = video_info(path)
        except (DECORDError, RuntimeError, OSError) as err:
            raise _Skip("decode_error", f"cannot open: {err}") from err
        if not np.isfinite(native_fps) or native_fps <= 0:
            raise _Skip("decode_error", f"invalid fps {native_fps}")
        if window is not None:
            indices = np.asarray(window["frame_indices"], dtype=np.int64)
            if len(indices) != self.num_frames or indices.max() >= length:
                raise _Skip("stale_label", f"sidecar window {indices.tolist()} does not fit the video "
                                           f"({length} frames; {self.num_frames} wanted)")
            clip = FrameSample(indices=indices, stride=int(window["frame_stride"]), fps=float(window["fps"]))
        else:
            try:
                clip = sample_frame_indices(length, self.num_frames, native_fps, stride=self.frame_stride,
                                            target_fps=self.target_fps, start=self.start, rng=rng)
            except TooFewFramesError as err:
                raise _Skip("too_few_frames", str(err)) from err

        out_h, out_w = self.resolution
        scale = max(out_h / h, out_w / w)  # shorter side (relative to the target aspect) fills the output
        size = (max(out_h, round(h * scale)), max(out_w, round(w * scale)))
        # Downscale inside the decoder (cheaper); upscale afterwards with torchvision.
        indices = clip.indices.tolist()
        try:
            frames = read_video(path, indices, size=size if scale < 1 else None)
        except (DECORDError, RuntimeError, OSError) as err:
            raise _Skip("decode_error", f"cannot decode frames {indices}: {err}") from err
        frames, top, left = self._resize_crop(frames, size, rng)
        return frames, clip, (size, top, left)

    def _resize_crop(self, frames: np.ndarray, size: tuple[int, int],
                     rng: np.random.Generator) -> tuple[np.ndarray, int, int]:
        from torchvision.transforms.v2 import functional as TF

        video = torch.from_numpy(frames).permute(0, 3, 1, 2)  # (F, 3, h, w) uint8
        if tuple(video.shape[-2:]) != size:
            video = TF.resize(video, list(size), antialias=True)
        out_h, out_w = self.resolution
        if self.random_crop:
            top = int(rng.integers(0, size[0] - out_h + 1))
            left = int(rng.integers(0, size[1] - out_w + 1))
        else:
            top, left = (size[0] - out_h) // 2, (size[1] - out_w) // 2
        video = TF.crop(video, top, left, out_h, out_w)
        return np.ascontiguousarray(video.permute(0, 2, 3, 1).numpy()), top, left
