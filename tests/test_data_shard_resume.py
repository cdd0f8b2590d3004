"""Streaming shards resume mid-epoch exactly: the sample sequence continues where it stopped, on every rank and
DataLoader worker, and an interrupted epoch still reads every sample once (uneven shards: 7 shards of 3, 3, ..., 2
samples, none dividing ranks x workers). Ranks are simulated in one process, or real (2 gloo processes)."""
from __future__ import annotations

import csv
import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from fyc.data.datamodule import EpochLoader
from fyc.data.shards import WebVidShardDataset, write_shards
from fyc.data.video_io import write_video
from fyc.toy.world import ToyWorldConfig, write_toy_webvid

ROOT = Path(__file__).resolve().parents[1]
HARNESS = ROOT / "tests" / "shard_resume_harness.py"
N_VIDEOS = 19  # + 1 undecodable row = 20 samples in 7 shards of at most 3


@pytest.fixture(scope="module")
def resume_shards(tmp_path_factory):
    root = tmp_path_factory.mktemp("shard_resume")
    csv_path = write_toy_webvid(root, "train", N_VIDEOS, ToyWorldConfig(resolution=32, num_frames=8),
                                first_seed=900, progress=False)
    with open(csv_path, newline="") as f:
        rows = list(csv.DictReader(f))
    write_video(root / "broken" / "cut.mp4", np.full((8, 32, 32, 3), 80, np.uint8), fps=8)
    data = (root / "broken" / "cut.mp4").read_bytes()
    (root / "broken" / "cut.mp4").write_bytes(data[: len(data) // 2])
    rows.insert(7, dict(rows[0], videoid="cut", page_dir="broken"))
    with open(root / "all.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    index = write_shards(root / "all.csv", root / "shards", maxcount=3)
    assert [s["count"] for s in index["shards"]] == [3, 3, 3, 3, 3, 3, 2]
    return {"dir": root / "shards", "ids": [r["videoid"] for r in rows if r["videoid"] != "cut"]}


def _loader(shards, rank: int, world: int, workers: int) -> EpochLoader:
    dataset = WebVidShardDataset(shards, resolution=16, num_frames=2, frame_stride=1, motion_labels=None, seed=5,
                                 rank=rank, world_size=world)
    return EpochLoader(dataset, batch_size=2, num_workers=workers, persistent_workers=workers > 0)


def _take(loader: EpochLoader, count: int) -> list[tuple[int, tuple[str, ...]]]:
    """``count`` batches over epochs as (epoch, ids); stops right after the last one (no batch read ahead)."""
    out = []
    while len(out) < count:
        for batch in loader:
            out.append((loader._iter_epoch, tuple(batch["videoid"])))
            if len(out) == count:
                break
    return out


def _checkpoint_round_trip(state: dict) -> dict:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)  # Lightning checkpoints must stay weights_only-loadable


@pytest.mark.parametrize("world, workers", [(1, 0), (1, 2), (2, 0), (2, 2)])
def test_shard_resume_mid_epoch_matches_uninterrupted_and_reads_every_sample_once(resume_shards, world, workers):
    """N batches + state_dict/load_state_dict into a fresh loader + the rest == uninterrupted, on every rank, for
    an interruption in epoch 0 and in epoch 1; each epoch reads every sample exactly once over all ranks and
    workers."""
    epochs: dict[int, list[str]] = {0: [], 1: []}
    for rank in range(world):
        uninterrupted = _loader(resume_shards["dir"], rank, world, workers)
        full = [(e, ids) for e in (0, 1) for ids in _epoch(uninterrupted)]
        per_epoch = sum(e == 0 for e, _ in full)
        assert full[-1][0] == 1 and per_epoch <= len(uninterrupted)  # the length never cuts an epoch short
        # Interrupted mid-epoch 0, and after the first batch of epoch 1 (persistent workers restarted; the second
        # worker has not handed out a batch of this epoch yet).
        for epoch, stop in ((0, max(1, per_epoch // 2)), (1, per_epoch + 1)):
            interrupted = _loader(resume_shards["dir"], rank, world, workers)
            head = _take(interrupted, stop)
            state = _checkpoint_round_trip(interrupted.state_dict())
            assert state["ranks"][rank]["epoch"] == epoch and state["ranks"][rank]["loader"]
            del interrupted
            resumed = _loader(resume_shards["dir"], rank, world, workers)
            resumed.load_state_dict(state)
            tail = [(e, ids) for e in range(epoch, 2) for ids in _epoch(resumed)]
            assert head + tail == full, (rank, stop)
            if workers == 0:  # skip counts carry over the resume (the undecodable sample counts once per epoch)
                assert resumed.dataset.skipped == uninterrupted.dataset.skipped
        for epoch, ids in full:
            epochs[epoch] += ids
    for epoch in (0, 1):
        assert Counter(epochs[epoch]) == Counter(resume_shards["ids"]), epoch  # none lost, none twice


def _epoch(loader: EpochLoader) -> list[tuple[str, ...]]:
    return [tuple(batch["videoid"]) for batch in loader]


def test_shard_resume_at_epoch_end_starts_the_next_epoch(resume_shards):
    loader = _loader(resume_shards["dir"], 0, 1, 0)
    first = _epoch(loader)
    state = loader.state_dict()
    assert state["ranks"][0] == {"epoch": 1, "loader": {}}
    second = _epoch(loader)
    resumed = _loader(resume_shards["dir"], 0, 1, 0)
    resumed.load_state_dict(_checkpoint_round_trip(state))
    assert _epoch(resumed) == second != first
    assert len(loader) >= len(first)  # the length Lightning trusts never cuts an epoch short


def test_shard_resume_with_another_layout_restarts_the_epoch(resume_shards, caplog):
    loader = _loader(resume_shards["dir"], 0, 1, 0)
    _take(loader, 2)
    state = loader.state_dict()
    other = _loader(resume_shards["dir"], 0, 2, 0)  # now 2 ranks: the shard split differs
    other.load_state_dict(state)
    assert "restarts from its first shard" in caplog.text
    reference = _loader(resume_shards["dir"], 0, 2, 0)
    assert _epoch(other) == _epoch(reference)
    dataset = WebVidShardDataset(resume_shards["dir"], num_frames=2, motion_labels=None, rank=0, world_size=2)
    dataset.load_state_dict({"epoch": 0, "reader": 0, "num_readers": 1, "shard": 0, "offset": 1, "yielded": 1})
    with pytest.raises(ValueError, match="number of ranks x DataLoader workers changed"):
        next(iter(dataset))
    with pytest.raises(ValueError, match="lacks"):
        dataset.load_state_dict({"epoch": 0})


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(**extra) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1", **{k: str(v) for k, v in extra.items()})
    env.pop("LOCAL_RANK", None)
    return env


def _records(out: Path, rank: int, run: str = "ids") -> dict[int, tuple[int, list[str]]]:
    """step → (epoch, ids) of one rank; a step written twice (the interrupted and the resumed run) keeps the last."""
    lines = (out / f"{run}_rank{rank}.jsonl").read_text().splitlines()
    return {r["step"]: (r["epoch"], r["ids"]) for r in map(json.loads, lines)}


def test_shard_resume_two_gloo_ranks_with_workers(resume_shards, tmp_path):
    """2 processes (gloo) x 2 workers: N steps + resume (state gathered from both ranks, saved by rank 0) + N
    steps reads the same ids as 2N uninterrupted steps, on every rank; 2N crosses into the next epoch."""
    steps, stop = 6, 3  # 'drop': 2 batches per rank per epoch here, so the resume is inside epoch 1
    port = _free_port()
    procs = [subprocess.Popen([sys.executable, str(HARNESS), "loader", "--shards", str(resume_shards["dir"]), "--out",
                               str(tmp_path), "--steps", str(steps), "--stop", str(stop)],
                              env=_env(RANK=r, WORLD_SIZE=2, MASTER_ADDR="127.0.0.1", MASTER_PORT=port),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for r in range(2)]
    for p in procs:
        output, _ = p.communicate(timeout=300)
        assert p.returncode == 0, output[-3000:]
    state = torch.load(tmp_path / "loader_state.pt", weights_only=True)
    assert sorted(state["ranks"]) == [0, 1] and state["world_size"] == 2 and state["num_workers"] == 2
    full = [_records(tmp_path, rank, "full") for rank in range(2)]
    for rank in range(2):
        assert sorted(full[rank]) == list(range(steps)) and _records(tmp_path, rank, "resumed") == full[rank], rank
    ids = [[i for epoch, batch in full[rank].values() if epoch == 1 for i in batch] for rank in range(2)]
    assert ids[0] and ids[1] and not set(ids[0]) & set(ids[1])  # the ranks split the epoch


@pytest.mark.slow
def test_shard_resume_after_kill_9_with_ckpt_path_last(resume_shards, tmp_path):
    """Lightning DDP (2 CPU processes, 2 workers each) checkpointing every step; kill -9 of the whole process
    group mid-epoch, then ``ckpt_path=last`` continues the per-rank sample sequence of an uninterrupted run."""
    steps, hang_after = 6, 3  # 2 batches per rank per epoch: the kill is inside epoch 1
    base = [sys.executable, str(HARNESS), "lightning", "--shards", str(resume_shards["dir"]), "--workers", "2",
            "--devices", "2", "--steps", str(steps)]
    full, run = tmp_path / "full", tmp_path / "run"
    for out in (full, run):
        out.mkdir()
    done = subprocess.run([*base, "--out", str(full)], env=_env(MASTER_PORT=_free_port()), capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]

    proc = subprocess.Popen([*base, "--out", str(run), "--hang-after", str(hang_after)], env=_env(
        MASTER_PORT=_free_port()), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 300
    while not (run / "hanging").exists():
        assert proc.poll() is None and time.monotonic() < deadline, "training ended before the kill point"
        time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGKILL)  # kill -9: every rank and data worker, no clean shutdown
    proc.wait(timeout=60)
    before = {rank: _records(run, rank) for rank in range(2)}
    assert all(sorted(r) == list(range(hang_after)) for r in before.values())

    done = subprocess.run([*base, "--out", str(run), "--ckpt-path", "last"], env=_env(MASTER_PORT=_free_port()),
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    for rank in range(2):
        expected, after = _records(full, rank), _records(run, rank)
        assert sorted(expected) == list(range(steps)) and after == expected, rank
