"""WebDataset shards: writer, streaming reader split over simulated ranks x DataLoader workers, DataModule/config."""
from __future__ import annotations

import csv
import json
import logging
from collections import Counter

import numpy as np
import pytest
import torch

from fyc.data.annotate import AnnotateConfig, annotate_motion
from fyc.data.datamodule import EpochLoader, VideoDataModule
from fyc.data.shards import WebVidShardDataset, assign_shards, write_shards
from fyc.toy.world import ToyWorldConfig, write_toy_webvid
from fyc.data.video_io import write_video
from fyc.data.webvid import WebVidDataset

N_VIDEOS = 9


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    """9 toy videos + 1 missing + 1 truncated row → shards of 2 samples, with sidecar labels."""
    root = tmp_path_factory.mktemp("shards")
    csv_path = write_toy_webvid(root, "train", N_VIDEOS, ToyWorldConfig(motion_kinds=("translate",)),
                                first_seed=500, progress=False)
    with open(csv_path, newline="") as f:
        rows = list(csv.DictReader(f))
    broken = root / "broken"
    write_video(broken / "cut.mp4", np.full((16, 64, 64, 3), 80, np.uint8), fps=8)
    data = (broken / "cut.mp4").read_bytes()
    (broken / "cut.mp4").write_bytes(data[: len(data) // 2])
    rows += [dict(rows[0], videoid="gone", page_dir="broken"), dict(rows[0], videoid="cut", page_dir="broken")]
    full = root / "all.csv"
    with open(full, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    annotate_motion(full, root / "all.motion.parquet", AnnotateConfig(num_frames=8, frame_stride=2), progress=False)
    index = write_shards(full, root / "shards", motion_sidecar=root / "all.motion.parquet", maxcount=2)
    plain = write_shards(full, root / "plain", maxcount=2)
    return {"root": root, "csv": full, "index": index, "plain": plain, "ids": [r["videoid"] for r in rows[:N_VIDEOS]]}


def test_writer_index_and_skips(shards):
    index, plain = shards["index"], shards["plain"]
    # With labels: the cut video has a failed label (no_label); without: it is written (the reader finds it).
    assert index["total"] == N_VIDEOS and index["skipped"] == {"missing_file": 1, "no_label": 1}
    assert plain["total"] == N_VIDEOS + 1 and plain["skipped"] == {"missing_file": 1}
    assert [s["count"] for s in index["shards"]] == [2, 2, 2, 2, 1] and index["sidecar"]
    assert json.loads((shards["root"] / "shards" / "index.json").read_text()) == index


def test_assignment_is_a_partition():
    shard_list = list(range(13))
    for readers in (1, 2, 3, 4, 6):
        for epoch in (0, 1):
            got = [s for r in range(readers) for s in assign_shards(shard_list, epoch, 7, r, readers)]
            assert sorted(got) == shard_list
    assert assign_shards(shard_list, 0, 7, 0, 2) != assign_shards(shard_list, 1, 7, 0, 2)  # new order per epoch


@pytest.mark.parametrize("world, workers", [(1, 2), (2, 2), (3, 1)])
def test_ranks_x_workers_see_every_sample_once(shards, world, workers):
    seen = []
    for epoch in (0, 1):
        per_epoch = []
        for rank in range(world):
            ds = WebVidShardDataset(shards["root"] / "plain", resolution=32, num_frames=4, motion_labels=None,
                                    rank=rank, world_size=world, seed=3)
            ds.set_epoch(epoch)
            loader = torch.utils.data.DataLoader(ds, batch_size=2, num_workers=workers)
            per_epoch += [v for batch in loader for v in batch["videoid"]]
        assert Counter(per_epoch) == Counter(shards["ids"])  # none lost, none twice (the cut video is skipped)
        seen.append(per_epoch)
    assert seen[0] != seen[1] or world * workers == 1  # the shard order changes between epochs


def test_equal_length_drop_gives_every_rank_the_same_count(shards):
    counts, ids = [], []
    for rank in range(2):
        ds = WebVidShardDataset(shards["root"] / "shards", resolution=32, num_frames=8, rank=rank, world_size=2,
                                equal_length="drop")
        got = [s["videoid"] for s in ds]
        counts.append(len(got))
        ids += got
        assert len(ds) == len(got)
    assert counts[0] == counts[1] > 0 and len(set(ids)) == len(ids)


def test_equal_length_drop_tops_up_a_reader_short_of_undecodable_clips(shards):
    """The 'plain' shards hold an undecodable clip; the reader that gets it repeats its first clips to reach the
    cap, so both ranks still yield the same count (DDP needs equal batch counts)."""
    short = 0
    for seed in range(4):
        counts = []
        for rank in range(2):
            ds = WebVidShardDataset(shards["root"] / "plain", resolution=32, num_frames=4, motion_labels=None,
                                    rank=rank, world_size=2, equal_length="drop", seed=seed)
            got = [s["videoid"] for s in ds]
            counts.append(len(got))
            short += len(got) != len(set(got))
            assert len(got) == ds._min_count(2) and set(got) <= set(shards["ids"])
        assert counts[0] == counts[1]
    assert short > 0  # some seed put the undecodable clip on a capped reader


def test_shard_labels_match_the_sidecar_dataset(shards):
    stream = {s["videoid"]: s for s in WebVidShardDataset(shards["root"] / "shards", resolution=64, num_frames=8)}
    indexed = WebVidDataset(shards["csv"], resolution=64, num_frames=8, motion_labels="sidecar")
    assert set(stream) == set(shards["ids"])
    for i in range(N_VIDEOS):
        s = indexed[i]
        t = stream[s["videoid"]]
        assert t["frame_indices"].tolist() == s["frame_indices"].tolist()
        assert torch.equal(t["pixel_values"], s["pixel_values"]) and torch.equal(t["motion_mask"], s["motion_mask"])
        assert t["motion_strength"].item() == pytest.approx(s["motion_strength"].item(), rel=1e-6)
        assert t["caption"] == s["caption"] and t["short_prompt"] == s["short_prompt"]


def test_broken_video_in_a_shard_is_skipped_and_counted(shards, caplog):
    ds = WebVidShardDataset(shards["root"] / "plain", resolution=32, num_frames=4, motion_labels=None)
    with caplog.at_level(logging.WARNING, logger="fyc.data.shards"):
        got = [s["videoid"] for s in ds]
    assert sorted(got) == sorted(shards["ids"]) and ds.skipped == {"decode_error": 1} and "cut" in caplog.text
    with pytest.raises(ValueError, match="no motion labels"):
        WebVidShardDataset(shards["root"] / "plain", motion_labels="shard")
    with pytest.raises(FileNotFoundError, match="index.json"):
        WebVidShardDataset(shards["root"] / "nowhere")


def test_datamodule_serves_shards_and_advances_epochs(shards):
    dm = VideoDataModule(train_dataset={"shards": str(shards["root"] / "plain"), "resolution": 32, "num_frames": 4,
                                        "motion_labels": None, "frame_stride": [1, 3]},
                         val_dataset={"csv_path": str(shards["csv"]), "resolution": 32, "num_frames": 4,
                                      "motion_labels": None, "start": "center"},
                         batch_size=3, num_workers=2, persistent_workers=True)
    dm.setup("fit")
    loader = dm.train_dataloader()
    assert isinstance(loader, EpochLoader)
    epochs = []
    for _ in range(2):
        batches = list(loader)
        epochs.append([v for b in batches for v in b["videoid"]])
        assert batches[0]["pixel_values"].shape[1:] == (3, 4, 32, 32)
    assert dm.train_set.epoch == 1 and Counter(epochs[0]) == Counter(epochs[1]) == Counter(shards["ids"])
    assert epochs[0] != epochs[1]  # epoch 1 reads the shards in another order
    assert next(iter(dm.val_dataloader()))["pixel_values"].shape == (3, 3, 4, 32, 32)


def test_webvid_shards_config_instantiates(shards, tmp_path):
    import hydra

    from conftest import compose

    cfg = compose("train", ["data=webvid_shards", f"paths.output_dir={tmp_path}",
                            f"data.train_dataset.shards={shards['root'] / 'shards'}", "data.train_dataset.resolution=32",
                            "data.train_dataset.num_frames=8", "data.num_workers=0", "data.persistent_workers=false",
                            f"data.val_dataset.csv_path={shards['csv']}", "data.val_dataset.video_root=null"])
    dm = hydra.utils.instantiate(cfg.data, _convert_="all")
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert batch["pixel_values"].shape == (4, 3, 8, 32, 32) and batch["motion_mask"].shape == (4, 1, 32, 32)
