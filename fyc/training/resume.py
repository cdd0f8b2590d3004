"""Exact resumption: the training data order continues mid-epoch, and the global RNG states are restored.

Lightning saves weights, optimizer, LR scheduler, loop progress (step, epoch, batch index) and callback states, but
a plain ``DataLoader`` restarts its epoch from the first batch on resume (Lightning warns "your dataloader is not
resumable") and RNG states are not saved. Here:

* :func:`make_train_loader_resumable` patches a datamodule so that its map-style training DataLoader is a
  :class:`ResumableDataLoader`: its ``state_dict`` is (epoch, batches consumed in that epoch) read from the trainer's
  loop progress; on resume Lightning calls ``load_state_dict`` before creating the iterator, and the first iterator
  skips the consumed *indices* (no decoding of skipped videos) of the same epoch permutation. A loader that already
  has ``state_dict`` / ``load_state_dict`` — the streaming shard loader, :class:`fyc.data.epoch_loader.EpochLoader`
  (torchdata's ``StatefulDataLoader``, which saves every rank's and worker's shard position) — is kept as it is.
* :class:`RNGStateCallback` saves and restores the Python / NumPy / torch (CPU and CUDA) RNG states.

The module's own training randomness (noise, timesteps, masking, dropout) is drawn from a generator seeded by
(seed, epoch, batch index, rank), so it does not depend on RNG state at all; the callback covers everything else.
"""
from __future__ import annotations

import itertools
import logging
import random
from typing import Any, Callable

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, DistributedSampler

log = logging.getLogger(__name__)


class SkipSampler(DistributedSampler):
    """Wraps a ``DistributedSampler`` (a subclass, so Lightning keeps it under DDP); the next ``__iter__`` skips
    ``skip`` indices of the wrapped sampler's order, later ones do not. ``set_epoch`` is forwarded."""

    def __init__(self, sampler: DistributedSampler):  # no super().__init__: everything is delegated
        self.sampler = sampler
        self.skip = 0

    def __iter__(self):
        skip, self.skip = self.skip, 0
        return itertools.islice(iter(self.sampler), skip, None)

    def __len__(self) -> int:
        return len(self.sampler)

    def set_epoch(self, epoch: int) -> None:
        self.sampler.set_epoch(epoch)

    def __getattr__(self, name: str) -> Any:  # epoch, num_replicas, rank, shuffle, seed, dataset, ...
        if name == "sampler":
            raise AttributeError(name)
        return getattr(self.sampler, name)


class ResumableDataLoader(DataLoader):
    """A DataLoader over a :class:`SkipSampler` with Lightning's ``state_dict`` / ``load_state_dict`` interface.

    ``progress_fn() -> (epoch, batches_consumed)`` tells where training is in the epoch (called at checkpoint time).
    """

    def __init__(self, *args, progress_fn: Callable[[], tuple[int, int]] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        if not isinstance(self.sampler, SkipSampler):
            raise TypeError("ResumableDataLoader needs a SkipSampler as its sampler")
        self.progress_fn = progress_fn

    def state_dict(self) -> dict[str, int]:
        epoch, consumed = self.progress_fn() if self.progress_fn is not None else (0, 0)
        return {"epoch": int(epoch), "batches_consumed": int(consumed)}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.sampler.set_epoch(int(state["epoch"]))
        self.sampler.skip = int(state["batches_consumed"]) * int(self.batch_size)
        log.info("resuming the training data at epoch %d after %d batches", state["epoch"], state["batches_consumed"])

    @classmethod
    def wrap(cls, loader: DataLoader, progress_fn: Callable[[], tuple[int, int]]) -> DataLoader:
        """Rebuild ``loader`` as a ResumableDataLoader; loaders that save their own position (``state_dict`` /
        ``load_state_dict``) or have no DistributedSampler are returned as is."""
        if _is_stateful(loader):
            return loader
        if not isinstance(loader.sampler, DistributedSampler) or loader.batch_size is None:
            log.warning("training loader has neither state_dict nor a DistributedSampler: a mid-epoch resume "
                        "restarts its epoch")
            return loader
        kwargs = dict(batch_size=loader.batch_size, sampler=SkipSampler(loader.sampler), num_workers=loader.num_workers,
                      collate_fn=loader.collate_fn, pin_memory=loader.pin_memory, drop_last=loader.drop_last,
                      timeout=loader.timeout, worker_init_fn=loader.worker_init_fn,
                      multiprocessing_context=loader.multiprocessing_context, generator=loader.generator,
                      persistent_workers=loader.persistent_workers)
        if loader.num_workers > 0:
            kwargs["prefetch_factor"] = loader.prefetch_factor
        return cls(loader.dataset, progress_fn=progress_fn, **kwargs)


def _is_stateful(loader: Any) -> bool:
    return callable(getattr(loader, "state_dict", None)) and callable(getattr(loader, "load_state_dict", None))


def trainer_progress(trainer: L.Trainer) -> tuple[int, int]:
    """(epoch, training batches already consumed in it), as stored in a checkpoint written now; an epoch whose
    batches are all consumed counts as (epoch + 1, 0)."""
    epoch = trainer.current_epoch
    consumed = trainer.fit_loop.epoch_loop.batch_progress.current.processed
    if consumed >= trainer.num_training_batches:
        return epoch + 1, 0
    return epoch, consumed


def make_train_loader_resumable(datamodule: L.LightningDataModule) -> L.LightningDataModule:
    """Patch ``datamodule.train_dataloader`` (in place) to return a :class:`ResumableDataLoader`."""
    original = datamodule.train_dataloader

    def train_dataloader():
        loader = original()
        trainer = datamodule.trainer
        return ResumableDataLoader.wrap(loader, (lambda: trainer_progress(trainer)) if trainer is not None else None)

    datamodule.train_dataloader = train_dataloader
    return datamodule


class RNGStateCallback(L.Callback):
    """Saves the global RNG states (Python, NumPy, torch CPU and CUDA) in checkpoints and restores them on resume.

    The state is the one of global rank 0 (the rank that writes checkpoints); other ranks get it too on resume.
    """

    def state_dict(self) -> dict[str, Any]:
        # Only tensors and plain Python values, so Lightning's weights_only checkpoint loading accepts them.
        name, keys, pos, has_gauss, cached = np.random.get_state()
        state = {"python": random.getstate(), "torch": torch.get_rng_state(),
                 "numpy": {"name": name, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                           "has_gauss": int(has_gauss), "cached_gaussian": float(cached)}}
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            state["cuda"] = torch.cuda.get_rng_state_all()
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        random.setstate(state_dict["python"])
        numpy_state = state_dict["numpy"]
        np.random.set_state((numpy_state["name"], numpy_state["keys"].numpy().astype(np.uint32), numpy_state["pos"],
                             numpy_state["has_gauss"], numpy_state["cached_gaussian"]))
        torch.set_rng_state(state_dict["torch"])
        if "cuda" in state_dict and torch.cuda.is_available():
            try:
                torch.cuda.set_rng_state_all(state_dict["cuda"])
            except (RuntimeError, IndexError) as error:  # a different number of GPUs
                log.warning("could not restore CUDA RNG states: %s", error)
