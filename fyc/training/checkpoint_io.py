"""Atomic checkpoint writes.

Lightning's ``TorchCheckpointIO`` serialises to memory and writes through an fsspec transaction whose local
implementation writes to ``tempfile.mkstemp()`` (the system temp dir) and then ``shutil.move``s the file: when
``/tmp`` and the checkpoint folder are on different filesystems (the usual case on clusters) the "move" is a copy,
so a preempted job can leave a truncated ``last.ckpt``. :class:`AtomicCheckpointIO` writes a temporary file in the
checkpoint's own folder, fsyncs it and ``os.replace``s it over the target: readers see the old file or the new one.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO


class AtomicCheckpointIO(TorchCheckpointIO):
    """``TorchCheckpointIO`` whose ``save_checkpoint`` is atomic on local/shared POSIX filesystems."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options: Any | None = None) -> None:
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} does not take storage_options, got {storage_options!r}")
        path = Path(path)
        if "://" in str(path):  # remote filesystems: fall back to Lightning's transaction
            return super().save_checkpoint(checkpoint, path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        try:
            with open(tmp, "wb") as handle:
                torch.save(checkpoint, handle)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        finally:
            if tmp.exists():
                tmp.unlink()
