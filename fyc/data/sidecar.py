"""Reading motion-label sidecars (parquet files written by ``scripts/annotate_motion.py``, see
:mod:`fyc.data.annotate` for the columns): metadata, rows, statistics, and :class:`MotionSidecar`, the per-row view
``WebVidDataset(motion_labels="sidecar")`` uses. Kept apart from the annotation code so that the dataset can read
labels without importing the annotator (which itself uses the dataset to parse CSVs)."""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

SIDECAR_VERSION = 2
METADATA_KEY = b"fyc_motion_sidecar"


class MissingSidecarError(FileNotFoundError):
    """A recipe reads labels from a sidecar that does not exist yet; the message names the command that writes it."""


def annotate_command(csv_path: str | Path, out: str | Path, num_frames: int = 16, frame_stride: int | None = 4,
                     flow: str = "raft_large", flow_short_side: int = 512, reference_short_side: int = 512) -> str:
    """The ``scripts/annotate_motion.py`` command that writes the sidecar ``out`` for ``csv_path``."""
    stride = f" --stride {frame_stride}" if frame_stride is not None else ""
    return (f"python scripts/annotate_motion.py --csv {csv_path} --out {out} --flow {flow} --frames {num_frames}"
            f"{stride} --flow-short-side {flow_short_side} --reference-short-side {reference_short_side}")


def pack_floats(values: np.ndarray) -> bytes:
    """float (h, w) → float16 bytes of the row-major flattening."""
    return np.asarray(values, dtype=np.float16).tobytes()


def unpack_floats(bits: bytes | np.ndarray, height: int, width: int) -> np.ndarray:
    """Inverse of :func:`pack_floats` → float32 (height, width)."""
    return np.frombuffer(bits, dtype=np.float16, count=height * width).reshape(height, width).astype(np.float32)


def pack_mask(mask: np.ndarray) -> bytes:
    """bool (h, w) → ``numpy.packbits`` of the row-major flattening."""
    return np.packbits(np.asarray(mask, dtype=bool).ravel()).tobytes()



def unpack_mask(bits: bytes | np.ndarray, height: int, width: int) -> np.ndarray:
    """Inverse of :func:`pack_mask` → bool (height, width)."""
    flat = np.unpackbits(np.frombuffer(bits, dtype=np.uint8), count=height * width)
    return flat.reshape(height, width).astype(bool)



def parts_dir(out: str | Path) -> Path:
    out = Path(out)
    return out.with_name(out.name + ".parts")



def _sidecar_files(out: Path) -> list[Path]:
    files = sorted(parts_dir(out).glob("*.parquet"))
    return ([out] if out.is_file() else []) + files



def read_sidecar_metadata(path: str | Path) -> dict:
    """The annotation parameters stored in a sidecar file (or the first part of a parts folder)."""
    import pyarrow.parquet as pq

    path = Path(path)
    files = _sidecar_files(path) if not path.is_dir() else sorted(path.glob("*.parquet"))
    if not files:
        raise FileNotFoundError(f"motion sidecar not found: {path} (nor {parts_dir(path)}/*.parquet)")
    meta = pq.read_schema(files[0]).metadata or {}
    if METADATA_KEY not in meta:
        raise ValueError(f"{files[0]}: not a fyc motion sidecar (no {METADATA_KEY.decode()} metadata)")
    return json.loads(meta[METADATA_KEY])



def read_sidecar(path: str | Path, columns: Sequence[str] | None = None):
    """The sidecar as a pyarrow Table: the merged file plus any part files (``<path>.parts/``), one row per
    videoid (the last written wins, an ``ok`` row over a failed one)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    path = Path(path)
    files = _sidecar_files(path) if not path.is_dir() else sorted(path.glob("*.parquet"))
    if not files:
        raise FileNotFoundError(f"motion sidecar not found: {path} (nor {parts_dir(path)}/*.parquet)")
    cols = None if columns is None else sorted(set(columns) | {"videoid", "status"})
    # promote: part files of an older version lack newer columns (read as null)
    table = pa.concat_tables([pq.read_table(f, columns=cols).replace_schema_metadata(None) for f in files],
                             promote_options="default")
    if table.num_rows == 0:
        return table
    # Keep the last ok row of each videoid, else its last row.
    order = np.arange(table.num_rows) + np.where(pc.equal(table["status"], "ok").to_numpy(zero_copy_only=False),
                                                 table.num_rows, 0)
    import pandas as pd

    frame = pd.DataFrame({"videoid": table["videoid"].to_numpy(zero_copy_only=False), "order": order})
    keep = frame.sort_values("order", kind="stable").drop_duplicates("videoid", keep="last").index.to_numpy()
    return table.take(np.sort(keep))



def sidecar_stats(path: str | Path) -> dict:
    """What a sidecar's labels look like: ``rows``, ``ok``, ``status`` (count per status), and over the ok rows
    ``mask_coverage`` and ``strength`` (each ``mean``, ``p10``, ``median``, ``p90``; coverage = share of the stored
    mask grid that is on, in [0, 1]; strength in the sidecar's unit)."""
    table = read_sidecar(path, columns=["mask_bits", "mask_height", "mask_width", "strength"])
    rows = [r for r in table.to_pylist() if r["status"] == "ok"]
    coverage = [unpack_mask(r["mask_bits"], r["mask_height"], r["mask_width"]).mean() for r in rows]

    def spread(values: list[float]) -> dict:
        if not values:
            return {}
        p10, median, p90 = np.percentile(values, [10, 50, 90])
        return {"mean": float(np.mean(values)), "p10": float(p10), "median": float(median), "p90": float(p90)}

    return {"rows": table.num_rows, "ok": len(rows), "status": dict(Counter(table["status"].to_pylist())),
            "mask_coverage": spread(coverage), "strength": spread([r["strength"] for r in rows])}



class MotionSidecar:
    """Sidecar labels aligned to a dataset's rows, held in numpy buffers (shared by forked DataLoader workers).

    ``entry(row)`` → None (no ok label) or dict(frame_indices int64 (F,), frame_stride, fps, mask bool (h, w)
    over the full frame, strength float (px per pair at ``reference_short_side``) and, for sidecars of version >= 2,
    magnitude float32 (h, w): each cell's mean |flow| in the strength's unit).
    """

    def __init__(self, path: str | Path, videoids: Iterable[str]):
        import pandas as pd

        self.path = Path(path)
        if not self.path.is_file() and not parts_dir(self.path).is_dir():
            raise MissingSidecarError(f"motion sidecar not found: {self.path}; write it first with "
                                      f"scripts/annotate_motion.py (docs/training.md, 'Training contract')")
        self.metadata = read_sidecar_metadata(self.path)
        self.reference_short_side = int(self.metadata["reference_short_side"])
        self.num_frames = int(self.metadata["num_frames"])
        table = read_sidecar(self.path)
        ok = np.asarray(table["status"].to_numpy(zero_copy_only=False) == "ok")
        table = table.filter(ok)
        ids = pd.Index(table["videoid"].to_numpy(zero_copy_only=False))
        self._row = ids.get_indexer(pd.Index(list(videoids))).astype(np.int64)  # -1: no label
        lists = table["frame_indices"]
        self._idx_offsets = np.zeros(table.num_rows + 1, np.int64)
        lengths = np.array([len(v) for v in lists.to_pylist()], np.int64) if table.num_rows else np.zeros(0, np.int64)
        np.cumsum(lengths, out=self._idx_offsets[1:])
        self._indices = (np.concatenate([np.asarray(v, np.int64) for v in lists.to_pylist()])
                         if table.num_rows else np.zeros(0, np.int64))
        bits = table["mask_bits"].to_pylist()
        self._bit_offsets = np.zeros(table.num_rows + 1, np.int64)
        np.cumsum([len(b) for b in bits], out=self._bit_offsets[1:])
        self._bits = np.frombuffer(b"".join(bits), np.uint8)
        self._stride = table["frame_stride"].to_numpy().astype(np.int64)
        self._fps = table["fps"].to_numpy().astype(np.float64)
        self._strength = table["strength"].to_numpy().astype(np.float64)
        # Per-pixel mean |flow| (sidecar version >= 2): lets the dataset re-derive the strength of a crop.
        self.has_magnitude = "magnitude_bits" in table.column_names
        if self.has_magnitude:
            mags = [b or b"" for b in table["magnitude_bits"].to_pylist()]
            self._mag_offsets = np.zeros(table.num_rows + 1, np.int64)
            np.cumsum([len(b) for b in mags], out=self._mag_offsets[1:])
            self._mags = np.frombuffer(b"".join(mags), np.uint8)
        self._mask_hw = np.stack([table["mask_height"].to_numpy(), table["mask_width"].to_numpy()], 1) \
            if table.num_rows else np.zeros((0, 2), np.int64)

    @property
    def coverage(self) -> float:
        """Fraction of the dataset's rows that have an ok label."""
        return float((self._row >= 0).mean()) if len(self._row) else 0.0

    def entry(self, row: int) -> dict | None:
        k = int(self._row[row])
        if k < 0:
            return None
        h, w = (int(v) for v in self._mask_hw[k])
        entry = {"frame_indices": self._indices[self._idx_offsets[k]:self._idx_offsets[k + 1]].copy(),
                 "frame_stride": int(self._stride[k]), "fps": float(self._fps[k]),
                 "mask": unpack_mask(self._bits[self._bit_offsets[k]:self._bit_offsets[k + 1]].tobytes(), h, w),
                 "strength": float(self._strength[k])}
        if self.has_magnitude:
            bits = self._mags[self._mag_offsets[k]:self._mag_offsets[k + 1]].tobytes()
            if bits:
                entry["magnitude"] = unpack_floats(bits, h, w)
        return entry
