"""Lightning DataModule over video datasets (train + optional val), Hydra-friendly.

Each dataset is given as a ready ``Dataset``, a zero-argument factory (e.g. a Hydra ``_partial_: true`` node), or a
mapping of :class:`~fyc.data.webvid.WebVidDataset` keyword arguments (a plain config node). Batches use the default
collate: tensors gain a leading batch dim (``pixel_values`` (B, 3, F, H, W), ``motion_mask`` (B, 1, H, W), scalars
(B,), ``frame_indices`` (B, F)) and strings become lists of length B.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping

import lightning as L
from torch.utils.data import DataLoader, Dataset, DistributedSampler, IterableDataset

from fyc.data.epoch_loader import EpochLoader
from fyc.data.video_io import limit_opencv_threads

__all__ = ["EpochLoader", "EpochSampler", "VideoDataModule", "build_dataset"]

DatasetSpec = Dataset | Callable[[], Dataset] | Mapping[str, Any]


def build_dataset(spec: DatasetSpec) -> Dataset:
    """A Dataset from a Dataset, a factory, or WebVidDataset kwargs (OmegaConf nodes are converted first); a
    mapping with a ``shards`` key (the shard folder) gives a streaming :class:`~fyc.data.shards.WebVidShardDataset`."""
    if isinstance(spec, Dataset):
        return spec
    if isinstance(spec, Mapping):
        from omegaconf import DictConfig, OmegaConf

        kwargs = OmegaConf.to_container(spec, resolve=True) if isinstance(spec, DictConfig) else dict(spec)
        if "shards" in kwargs:  # a shard folder: stream it (WebVidShardDataset kwargs, "shards" = the folder)
            from fyc.data.shards import WebVidShardDataset

            return WebVidShardDataset(kwargs.pop("shards"), **kwargs)
        from fyc.data.webvid import WebVidDataset

        return WebVidDataset(**kwargs)
    if callable(spec):
        return spec()
    raise TypeError(f"expected a Dataset, a factory or a mapping of WebVidDataset kwargs, got {type(spec).__name__}")


class EpochSampler(DistributedSampler):
    """Seeded shuffling sampler that also calls ``dataset.set_epoch`` when Lightning sets its epoch.

    Lightning calls ``set_epoch`` on the DataLoader's sampler at every epoch start; forwarding it gives the dataset
    new per-epoch randomness (strides, starts, crops). Being a ``DistributedSampler``, Lightning keeps it as is under
    DDP instead of wrapping it (which would hide ``set_epoch`` from the dataset).
    """

    def set_epoch(self, epoch: int) -> None:
        super().set_epoch(epoch)
        if callable(getattr(self.dataset, "set_epoch", None)):
            self.dataset.set_epoch(epoch)


def _worker_init(_worker_id: int) -> None:
    # Each worker runs OpenCV flow on its own core; OpenCV's own thread pool would oversubscribe the CPU. The
    # parent already set 1 thread before forking (see limit_opencv_threads), so this is only a safety net.
    limit_opencv_threads()


class VideoDataModule(L.LightningDataModule):
    """Train/val DataLoaders over video datasets.

    Args:
        train_dataset: the training set (Dataset, factory, or WebVidDataset kwargs).
        val_dataset: the validation set, or None for no validation.
        batch_size, val_batch_size: per-process batch sizes (``val_batch_size=None`` → ``batch_size``).
        num_workers, pin_memory, persistent_workers, drop_last: DataLoader settings (``persistent_workers`` only
            applies when ``num_workers > 0``; ``drop_last`` only to training).
        shuffle_seed: seed of the training order (epoch ``e`` uses ``shuffle_seed + e``).
    """

    def __init__(self, train_dataset: DatasetSpec, val_dataset: DatasetSpec | None = None, batch_size: int = 4,
                 val_batch_size: int | None = None, num_workers: int = 0, pin_memory: bool = False,
                 persistent_workers: bool = False, drop_last: bool = False, shuffle_seed: int = 0):
        super().__init__()
        self.train_spec, self.val_spec = train_dataset, val_dataset
        self.batch_size = batch_size
        self.val_batch_size = val_batch_size or batch_size
        self.num_workers, self.pin_memory = num_workers, pin_memory
        self.persistent_workers = persistent_workers and num_workers > 0
        self.drop_last, self.shuffle_seed = drop_last, shuffle_seed
        self.train_set: Dataset | None = None
        self.val_set: Dataset | None = None

    def setup(self, stage: str | None = None) -> None:
        if stage in (None, "fit") and self.train_set is None:
            self.train_set = build_dataset(self.train_spec)
        if stage in (None, "fit", "validate") and self.val_set is None and self.val_spec is not None:
            self.val_set = build_dataset(self.val_spec)

    def _loader(self, dataset: Dataset, batch_size: int, **kwargs) -> DataLoader:
        if self.num_workers > 0:
            limit_opencv_threads()
        return DataLoader(dataset, batch_size=batch_size, num_workers=self.num_workers, pin_memory=self.pin_memory,
                          persistent_workers=self.persistent_workers,
                          worker_init_fn=_worker_init if self.num_workers > 0 else None, **kwargs)

    def train_dataloader(self) -> DataLoader:
        if self.train_set is None:
            self.setup("fit")
        trainer = self.trainer
        world, rank = (trainer.world_size, trainer.global_rank) if trainer is not None else (1, 0)
        if isinstance(self.train_set, IterableDataset):  # streaming shards: the dataset splits ranks/workers itself
            if self.num_workers > 0:
                limit_opencv_threads()
            loader = EpochLoader(self.train_set, batch_size=self.batch_size, num_workers=self.num_workers,
                                 pin_memory=self.pin_memory, persistent_workers=self.persistent_workers,
                                 worker_init_fn=_worker_init if self.num_workers > 0 else None,
                                 drop_last=self.drop_last)
            if trainer is not None and getattr(trainer, "current_epoch", 0):
                loader.set_epoch(trainer.current_epoch)
            return loader
        sampler = EpochSampler(self.train_set, num_replicas=world, rank=rank, shuffle=True, seed=self.shuffle_seed)
        return self._loader(self.train_set, self.batch_size, sampler=sampler, drop_last=self.drop_last)

    def val_dataloader(self) -> DataLoader | list:
        if self.val_set is None:
            self.setup("validate")
        if self.val_set is None:
            return []
        if isinstance(self.val_set, IterableDataset):
            return self._loader(self.val_set, self.val_batch_size)
        return self._loader(self.val_set, self.val_batch_size, shuffle=False)
