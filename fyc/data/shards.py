"""WebDataset shards of a WebVid CSV (+ motion sidecar) and a streaming reader for multi-node training.

Writer (:func:`write_shards`): each usable row becomes one tar sample ``<key>.mp4`` (the encoded video, unchanged)
+ ``<key>.json`` (``videoid``, ``caption``, ``short_prompt`` and, with a sidecar, its ``motion`` label: window,
packed mask bits (hex), strength and its reference short side). Shards ``shard-000000.tar ...`` hold
``maxcount`` samples each; ``index.json`` lists every shard with its sample count. Rows whose file is missing or
empty are skipped and counted (decoding problems are found, counted and skipped by the reader).

Reader (:class:`WebVidShardDataset`, an ``IterableDataset``): decodes like :class:`~fyc.data.webvid.WebVidDataset`
(same sample dict). Splitting: every epoch the shard list is permuted with ``(seed, epoch)``, and shard ``k`` goes
to the global reader ``k % (world_size * num_workers)`` where reader = ``rank * num_workers + worker_id`` (rank and
world from ``torch.distributed``, else ``RANK``/``WORLD_SIZE``). Every sample is read exactly once per epoch by
exactly one (rank, worker) — none lost, none twice. Ranks may then get different sample counts;
``equal_length="drop"`` makes every reader stop at the smallest count any reader can get in any epoch — the sum of
the ``len(shards) // readers`` smallest shards — (for DDP, which needs equal batch counts on all ranks, every epoch
the same; the dropped samples change every epoch). Use at least ``world_size * num_workers`` shards.

Resume: the reader's position (epoch, its reader id and reader count, the shard it is in, how many raw samples of
that shard it has consumed, samples yielded, skip counts) is :meth:`WebVidShardDataset.state_dict`; after
:meth:`~WebVidShardDataset.load_state_dict` the next iteration starts right after the last consumed sample (the
skipped part of the shard is read but not decoded). torchdata's ``StatefulDataLoader`` collects these states from
every DataLoader worker (see :class:`fyc.data.datamodule.EpochLoader`). There is no shuffle buffer: samples of a
shard come in written order, shards in a per-epoch order, so the position alone fixes the rest of the epoch.
"""
from __future__ import annotations

import json
import logging
import os
import re
import zlib
from collections import Counter
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info

logger = logging.getLogger(__name__)

INDEX_NAME = "index.json"


def _key(videoid: str, row: int) -> str:
    # WebDataset splits keys at the first "."; keep the key dot-free and unique (the real id is in the json).
    return f"{row:09d}_" + re.sub(r"[^A-Za-z0-9_-]", "_", videoid)[:100]


def write_shards(csv_path: str | Path, out_dir: str | Path, *, video_root: str | Path | None = None,
                 path_template: str = "{page_dir}/{videoid}.mp4", caption_column: str = "name",
                 short_prompt_column: str = "short_prompt", motion_sidecar: str | Path | None = None,
                 maxcount: int = 1000) -> dict:
    """Write the CSV's videos (+ labels) as WebDataset tar shards into ``out_dir``. Returns the index dict
    (``shards``: [{"name", "count"}], ``total``, ``skipped``: reason → count, ``sidecar``: bool)."""
    import webdataset as wds

    from fyc.data.webvid import WebVidDataset

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = WebVidDataset(csv_path, video_root, path_template=path_template, caption_column=caption_column,
                         short_prompt_column=short_prompt_column, motion_labels=None)
    sidecar = None
    if motion_sidecar is not None:
        from fyc.data.annotate import MotionSidecar

        sidecar = MotionSidecar(motion_sidecar, (rows._videoids[i] for i in range(len(rows))))
    skipped: Counter = Counter(rows.skipped)
    counts: dict[str, int] = {}
    pattern = str(out_dir / "shard-%06d.tar")
    with wds.ShardWriter(pattern, maxcount=maxcount, verbose=0) as sink:
        for i in range(len(rows)):
            videoid = rows._videoids[i]
            try:
                path = rows.video_path(i)
            except (KeyError, IndexError, ValueError):
                skipped["bad_row"] += 1
                continue
            if not videoid:
                skipped["bad_row"] += 1
                continue
            if not path.is_file() or path.stat().st_size == 0:
                skipped["missing_file" if not path.is_file() else "decode_error"] += 1
                logger.warning("shards: skipping %s (missing or empty)", path)
                continue
            meta = {"videoid": videoid, "caption": rows._captions[i],
                    "short_prompt": rows._prompts[i] if rows._prompts is not None else ""}
            if sidecar is not None:
                entry = sidecar.entry(i)
                if entry is None:
                    skipped["no_label"] += 1
                    continue
                from fyc.data.annotate import pack_mask

                meta["motion"] = {"frame_indices": entry["frame_indices"].tolist(),
                                  "frame_stride": entry["frame_stride"], "fps": entry["fps"],
                                  "strength": entry["strength"], "reference_short_side": sidecar.reference_short_side,
                                  "mask_height": int(entry["mask"].shape[0]), "mask_width": int(entry["mask"].shape[1]),
                                  "mask_bits": pack_mask(entry["mask"]).hex()}
            sink.write({"__key__": _key(videoid, i), "mp4": path.read_bytes(), "json": json.dumps(meta).encode()})
            name = Path(sink.fname).name
            counts[name] = counts.get(name, 0) + 1
    index = {"shards": [{"name": n, "count": c} for n, c in sorted(counts.items())], "total": sum(counts.values()),
             "skipped": dict(skipped), "sidecar": sidecar is not None, "csv": str(csv_path)}
    (out_dir / INDEX_NAME).write_text(json.dumps(index, indent=1))
    if skipped:
        logger.warning("shards: skipped %s", dict(skipped))
    return index


def dist_rank_world() -> tuple[int, int]:
    """(rank, world size): torch.distributed when initialised, else RANK/WORLD_SIZE, else (0, 1)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


def assign_shards(shards: Sequence, epoch: int, seed: int, reader: int, num_readers: int) -> list:
    """The shards reader ``reader`` of ``num_readers`` reads in ``epoch``: a (seed, epoch) permutation, then
    every ``num_readers``-th. Over all readers this is a partition of ``shards``."""
    order = np.random.default_rng([seed, epoch]).permutation(len(shards))
    return [shards[k] for k in order[reader::num_readers]]


class WebVidShardDataset(IterableDataset):
    """Streams samples from :func:`write_shards` output; same sample dict as ``WebVidDataset``.

    Args:
        source: the shard folder (with ``index.json``).
        resolution, num_frames, frame_stride, target_fps, start, random_crop, flow_backend, flow_weights,
            reference_short_side: as in ``WebVidDataset``.
        motion_labels: "shard" (labels stored in the shards by ``write_shards(motion_sidecar=...)``, with their
            fixed windows), "flow" (on the fly) or None.
        seed: shard order (per epoch) and per-sample randomness (from (seed, epoch, videoid)).
        equal_length: None (exact: every sample once) or "drop" (every reader yields the smallest count a reader
            can get, the same every epoch).
        rank, world_size: override the distributed environment (tests, custom launchers).
    Skipped samples (undecodable, too short) are counted per reason in ``self.skipped`` (per process).
    """

    def __init__(self, source: str | Path, *, resolution: int | tuple[int, int] = 256, num_frames: int = 16,
                 frame_stride: int | tuple[int, int] | None = None, target_fps: float | None = None,
                 start: str = "random", random_crop: bool = False, motion_labels: str | None = "shard",
                 flow_backend: str = "farneback", flow_weights: str | None = "DEFAULT",
                 reference_short_side: int | None = None, seed: int = 0, equal_length: str | None = None,
                 rank: int | None = None, world_size: int | None = None):
        # Imported now, in the process that forks the DataLoader workers, so that no worker imports them again.
        import av  # noqa: F401  (video_io reads headers with it)
        import decord  # noqa: F401
        import webdataset  # noqa: F401
        from torchvision.transforms.v2 import functional  # noqa: F401

        from fyc.data.webvid import FlowMotionLabeler

        self.source = Path(source)
        index_path = self.source / INDEX_NAME
        if not index_path.is_file():
            raise FileNotFoundError(f"shard index not found: {index_path} (write shards with fyc.data.shards."
                                    "write_shards / scripts/make_webvid_shards.py)")
        self.index = json.loads(index_path.read_text())
        self.shards = [(str(self.source / s["name"]), int(s["count"])) for s in self.index["shards"]]
        if motion_labels not in ("shard", "flow", None):
            raise ValueError(f"motion_labels must be 'shard', 'flow' or None, got {motion_labels!r}")
        if motion_labels == "shard" and not self.index.get("sidecar"):
            raise ValueError(f"{index_path}: the shards hold no motion labels (written without motion_sidecar); "
                             "use motion_labels='flow' or None")
        if equal_length not in (None, "drop"):
            raise ValueError(f"equal_length must be None or 'drop', got {equal_length!r}")
        self.motion_labels, self.equal_length = motion_labels, equal_length
        self.resolution = (int(resolution), int(resolution)) if isinstance(resolution, int) else \
            tuple(int(r) for r in resolution)
        self.num_frames = int(num_frames)
        self.frame_stride = frame_stride if frame_stride is None or isinstance(frame_stride, int) else \
            tuple(int(v) for v in frame_stride)
        self.target_fps, self.start, self.random_crop = target_fps, start, random_crop
        self.reference_short_side = reference_short_side
        self.label_fn = FlowMotionLabeler(flow_backend, flow_weights, reference_short_side) \
            if motion_labels == "flow" else None
        self.sidecar = None
        self.seed = int(seed)
        self._rank, self._world = rank, world_size
        self._epoch = torch.zeros((), dtype=torch.int64).share_memory_()
        self.skipped: Counter = Counter()
        self._position: dict | None = None  # where the running iteration is (see state_dict)
        self._resume: dict | None = None  # a loaded position, used by the next __iter__

    def set_epoch(self, epoch: int) -> None:
        self._epoch.fill_(int(epoch))

    @property
    def epoch(self) -> int:
        return int(self._epoch.item())

    def rank_world(self) -> tuple[int, int]:
        """(rank, world size): the constructor's overrides, else the distributed environment."""
        rank, world = dist_rank_world()
        return (self._rank if self._rank is not None else rank), (self._world if self._world is not None else world)

    def readers(self) -> tuple[int, int, int]:
        """(this reader, number of readers, workers per rank) for the current process."""
        rank, world = self.rank_world()
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        return rank * workers + worker, world * workers, workers

    def __len__(self) -> int:
        """Samples this rank yields per epoch, summed over its workers (exact for equal_length='drop';
        otherwise the ceiling of total / world size, an estimate used for progress bars)."""
        _, _, workers = self.readers()
        world = self.rank_world()[1]
        if self.equal_length == "drop":
            return self._min_count(world * workers) * workers
        return -(-int(self.index["total"]) // world)

    def num_batches(self, batch_size: int, num_workers: int, drop_last: bool = False) -> int:
        """An upper bound on the batches this rank's DataLoader yields in any epoch (exact for
        equal_length='drop'). Every worker batches its own stream, so each ends with a
        partial batch; ``len(DataLoader)`` (samples / batch size) can undercount them, and a trainer that trusts
        it stops the epoch early. Without 'drop' a reader's shards change per epoch but their number does not,
        so its largest possible sample count is the sum of that many largest shards."""
        rank, world = self.rank_world()
        workers = max(1, num_workers)
        num_readers = world * workers
        per_batch = (lambda n: n // batch_size) if drop_last else (lambda n: -(-n // batch_size))
        if self.equal_length == "drop":
            return workers * per_batch(self._min_count(num_readers))
        largest = sorted((c for _, c in self.shards), reverse=True)
        return sum(per_batch(sum(largest[:len(range(reader, len(self.shards), num_readers))]))
                   for reader in range(rank * workers, (rank + 1) * workers))

    def _min_count(self, num_readers: int) -> int:
        """The fewest samples a reader can get in any epoch: every reader gets at least ``len(shards) //
        num_readers`` shards, at least the smallest ones. Independent of the epoch, so a trainer that reads the
        length once keeps the right batch count every epoch."""
        return sum(sorted(c for _, c in self.shards)[:len(self.shards) // num_readers])

    def state_dict(self) -> dict:
        """This reader's position: ``epoch``, ``reader``, ``num_readers``, ``shard`` (index into the reader's shard
        list of that epoch; with 'drop', indices past its end are the top-up pass), ``offset`` (raw samples of that shard consumed), ``yielded`` (samples returned this
        epoch) and ``skipped`` (reason → count). Before any iteration: a loaded position, or {} (start of an
        epoch)."""
        position = self._position if self._position is not None else self._resume
        return {} if position is None else {**position, "skipped": dict(position["skipped"])}

    def load_state_dict(self, state: dict) -> None:
        """Make the next iteration continue from ``state`` (from :meth:`state_dict`); {} is a no-op."""
        if not state:
            return
        missing = {"epoch", "reader", "num_readers", "shard", "offset", "yielded"} - set(state)
        if missing:
            raise ValueError(f"shard reader state lacks {sorted(missing)}: got keys {sorted(state)}")
        self._resume = {**state, "skipped": dict(state.get("skipped", {}))}
        self._position = None
        self.skipped = Counter(self._resume["skipped"])

    def __iter__(self):
        # Not a generator function: the position is set when the iterator is created (a DataLoader worker does so at
        # every epoch start), so a state saved before its first sample says "start of this epoch", not the last one.
        reader, num_readers, _ = self.readers()
        resume, self._resume = self._resume, None
        epoch = self.epoch
        if resume is not None:
            if (resume["reader"], resume["num_readers"]) != (reader, num_readers):
                raise ValueError(f"{self.source}: cannot resume reader {resume['reader']} of "
                                 f"{resume['num_readers']} as reader {reader} of {num_readers}: the number of "
                                 "ranks x DataLoader workers changed since the state was saved")
            epoch = int(resume["epoch"])
        start = int(resume["shard"]) if resume else 0
        done = int(resume["offset"]) if resume else 0  # raw samples of shard `start` already consumed
        yielded = int(resume["yielded"]) if resume else 0
        position = self._position = {"epoch": epoch, "reader": reader, "num_readers": num_readers, "shard": start,
                                     "offset": done, "yielded": yielded, "skipped": self.skipped}
        return self._stream(position)

    def _stream(self, position: dict):
        """Samples from ``position`` on (updated in place as they are read)."""
        import webdataset as wds

        from fyc.data.webvid import WebVidDataset, _Skip

        epoch, reader, num_readers = position["epoch"], position["reader"], position["num_readers"]
        start, done, yielded = position["shard"], position["offset"], position["yielded"]
        mine = [url for url, _ in assign_shards(self.shards, epoch, self.seed, reader, num_readers)]
        cap = self._min_count(num_readers) if self.equal_length == "drop" else None
        # 'drop': a reader left short of the cap by clips that fail to decode tops up from the start of its own
        # shards (a second pass), so that every rank still yields the same number of batches.
        order = mine + mine if cap is not None else mine
        if start >= len(order) or cap == 0:
            return
        stream = wds.WebDataset(order[start:], shardshuffle=False, nodesplitter=lambda urls: urls,
                                workersplitter=lambda urls: urls, empty_check=False, handler=wds.warn_and_continue)
        shard, offset = start, 0
        for raw in stream:
            if cap is not None and yielded >= cap:
                return
            url = raw.get("__url__")
            if url != order[shard]:  # the next shard (tars that yield nothing are passed over)
                shard, offset = order.index(url, shard + 1) if url in order[shard + 1:] else shard + 1, 0
            if shard >= len(mine) and offset == 0:
                logger.warning("shards: reader %d is %d samples short of the equal-length cap: repeating its first "
                               "samples of epoch %d", reader, cap - yielded, epoch)
            offset += 1
            if shard == start and offset <= done:
                continue  # consumed before the state was saved
            position["shard"], position["offset"] = shard, offset
            try:
                meta = json.loads(raw["json"])
                videoid = meta["videoid"]
            except (KeyError, ValueError, TypeError) as err:
                self.skipped["bad_row"] += 1
                logger.warning("shards: bad sample %s: %r", raw.get("__key__"), err)
                continue
            window = None
            if self.motion_labels == "shard":
                from fyc.data.annotate import unpack_mask

                m = meta["motion"]
                window = {"frame_indices": np.asarray(m["frame_indices"], np.int64), "frame_stride": m["frame_stride"],
                          "fps": m["fps"], "strength": m["strength"], "reference_short_side": m["reference_short_side"],
                          "mask": unpack_mask(bytes.fromhex(m["mask_bits"]), m["mask_height"], m["mask_width"])}
            rng = np.random.default_rng([self.seed, epoch, zlib.crc32(videoid.encode())])
            try:
                sample = WebVidDataset._make_sample(self, raw["mp4"], rng, videoid, meta.get("caption", ""),
                                                    meta.get("short_prompt", ""), window)
            except _Skip as skip:
                self.skipped[skip.reason] += 1
                logger.warning("shards: skipping %s: %s", videoid, skip)
                continue
            yielded += 1
            position["yielded"] = yielded  # updated before the yield: a state saved now counts this sample
            yield sample

    # The decoding/cropping/labelling code is WebVidDataset's, applied to the bytes from the shard.
    def _decode(self, source, rng, window=None):
        from fyc.data.webvid import WebVidDataset

        return WebVidDataset._decode(self, source, rng, window)

    def _resize_crop(self, frames, size, rng):
        from fyc.data.webvid import WebVidDataset

        return WebVidDataset._resize_crop(self, frames, size, rng)

    def _window_label(self, window, size, top, left):
        from fyc.data.webvid import WebVidDataset

        return WebVidDataset._window_label(self, window, size, top, left)
