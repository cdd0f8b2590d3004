"""The DataLoader of streaming (iterable) training data: per-epoch shard order and exact mid-epoch resume.

Kept apart from the Lightning DataModule (no Lightning import) so that plain PyTorch loops can use it too.
"""
from __future__ import annotations

import logging
import warnings
from typing import Any

import torch
from torchdata.stateful_dataloader import StatefulDataLoader

from fyc.data.shards import dist_rank_world

log = logging.getLogger(__name__)


class EpochLoader(StatefulDataLoader):
    """torchdata ``StatefulDataLoader`` over a streaming dataset: tells the dataset its epoch (0, 1, ...) at every
    ``iter()`` and saves / restores the position inside an epoch.

    Lightning forwards ``set_epoch`` only to samplers, and an iterable dataset has none; without this every epoch
    would read the shards in the same order. The epoch lives in the dataset's shared memory, so persistent workers
    see it too. Lightning checkpoints any train loader with ``state_dict`` / ``load_state_dict``; the
    ``StatefulDataLoader`` part collects the dataset's ``state_dict`` from every worker (taken with each batch, so
    it is the position after the last batch handed out) and gives each worker its own back on resume. Lightning
    writes the checkpoint from rank 0 only, so :meth:`state_dict` gathers every rank's state (a collective under
    ``torch.distributed``: call it on all ranks, as ``Trainer.save_checkpoint`` does) and :meth:`load_state_dict`
    takes this rank's. A state saved with another number of ranks or workers cannot continue the same split: the
    interrupted epoch then restarts from its first shard (with a warning).

    ``len()`` is the dataset's ``num_batches`` when it has one (each worker ends its stream with a partial batch,
    which samples / batch size undercounts).
    """

    def __init__(self, *args, **kwargs):
        with warnings.catch_warnings():  # torchdata calls torch.set_vital, which this torch deprecates
            warnings.filterwarnings("ignore", message=".*set_vital.*", category=UserWarning)
            super().__init__(*args, **kwargs)
        self._next_epoch = 0
        self._iter_epoch: int | None = None  # the epoch the current iterator reads

    def set_epoch(self, epoch: int) -> None:
        self._next_epoch = int(epoch)

    def __iter__(self):
        epoch = self._next_epoch
        if callable(getattr(self.dataset, "set_epoch", None)):
            self.dataset.set_epoch(epoch)
        self._iter_epoch, self._next_epoch = epoch, epoch + 1
        return super().__iter__()

    def __len__(self) -> int:
        num_batches = getattr(self.dataset, "num_batches", None)
        if callable(num_batches) and self.batch_size is not None:
            return num_batches(self.batch_size, self.num_workers, self.drop_last)
        return super().__len__()

    def _rank_world(self) -> tuple[int, int]:
        rank_world = getattr(self.dataset, "rank_world", None)
        return rank_world() if callable(rank_world) else dist_rank_world()

    def state_dict(self) -> dict[str, Any]:
        """``{"world_size", "num_workers", "ranks": {rank: {"epoch", "loader"}}}``: per rank the epoch to continue
        and the ``StatefulDataLoader`` state inside it ({} = from the epoch's start)."""
        rank, world = self._rank_world()
        iterator = self._iterator
        if self._iter_epoch is None or iterator is None:  # not iterating: a loaded state, or the next epoch
            local = {"epoch": self._next_epoch, "loader": self.next_iter_state or {}}
        elif iterator._finished or iterator._num_yielded >= len(self):  # epoch done: the next one from its start
            local = {"epoch": self._iter_epoch + 1, "loader": {}}
        else:
            local = {"epoch": self._iter_epoch, "loader": super().state_dict()}
        ranks = {rank: local}
        if torch.distributed.is_available() and torch.distributed.is_initialized() \
                and torch.distributed.get_world_size() == world > 1:
            gathered: list = [None] * world
            torch.distributed.all_gather_object(gathered, local)
            ranks = dict(enumerate(gathered))
        return {"world_size": world, "num_workers": self.num_workers, "ranks": ranks}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if not state:
            return
        rank, world = self._rank_world()
        saved = state["ranks"]
        if state["world_size"] != world or state["num_workers"] != self.num_workers or rank not in saved:
            epoch = min(int(s["epoch"]) for s in saved.values())
            log.warning("training data saved with %d ranks x %d workers, now %d x %d: the shard split differs, so "
                        "epoch %d restarts from its first shard", state["world_size"], state["num_workers"], world,
                        self.num_workers, epoch)
            self._next_epoch = epoch
            super().load_state_dict({})
            return
        self._next_epoch = int(saved[rank]["epoch"])
        super().load_state_dict(saved[rank]["loader"])
        log.info("resuming the streaming training data in epoch %d", self._next_epoch)
