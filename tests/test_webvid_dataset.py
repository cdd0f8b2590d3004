"""WebVidDataset, frame sampling and VideoDataModule on toy-world data and synthetic clips."""
from __future__ import annotations

import csv
import logging
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from fyc.data.sampling import TooFewFramesError, requested_stride, sample_frame_indices
from fyc.toy.world import ToyWorldConfig, read_toy_truth, write_toy_webvid
from fyc.data.video_io import read_video, write_video
from fyc.data.webvid import WebVidDataset

COLUMNS = ["videoid", "contentUrl", "duration", "page_dir", "name", "short_prompt"]


def _write_csv(path: Path, rows: list[dict], columns=COLUMNS) -> Path:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


def _read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    """Toy root: translate-only split ``move`` (speed 2), splits ``slow``/``fast`` (speeds 1 / 3, same seeds)."""
    root = tmp_path_factory.mktemp("toy")
    write_toy_webvid(root, "move", 4, ToyWorldConfig(motion_kinds=("translate",), speed_range=(2.0, 2.0)),
                     first_seed=100, progress=False)
    for split, speed in (("slow", 1.0), ("fast", 3.0)):
        write_toy_webvid(root, split, 2, ToyWorldConfig(motion_kinds=("translate",), speed_range=(speed, speed)),
                         first_seed=200, progress=False)
    return root


@pytest.fixture(scope="module")
def real_clip(tmp_path_factory) -> Path:
    """A camera-like clip (no sample videos are installed): 160x96, 25 fps, 60 frames, a panning smooth texture and
    a moving blob, written as yuv420p like web video."""
    folder = tmp_path_factory.mktemp("real")
    yy, xx = np.mgrid[:96, :160].astype(np.float32)
    frames = []
    for t in range(60):
        base = 110 + 50 * np.sin((xx + 1.5 * t) / 9.0) * np.cos(yy / 13.0)
        image = np.stack([base, base * 0.9 + 20, 200 - base * 0.5], axis=-1)
        cv2.circle(image, (30 + 2 * t, 48), 12, (230, 60, 40), -1, lineType=cv2.LINE_AA)
        frames.append(np.clip(image, 0, 255).astype(np.uint8))
    write_video(folder / "0001" / "clip.mp4", np.stack(frames), fps=25)
    return _write_csv(folder / "real.csv", [{"videoid": "clip", "page_dir": "0001", "name": "a red ball rolls"}],
                      ["videoid", "page_dir", "name"])


# ---------------------------------------------------------------------------------------------------- sampling

def test_sampling_fixed_stride_and_start_modes():
    rng = np.random.default_rng(0)
    first = sample_frame_indices(100, 16, 25.0, stride=4, start="first")
    assert first.indices.tolist() == list(range(0, 64, 4)) and first.stride == 4 and first.fps == 25.0 / 4
    center = sample_frame_indices(100, 16, 25.0, stride=4, start="center")
    assert center.indices[0] == (100 - 61) // 2 and np.all(np.diff(center.indices) == 4)
    starts = {sample_frame_indices(100, 16, 25.0, stride=4, rng=rng).indices[0] for _ in range(300)}
    assert min(starts) == 0 and max(starts) == 100 - 61  # every valid start, never past the end


def test_sampling_reduces_stride_when_video_is_short():
    assert sample_frame_indices(40, 16, 30.0, stride=4, start="first").stride == 2  # 39 // 15
    short = sample_frame_indices(20, 16, 30.0, stride=4, start="first")
    assert short.stride == 1 and short.fps == 30.0 and short.indices[-1] == 15
    with pytest.raises(TooFewFramesError):
        sample_frame_indices(15, 16, 30.0, stride=1, start="first")


def test_sampling_stride_range_and_target_fps():
    rng = np.random.default_rng(1)
    strides = set()
    for _ in range(100):
        clip = sample_frame_indices(200, 8, 24.0, stride=(2, 5), rng=rng)
        assert np.all(np.diff(clip.indices) == clip.stride) and clip.fps == 24.0 / clip.stride
        assert clip.indices[-1] < 200
        strides.add(clip.stride)
    assert strides == {2, 3, 4, 5}
    assert requested_stride(target_fps=8, native_fps=25.0) == 3
    assert sample_frame_indices(100, 8, 25.0, target_fps=8, start="first").fps == pytest.approx(25 / 3)
    with pytest.raises(ValueError, match="not both"):
        requested_stride(stride=2, target_fps=8, native_fps=25.0)
    a = sample_frame_indices(200, 8, 24.0, stride=(1, 6), rng=np.random.default_rng(5))
    b = sample_frame_indices(200, 8, 24.0, stride=(1, 6), rng=np.random.default_rng(5))
    assert np.array_equal(a.indices, b.indices)


# ----------------------------------------------------------------------------------------------------- dataset

def test_sample_keys_shapes_dtypes_ranges(toy):
    ds = WebVidDataset(toy / "move.csv", resolution=64, num_frames=8, frame_stride=(1, 2), seed=3)
    strides = set()
    for i in range(len(ds)):
        s = ds[i]
        assert s["pixel_values"].shape == (3, 8, 64, 64) and s["pixel_values"].dtype == torch.float32
        assert -1.0 <= s["pixel_values"].min() and s["pixel_values"].max() <= 1.0
        assert s["motion_mask"].shape == (1, 64, 64) and s["motion_mask"].dtype == torch.float32
        assert set(s["motion_mask"].unique().tolist()) <= {0.0, 1.0} and s["motion_mask"].sum() > 0
        assert s["motion_strength"].shape == () and s["motion_strength"].dtype == torch.float32
        assert s["motion_strength"] > 0
        assert s["frame_stride"].shape == () and s["frame_stride"].dtype == torch.int64
        assert s["fps"].shape == () and s["fps"].dtype == torch.float32
        assert s["frame_indices"].shape == (8,) and s["frame_indices"].dtype == torch.int64
        # The labels describe the frames returned: actual stride and fps.
        assert torch.all(torch.diff(s["frame_indices"]) == s["frame_stride"])
        assert s["fps"].item() == pytest.approx(8.0 / s["frame_stride"].item())
        assert 0 <= s["frame_indices"].min() and s["frame_indices"].max() < 16
        assert isinstance(s["caption"], str) and " on a " in s["caption"]
        assert s["short_prompt"].startswith("move ") and s["videoid"].startswith("toy")
        strides.add(s["frame_stride"].item())
    assert strides <= {1, 2}


def test_pixels_are_the_decoded_frames(toy):
    ds = WebVidDataset(toy / "move.csv", resolution=64, num_frames=6, frame_stride=2, start="center",
                       motion_labels=None)
    s = ds[1]
    assert "motion_mask" not in s and "motion_strength" not in s
    row = _read_csv(toy / "move.csv")[1]
    frames = read_video(toy / row["contentUrl"], s["frame_indices"].tolist())
    expected = torch.from_numpy(frames).permute(3, 0, 1, 2).float() / 127.5 - 1
    assert torch.allclose(s["pixel_values"], expected, atol=1e-6)
    assert s["frame_indices"].tolist() == [2, 4, 6, 8, 10, 12]  # centred: (16 - 11) // 2 = 2


def test_output_sizes_decord_cannot_decode_to(toy):
    # 64x64 -> (32, 48) asks decord for width 48, which its resizer rejects: the dataset must resize itself.
    ds = WebVidDataset(toy / "move.csv", resolution=(32, 48), num_frames=4, motion_labels=None)
    assert ds[0]["pixel_values"].shape == (3, 4, 32, 48) and not ds.skipped
    row = _read_csv(toy / "move.csv")[0]
    frames = read_video(toy / row["contentUrl"], ds[0]["frame_indices"].tolist())
    resized = torch.stack([torch.from_numpy(cv2.resize(f, (48, 48), interpolation=cv2.INTER_AREA)) for f in frames])
    reference = resized.permute(3, 0, 1, 2).float()[:, :, 8:40] / 127.5 - 1
    assert (ds[0]["pixel_values"] - reference).abs().mean() < 0.02  # same picture, up to the resize filter


def test_motion_mask_covers_the_moving_object(toy):
    ds = WebVidDataset(toy / "move.csv", resolution=64, num_frames=16, start="first")
    rows = _read_csv(toy / "move.csv")
    for i, row in enumerate(rows):
        truth = read_toy_truth(toy / row["page_dir"] / f"{row['videoid']}.json")
        obj = next(o for o in truth["objects"] if o["moving"])
        swept = np.zeros((64, 64), np.uint8)
        for (cx, cy), size in zip(obj["centers"], obj["sizes"]):
            cv2.circle(swept, (int(round(cx - 0.5)), int(round(cy - 0.5))), int(np.ceil(size)), 1, -1)
        swept = cv2.dilate(swept, np.ones((5, 5), np.uint8)).astype(bool)
        mask = ds[i]["motion_mask"][0].numpy() > 0
        recall = (mask & obj["mask"]).sum() / obj["mask"].sum()
        iou = (mask & swept).sum() / (mask | swept).sum()
        assert recall >= 0.8 and iou >= 0.5, (row["videoid"], recall, iou)
        for still in (o for o in truth["objects"] if not o["moving"]):
            assert (mask & still["mask"]).sum() <= 0.2 * still["mask"].sum()


def test_strength_grows_with_true_speed(toy):
    slow = WebVidDataset(toy / "slow.csv", resolution=64, num_frames=16, start="first")
    fast = WebVidDataset(toy / "fast.csv", resolution=64, num_frames=16, start="first")
    for i in range(len(slow)):
        assert slow[i]["videoid"] == fast[i]["videoid"]  # same seed, only the speed differs
        assert fast[i]["motion_strength"] > 1.15 * slow[i]["motion_strength"] > 0


def test_reference_short_side_rescales_strength(toy):
    base = WebVidDataset(toy / "move.csv", resolution=64, num_frames=8, start="first")
    ref = WebVidDataset(toy / "move.csv", resolution=64, num_frames=8, start="first", reference_short_side=256)
    assert ref[0]["motion_strength"].item() == pytest.approx(4 * base[0]["motion_strength"].item(), rel=1e-5)


def test_real_clip_target_fps_resize_and_random_crop(real_clip):
    ds = WebVidDataset(real_clip, resolution=(48, 64), num_frames=8, target_fps=8, random_crop=True,
                       path_template="{page_dir}/{videoid}.mp4", seed=0)
    s = ds[0]
    assert s["pixel_values"].shape == (3, 8, 48, 64) and s["short_prompt"] == ""
    assert s["frame_stride"].item() == 3 and s["fps"].item() == pytest.approx(25 / 3)
    assert s["motion_mask"].shape == (1, 48, 64) and s["motion_strength"] > 0
    # Decode-time downscale (96x160 -> 48x80) then a random 64-wide crop: compare to a reference.
    frames = read_video(real_clip.parent / "0001" / "clip.mp4", s["frame_indices"].tolist(), size=(48, 80))
    reference = torch.from_numpy(frames).permute(3, 0, 1, 2).float() / 127.5 - 1
    errors = [(s["pixel_values"] - reference[..., left:left + 64]).abs().mean().item() for left in range(17)]
    assert min(errors) < 1e-6
    crops = {tuple(WebVidDataset(real_clip, resolution=(48, 64), num_frames=8, target_fps=8, random_crop=True,
                                 seed=seed, motion_labels=None)[0]["pixel_values"][0, 0, 0, :3].tolist())
             for seed in range(6)}
    assert len(crops) > 1  # the crop is random across seeds


def test_seeded_and_epoch_dependent(toy):
    kwargs = dict(resolution=64, num_frames=4, frame_stride=(1, 4), motion_labels=None)
    a, b = WebVidDataset(toy / "move.csv", seed=7, **kwargs), WebVidDataset(toy / "move.csv", seed=7, **kwargs)
    picks = [a[i]["frame_indices"] for i in range(len(a))]
    assert all(torch.equal(p, b[i]["frame_indices"]) for i, p in enumerate(picks))
    changed = []
    for epoch in (1, 2, 3):
        a.set_epoch(epoch)
        changed += [not torch.equal(p, a[i]["frame_indices"]) for i, p in enumerate(picks)]
    assert any(changed) and a.epoch == 3
    a.set_epoch(0)
    assert all(torch.equal(p, a[i]["frame_indices"]) for i, p in enumerate(picks))


def test_broken_samples_are_skipped_and_counted(toy, tmp_path, caplog):
    good = _read_csv(toy / "move.csv")[:2]
    folder = tmp_path / "broken"
    truncated = folder / "truncated.mp4"
    write_video(truncated, np.full((8, 32, 32, 3), 90, np.uint8), fps=8)
    truncated.write_bytes(truncated.read_bytes()[: truncated.stat().st_size // 2])
    write_video(folder / "short.mp4", np.full((2, 32, 32, 3), 90, np.uint8), fps=8)
    rows = [dict(good[0], page_dir=str(toy / good[0]["page_dir"])),
            {"videoid": "missing", "page_dir": str(folder), "name": "gone"},
            {"videoid": "truncated", "page_dir": str(folder), "name": "cut"},
            {"videoid": "short", "page_dir": str(folder), "name": "two frames"},
            {"videoid": "", "page_dir": str(folder), "name": "no id"},
            dict(good[1], page_dir=str(toy / good[1]["page_dir"]))]
    ds = WebVidDataset(_write_csv(tmp_path / "broken.csv", rows), resolution=32, num_frames=4, motion_labels=None)
    with caplog.at_level(logging.WARNING, logger="fyc.data.webvid"):
        ids = [ds[i]["videoid"] for i in range(len(ds))]
        ds[1]  # the same broken file again: counted again, warned once
    assert ids == [good[0]["videoid"]] + [good[1]["videoid"]] * 5  # broken rows fall through to the next good one
    # Index i tries rows i, i+1, ... until a good one: row 1 is tried by ds[1] twice, row 2 by ds[1..2] and ds[1].
    assert ds.skipped == {"missing_file": 2, "decode_error": 3, "too_few_frames": 4, "bad_row": 5}
    warnings = [r.getMessage() for r in caplog.records]
    assert sum("missing.mp4" in w for w in warnings) == 1
    assert any("truncated.mp4" in w and "decode_error" in w for w in warnings)
    assert any("short.mp4" in w and "too_few_frames" in w for w in warnings)


def test_malformed_csv_lines_are_skipped_and_counted(toy, tmp_path, caplog):
    good = _read_csv(toy / "move.csv")[0]
    text = ("videoid,page_dir,name\n"
            f'{good["videoid"]},{toy / good["page_dir"]},"a caption, with a comma"\n'
            f"{good['videoid']},{toy / good['page_dir']},an unquoted, comma\n")
    (tmp_path / "malformed.csv").write_text(text)
    with caplog.at_level(logging.WARNING, logger="fyc.data.webvid"):
        ds = WebVidDataset(tmp_path / "malformed.csv", resolution=32, num_frames=4, motion_labels=None)
    assert len(ds) == 1 and ds.skipped["bad_row"] == 1 and "malformed" in caplog.text
    assert ds[0]["caption"] == "a caption, with a comma"


def test_all_broken_raises_naming_the_files(tmp_path):
    rows = [{"videoid": f"gone{i}", "page_dir": "x", "name": "c"} for i in range(3)]
    ds = WebVidDataset(_write_csv(tmp_path / "gone.csv", rows), resolution=32, num_frames=4, max_attempts=5)
    with pytest.raises(RuntimeError, match=r"gone0\.mp4[\s\S]*gone1\.mp4[\s\S]*gone2\.mp4"):
        ds[0]


def test_csv_without_required_column_fails_at_construction(tmp_path):
    path = _write_csv(tmp_path / "noname.csv", [{"videoid": "1", "page_dir": "p"}], ["videoid", "page_dir"])
    with pytest.raises(ValueError, match=r"noname\.csv.*'name'"):
        WebVidDataset(path)
    path = _write_csv(tmp_path / "named.csv", [{"videoid": "1", "page_dir": "p", "name": "c"}],
                      ["videoid", "page_dir", "name"])
    with pytest.raises(ValueError, match="short_prompt"):
        WebVidDataset(path, require_short_prompt=True)
    assert len(WebVidDataset(path, path_template="{videoid}.mp4")) == 1  # page_dir only needed by the template
    with pytest.raises(ValueError, match=r"'page_dir'"):
        WebVidDataset(_write_csv(tmp_path / "flat.csv", [{"videoid": "1", "name": "c"}], ["videoid", "name"]))


def test_label_fn_hook_gets_the_returned_frames(toy):
    from fyc.motion import MotionLabel

    seen = {}

    def label_fn(frames, sample):
        seen.update(shape=frames.shape, dtype=frames.dtype, indices=sample["frame_indices"].tolist())
        return MotionLabel(mask=torch.ones(frames.shape[1:3], dtype=torch.bool), strength=2.5)

    s = WebVidDataset(toy / "move.csv", resolution=32, num_frames=4, start="first", label_fn=label_fn)[0]
    assert seen == {"shape": (4, 32, 32, 3), "dtype": np.uint8, "indices": [0, 1, 2, 3]}
    assert s["motion_strength"].item() == 2.5 and s["motion_mask"].shape == (1, 32, 32) and s["motion_mask"].all()


# -------------------------------------------------------------------------------------------------- datamodule

@pytest.mark.parametrize("num_workers", [0, 2])
def test_datamodule_batches(toy, num_workers):
    from omegaconf import OmegaConf

    from fyc.data.datamodule import VideoDataModule

    train = OmegaConf.create({"csv_path": str(toy / "move.csv"), "resolution": [32, 32], "num_frames": 4,
                              "frame_stride": [1, 3], "seed": 1})
    val = {"csv_path": str(toy / "slow.csv"), "resolution": 32, "num_frames": 4, "start": "center",
           "motion_labels": None}
    dm = VideoDataModule(train_dataset=train, val_dataset=val, batch_size=2, num_workers=num_workers,
                         persistent_workers=True)
    dm.setup("fit")
    batches = list(dm.train_dataloader())
    assert len(batches) == 2
    for batch in batches:
        assert batch["pixel_values"].shape == (2, 3, 4, 32, 32) and batch["pixel_values"].dtype == torch.float32
        assert batch["motion_mask"].shape == (2, 1, 32, 32) and batch["motion_strength"].shape == (2,)
        assert batch["frame_stride"].shape == (2,) and batch["fps"].shape == (2,)
        assert batch["frame_indices"].shape == (2, 4)
        assert isinstance(batch["caption"], list) and len(batch["short_prompt"]) == 2 and len(batch["videoid"]) == 2
    val_batch = next(iter(dm.val_dataloader()))
    assert val_batch["pixel_values"].shape == (2, 3, 4, 32, 32) and "motion_mask" not in val_batch

    # Lightning calls sampler.set_epoch at each epoch start; it must reach the dataset, also inside live workers.
    loader = dm.train_dataloader()
    list(loader)  # epoch 0 starts the (persistent) workers
    loader.sampler.set_epoch(5)
    assert dm.train_set.epoch == 5
    got = {vid: idx for batch in loader for vid, idx in zip(batch["videoid"], batch["frame_indices"])}
    expected = {dm.train_set[i]["videoid"]: dm.train_set[i]["frame_indices"] for i in range(len(dm.train_set))}
    assert got.keys() == expected.keys() and all(torch.equal(got[k], expected[k]) for k in got)
