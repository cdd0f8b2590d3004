"""Processes for tests/test_data_shard_resume.py: read streaming shards on one rank of a gloo group and record the
sample ids of every step, optionally stopping mid-epoch and resuming from a saved state.

    python tests/shard_resume_harness.py loader --shards DIR --out DIR --workers W --steps 2N --stop N
        one rank (RANK / WORLD_SIZE / MASTER_ADDR / MASTER_PORT in the environment) iterates an EpochLoader over
        epochs for 2N steps (run "full"); then N steps, the loader state (gathered from every rank) is saved by
        rank 0, a fresh loader loads it and takes the remaining N steps (run "resumed").
    python tests/shard_resume_harness.py lightning --shards DIR --out DIR --workers W --devices 2 --steps K
        [--hang-after S] [--ckpt-path last]
        Lightning DDP on the CPU with a one-parameter model, the project's datamodule, resume patch and
        ``resolve_ckpt_path``; checkpoints every step (last.ckpt). --hang-after S: after step S's checkpoint, write
        ``<out>/hanging`` and block, so the test can kill -9 the process group mid-epoch.

Each rank appends ``{"step", "rank", "epoch", "ids"}`` lines to ``<out>/<run>_rank<r>.jsonl`` (run "ids" for
lightning).
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch


def _dataset_kwargs(args) -> dict:
    return {"resolution": 16, "num_frames": 2, "frame_stride": 1, "motion_labels": None, "seed": 5,
            "equal_length": args.equal_length}


def _datamodule(args):
    from fyc.data.datamodule import VideoDataModule

    return VideoDataModule(train_dataset={"shards": str(args.shards), **_dataset_kwargs(args)}, batch_size=2,
                           num_workers=args.workers, persistent_workers=args.workers > 0)


def _record(out: Path, rank: int, step: int, epoch: int, ids, run: str = "ids") -> None:
    with open(out / f"{run}_rank{rank}.jsonl", "a") as f:
        f.write(json.dumps({"step": step, "rank": rank, "epoch": epoch, "ids": list(ids)}) + "\n")


def run_loader(args) -> None:
    from fyc.data.epoch_loader import EpochLoader
    from fyc.data.shards import WebVidShardDataset

    torch.distributed.init_process_group("gloo")
    rank = torch.distributed.get_rank()

    def fresh_loader():  # rank and world size come from torch.distributed
        return EpochLoader(WebVidShardDataset(args.shards, **_dataset_kwargs(args)), batch_size=2,
                           num_workers=args.workers, persistent_workers=args.workers > 0)

    def steps(loader, count, step, run):  # take `count` batches (over epochs); returns the next step number
        while count:
            for batch in loader:
                _record(args.out, rank, step, loader._iter_epoch, batch["videoid"], run)
                step, count = step + 1, count - 1
                if count == 0:
                    break
        return step

    steps(fresh_loader(), args.steps, 0, "full")
    loader = fresh_loader()
    step = steps(loader, args.stop, 0, "resumed")
    state = loader.state_dict()  # a collective: every rank's position
    if rank == 0:
        torch.save(state, args.out / "loader_state.pt")
    del loader  # the interrupted run's workers go away
    torch.distributed.barrier()
    resumed = fresh_loader()
    resumed.load_state_dict(torch.load(args.out / "loader_state.pt", weights_only=True))
    steps(resumed, args.steps - args.stop, step, "resumed")
    torch.distributed.barrier()


def run_lightning(args) -> None:
    import lightning as L
    from lightning.pytorch.callbacks import ModelCheckpoint

    from fyc.training.resume import RNGStateCallback, make_train_loader_resumable
    from fyc.training.run import resolve_ckpt_path

    class Recorder(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.weight = torch.nn.Parameter(torch.ones(()))

        def training_step(self, batch, batch_idx):
            _record(args.out, self.global_rank, self.global_step, self.current_epoch, batch["videoid"])
            return (self.weight * batch["pixel_values"].mean()) ** 2

        def on_train_batch_end(self, outputs, batch, batch_idx):
            if args.hang_after is not None and self.global_step == args.hang_after:  # last.ckpt of this step exists
                if self.global_rank == 0:
                    (args.out / "hanging").write_text(str(self.global_step))
                time.sleep(3600)

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    L.seed_everything(0, workers=True)
    checkpoint = ModelCheckpoint(dirpath=args.out / "checkpoints", every_n_train_steps=1, save_last=True,
                                 save_top_k=0)
    trainer = L.Trainer(accelerator="cpu", devices=args.devices, strategy="ddp" if args.devices > 1 else "auto",
                        max_steps=args.steps, logger=False, enable_progress_bar=False, enable_model_summary=False,
                        limit_val_batches=0, num_sanity_val_steps=0, callbacks=[checkpoint, RNGStateCallback()])
    trainer.fit(Recorder(), datamodule=make_train_loader_resumable(_datamodule(args)),
                ckpt_path=resolve_ckpt_path(args.ckpt_path, args.out))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["loader", "lightning"])
    parser.add_argument("--shards", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--steps", type=int, required=True)
    parser.add_argument("--stop", type=int, default=None)
    parser.add_argument("--devices", type=int, default=2)
    parser.add_argument("--hang-after", type=int, default=None)
    parser.add_argument("--ckpt-path", default=None)
    parser.add_argument("--equal-length", default="drop")
    args = parser.parse_args()
    args.equal_length = None if args.equal_length == "none" else args.equal_length
    torch.set_num_threads(1)
    run_loader(args) if args.mode == "loader" else run_lightning(args)


if __name__ == "__main__":
    main()
