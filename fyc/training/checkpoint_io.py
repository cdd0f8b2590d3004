"""Checkpoint files: atomic writes, safe reads, cleanup of a crashed writer's temp files.

Lightning's ``TorchCheckpointIO`` serialises to memory and writes through an fsspec transaction whose local
implementation writes to ``tempfile.mkstemp()`` (the system temp dir) and then ``shutil.move``s the file: when
``/tmp`` and the checkpoint folder are on different filesystems (the usual case on clusters) the "move" is a copy,
so a preempted job can leave a truncated ``last.ckpt``. :class:`AtomicCheckpointIO` serialises to memory, writes a
temporary file in the checkpoint's own folder, fsyncs it and ``os.replace``s it over the target: readers see the old
file or the new one, and the temp file exists only while bytes are written (a crash while pickling leaves none).

:func:`load_checkpoint` is the only way fyc reads a ``.ckpt``: ``torch.load(weights_only=True)``, so a crafted
checkpoint cannot run code (unpickling arbitrary objects can). Checkpoints written by ``train.py`` hold only
tensors and plain Python values; :data:`SAFE_CHECKPOINT_GLOBALS` lists the few extra types allowed.
"""
from __future__ import annotations

import io
import logging
import os
import pickle
import re
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

log = logging.getLogger(__name__)

#: Types besides tensors, containers, numbers and strings that our checkpoints may hold (the weights_only
#: allow-list, ``torch.serialization.safe_globals``). Checkpoints written by train.py need none: the module, the
#: RNG callback and the EMA store only tensors and plain values; a callback that stores another type adds it here.
SAFE_CHECKPOINT_GLOBALS: list = []

_TEMP_NAME = re.compile(r"^\.(?P<target>.+)\.tmp-(?P<pid>\d+)$")


class UnsafeCheckpointError(ValueError):
    """A checkpoint holds objects other than tensors and plain values: refused without running any of its code."""


def temp_path_for(path: Path) -> Path:
    """Where :class:`AtomicCheckpointIO` writes ``path`` before renaming it (``.<name>.tmp-<pid>`` beside it)."""
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def clean_stale_temp_files(folder: str | Path) -> list[Path]:
    """Remove temp files of :class:`AtomicCheckpointIO` in ``folder`` whose writing process is gone (a crashed or
    killed run); returns the removed paths. Temp files of live processes are kept."""
    folder = Path(folder)
    removed = []
    if not folder.is_dir():
        return removed
    for path in folder.iterdir():
        match = _TEMP_NAME.match(path.name)
        if match is None or not path.is_file() or _pid_alive(int(match["pid"])):
            continue
        path.unlink(missing_ok=True)
        removed.append(path)
        log.warning("removed %s, a partial checkpoint left by a crashed writer (process %s)", path, match["pid"])
    return removed


def load_checkpoint(path: str | Path, map_location: Any = "cpu", mmap: bool = False) -> dict:
    """Read a training checkpoint without unpickling arbitrary objects (``torch.load(weights_only=True)``).

    Args:
        path: a ``.ckpt`` written by ``train.py`` (or any ``torch.save`` file of tensors and plain values).
        mmap: map the tensors' storage instead of reading it (cheap when only metadata is needed).
    Raises:
        FileNotFoundError: no such file.
        UnsafeCheckpointError: the file holds other objects (a crafted or foreign checkpoint); nothing of it ran.
        ValueError: not a PyTorch checkpoint, or truncated.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        with torch.serialization.safe_globals(SAFE_CHECKPOINT_GLOBALS):
            checkpoint = torch.load(path, map_location=map_location, weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as error:
        found = re.search(r"GLOBAL ([\w.]+)", str(error))
        what = f" ({found.group(1)})" if found else ""
        raise UnsafeCheckpointError(
            f"{path}: refused to load: it holds Python objects other than tensors and plain values{what}, which "
            f"could run code when unpickled; nothing of it was run. Checkpoints written by train.py never do: only "
            f"load files you wrote or trust.") from None
    except (KeyError, EOFError, OSError) as error:
        raise ValueError(f"{path}: not a PyTorch checkpoint, or truncated ({type(error).__name__}: {error})") from None
    except RuntimeError as error:
        if "PytorchStreamReader" not in str(error) and "zip" not in str(error).lower():
            raise
        raise ValueError(f"{path}: not a PyTorch checkpoint, or truncated ({error})") from None
    if not isinstance(checkpoint, dict):
        raise ValueError(f"{path}: expected a checkpoint dict, got {type(checkpoint).__name__}")
    return checkpoint


class AtomicCheckpointIO(TorchCheckpointIO):
    """``TorchCheckpointIO`` whose ``save_checkpoint`` is atomic on local/shared POSIX filesystems and whose
    ``load_checkpoint`` never unpickles arbitrary objects (see :func:`load_checkpoint`)."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options: Any | None = None) -> None:
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} does not take storage_options, got {storage_options!r}")
        path = Path(path)
        if "://" in str(path):  # remote filesystems: fall back to Lightning's transaction
            return super().save_checkpoint(checkpoint, path)
        path.parent.mkdir(parents=True, exist_ok=True)
        # Serialise first: a crash while pickling (the slow part) then leaves no file at all.
        buffer = io.BytesIO()
        torch.save(checkpoint, buffer)
        tmp = temp_path_for(path)
        try:
            with open(tmp, "wb") as handle:
                handle.write(buffer.getbuffer())
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        finally:
            if tmp.exists():
                tmp.unlink()

    def load_checkpoint(self, path, map_location: Any | None = None, weights_only: bool | None = None) -> dict:
        if "://" in str(path):
            return super().load_checkpoint(path, map_location=map_location, weights_only=True)
        if weights_only is False:
            log.warning("weights_only=False ignored: %s is loaded with weights_only=True", path)
        return load_checkpoint(path, map_location=map_location)
