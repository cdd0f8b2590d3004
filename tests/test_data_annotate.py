"""Offline motion labels (fyc.data.annotate, scripts/annotate_motion.py) and WebVidDataset reading them."""
from __future__ import annotations

import csv
import logging
import runpy
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from fyc.data.sidecar import unpack_floats
from fyc.data.annotate import (AnnotateConfig, annotate_motion, label_grid, pack_mask, parse_shard, parts_dir,
                               read_sidecar, read_sidecar_metadata, sidecar_stats, unpack_mask)
from fyc.toy.world import ToyWorldConfig, read_toy_truth, write_toy_webvid
from fyc.data.video_io import read_video, write_video
from fyc.data.webvid import WebVidDataset

ROOT = Path(__file__).resolve().parents[1]


def _rows(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _write_csv(path: Path, rows: list[dict], columns=("videoid", "page_dir", "name")) -> Path:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    """Translate-only toy splits: ``move`` (4 videos, 2 px/frame), ``slow``/``fast`` (same 3 scenes, 1 / 3 px)."""
    root = tmp_path_factory.mktemp("toy_annotate")
    write_toy_webvid(root, "move", 4, ToyWorldConfig(motion_kinds=("translate",), speed_range=(2.0, 2.0)),
                     first_seed=100, progress=False)
    for split, speed in (("slow", 1.0), ("fast", 3.0)):
        write_toy_webvid(root, split, 3, ToyWorldConfig(motion_kinds=("translate",), speed_range=(speed, speed)),
                         first_seed=300, progress=False)
    return root


CFG = AnnotateConfig(num_frames=8, frame_stride=2, flow="farneback")


def test_mask_bits_round_trip_and_grid():
    mask = np.random.default_rng(0).random((37, 53)) > 0.6
    assert np.array_equal(unpack_mask(pack_mask(mask), 37, 53), mask)
    assert len(pack_mask(mask)) == (37 * 53 + 7) // 8
    assert label_grid(272, 640, 64) == (64, 151) and label_grid(64, 64, 256) == (64, 64)


def test_sharded_resumable_and_merged(toy, tmp_path):
    out = tmp_path / "move.motion.parquet"
    first = annotate_motion(toy / "move.csv", out, CFG, shard="0/2", progress=False)
    assert (first.total, first.processed, first.done) == (2, 2, 0) and first.merged is None
    assert not out.exists() and len(list(parts_dir(out).glob("*.parquet"))) == 1
    assert sorted(read_sidecar(out)["videoid"].to_pylist()) == ["toy00000100", "toy00000102"]  # rows 0, 2
    second = annotate_motion(toy / "move.csv", out, CFG, shard=(1, 2), progress=False)
    assert second.processed == 2 and second.merged == out and out.is_file()  # the last shard merges
    again = annotate_motion(toy / "move.csv", out, CFG, shard="1/2", progress=False)
    assert again.processed == 0 and again.done == 2  # resumed: nothing redone
    table = read_sidecar(out)
    assert table.num_rows == 4 and set(table["status"].to_pylist()) == {"ok"}
    meta = read_sidecar_metadata(out)
    assert meta["num_frames"] == 8 and meta["frame_stride"] == 2 and meta["reference_short_side"] == 512
    assert meta["start"] == "center" and meta["flow_backend"] == "farneback"
    with pytest.raises(ValueError, match="num_frames"):  # a rerun with other settings must not mix labels
        annotate_motion(toy / "move.csv", out, AnnotateConfig(num_frames=6, frame_stride=2), progress=False)


def test_shard_spec_and_torchrun_env(monkeypatch):
    assert parse_shard("3/8") == (3, 8)
    for bad in ("8/8", "x", "1-2"):
        with pytest.raises(ValueError, match="shard"):
            parse_shard(bad)
    monkeypatch.setenv("RANK", "2")
    monkeypatch.setenv("WORLD_SIZE", "4")
    assert parse_shard(None) == (2, 4)
    monkeypatch.delenv("RANK")
    monkeypatch.delenv("WORLD_SIZE")
    monkeypatch.delenv("SLURM_PROCID", raising=False)
    assert parse_shard(None) == (0, 1)


def test_sidecar_labels_equal_on_the_fly_labels_on_the_same_frames(toy, tmp_path):
    out = tmp_path / "move.motion.parquet"
    annotate_motion(toy / "move.csv", out, CFG, progress=False)
    side = WebVidDataset(toy / "move.csv", resolution=64, num_frames=8, motion_labels=out)
    live = WebVidDataset(toy / "move.csv", resolution=64, num_frames=8, frame_stride=2, start="center",
                         flow_backend="farneback")
    for i in range(len(side)):
        a, b = side[i], live[i]
        assert a["frame_indices"].tolist() == b["frame_indices"].tolist() == list(range(0, 16, 2))
        assert a["frame_stride"].item() == 2 and a["fps"].item() == pytest.approx(4.0)
        assert torch.equal(a["pixel_values"], b["pixel_values"])
        assert torch.equal(a["motion_mask"], b["motion_mask"]) and a["motion_mask"].sum() > 0
        assert a["motion_strength"].item() == pytest.approx(b["motion_strength"].item(), rel=1e-5)
    raw = read_sidecar(out).to_pylist()
    # Stored in px per pair at short side 512: 8x the 64-px value.
    by_id = {r["videoid"]: r for r in raw}
    assert by_id[side[0]["videoid"]]["strength"] == pytest.approx(8 * side[0]["motion_strength"].item(), rel=1e-5)


def test_sidecar_mask_covers_moving_object_and_strength_follows_speed(toy, tmp_path):
    cfg = AnnotateConfig(num_frames=16, frame_stride=1, flow="dis")
    for split in ("slow", "fast"):
        annotate_motion(toy / f"{split}.csv", tmp_path / f"{split}.parquet", cfg, progress=False)
    tables = {s: {r["videoid"]: r for r in read_sidecar(tmp_path / f"{s}.parquet").to_pylist()}
              for s in ("slow", "fast")}
    for row in _rows(toy / "fast.csv"):
        truth = read_toy_truth(toy / row["page_dir"] / f"{row['videoid']}.json")
        label = tables["fast"][row["videoid"]]
        mask = unpack_mask(label["mask_bits"], label["mask_height"], label["mask_width"])
        moving = next(o for o in truth["objects"] if o["moving"])
        assert (mask & moving["mask"]).sum() >= 0.8 * moving["mask"].sum(), row["videoid"]
        for still in (o for o in truth["objects"] if not o["moving"]):
            assert (mask & still["mask"]).sum() <= 0.2 * still["mask"].sum()
        assert mask.mean() < 0.5  # the static background is not in the mask
        assert label["strength"] > 1.15 * tables["slow"][row["videoid"]]["strength"] > 0


def test_object_masks_replace_the_flow_mask_and_keep_the_flow_strength(toy, tmp_path, capsys):
    flow_cfg = AnnotateConfig(num_frames=8, frame_stride=1, flow="farneback", start="first", mask_short_side=32)
    object_cfg = AnnotateConfig(**{**flow_cfg.__dict__, "mask_file": "{page_dir}/{videoid}_mask.png"})
    annotate_motion(toy / "move.csv", tmp_path / "flow.parquet", flow_cfg, progress=False)
    annotate_motion(toy / "move.csv", tmp_path / "object.parquet", object_cfg, progress=False)
    flow = {r["videoid"]: r for r in read_sidecar(tmp_path / "flow.parquet").to_pylist()}
    for row in read_sidecar(tmp_path / "object.parquet").to_pylist():
        assert row["status"] == "ok" and row["frame_indices"] == list(range(8))  # the window starts at frame 0
        truth = read_toy_truth(toy / "move_000" / f"{row['videoid']}.json")
        moving = next(o for o in truth["objects"] if o["moving"])["mask"]  # frame-0 mask at 64 px
        mask = unpack_mask(row["mask_bits"], row["mask_height"], row["mask_width"])
        flow_mask = unpack_mask(flow[row["videoid"]]["mask_bits"], row["mask_height"], row["mask_width"])
        small = moving.reshape(32, 2, 32, 2).any(axis=(1, 3))  # the one pooling rule: any pixel
        assert np.array_equal(mask, small)
        # Eq. 2's union of flow masks covers the swept path and the flow's spill: several times the object.
        assert flow_mask.sum() > 2 * mask.sum() > 0
        assert row["strength"] == pytest.approx(flow[row["videoid"]]["strength"], rel=1e-6)
    stats = {name: sidecar_stats(tmp_path / f"{name}.parquet") for name in ("flow", "object")}
    assert stats["object"]["ok"] == stats["object"]["rows"] == len(flow)
    assert stats["flow"]["mask_coverage"]["mean"] > 2 * stats["object"]["mask_coverage"]["mean"] > 0
    assert stats["object"]["strength"] == pytest.approx(stats["flow"]["strength"])
    main = runpy.run_path(str(Path(__file__).parents[1] / "research" / "sidecar_stats.py"))["main"]
    main([str(tmp_path / "flow.parquet"), str(tmp_path / "object.parquet")])
    table = capsys.readouterr().out.splitlines()
    assert "Eq. 2 flow (farneback)" in table[2] and "{page_dir}/{videoid}_mask.png" in table[3]
    assert f"{len(flow)} / {len(flow)}" in table[3]
    # The dataset serves it like any sidecar.
    ds = WebVidDataset(toy / "move.csv", resolution=32, num_frames=8, motion_labels=tmp_path / "object.parquet")
    assert ds[0]["frame_indices"].tolist() == list(range(8)) and 0 < ds[0]["motion_mask"].mean() < 0.1


def test_object_mask_errors(toy, tmp_path):
    with pytest.raises(ValueError, match="start='first'"):
        AnnotateConfig(mask_file="{videoid}_mask.png")
    with pytest.raises(ValueError, match="start must be"):
        AnnotateConfig(start="random")
    cfg = AnnotateConfig(num_frames=8, frame_stride=1, flow="farneback", start="first",
                         mask_file="{page_dir}/{videoid}_{name}.png")
    with pytest.raises(ValueError, match=r"uses \['name'\]"):
        annotate_motion(toy / "move.csv", tmp_path / "bad.parquet", cfg, progress=False)
    # A missing and an empty mask are recorded as failed rows naming the file; the other videos are labelled.
    rows = _rows(toy / "move.csv")
    page = toy / rows[0]["page_dir"]
    masks = tmp_path / "masks"
    masks.mkdir()
    import cv2

    cv2.imwrite(str(masks / f"{rows[1]['videoid']}.png"), np.zeros((64, 64), np.uint8))
    cv2.imwrite(str(masks / f"{rows[2]['videoid']}.png"), np.zeros((32, 32), np.uint8))
    for row in rows[3:]:
        cv2.imwrite(str(masks / f"{row['videoid']}.png"), cv2.imread(str(page / f"{row['videoid']}_mask.png")))
    cfg = AnnotateConfig(num_frames=8, frame_stride=1, flow="farneback", start="first",
                         mask_file=str(masks / "{videoid}.png"))  # an absolute template ignores the video root
    result = annotate_motion(toy / "move.csv", tmp_path / "partial.parquet", cfg, video_root=toy,
                             path_template="{page_dir}/{videoid}.mp4", progress=False)
    table = {r["videoid"]: r for r in read_sidecar(tmp_path / "partial.parquet").to_pylist()}
    assert result.processed == len(rows) - 3
    assert table[rows[0]["videoid"]]["status"] == "missing_file"
    assert "no object mask" in table[rows[0]["videoid"]]["detail"]
    assert "is empty" in table[rows[1]["videoid"]]["detail"] and "32x32" in table[rows[2]["videoid"]]["detail"]


def test_random_crop_crops_mask_with_pixels(toy, tmp_path):
    out = tmp_path / "move.motion.parquet"
    annotate_motion(toy / "move.csv", out, CFG, progress=False)
    labels = {r["videoid"]: r for r in read_sidecar(out).to_pylist()}
    ds = WebVidDataset(toy / "move.csv", resolution=(32, 64), num_frames=8, random_crop=True, motion_labels=out,
                       seed=0, reference_short_side=256)
    rows = _rows(toy / "move.csv")
    tops = set()
    for epoch in range(3):
        ds.set_epoch(epoch)
        for i, row in enumerate(rows):
            s = ds[i]
            full = torch.from_numpy(read_video(toy / row["contentUrl"], s["frame_indices"].tolist()))
            full = full.permute(3, 0, 1, 2).float() / 127.5 - 1
            top = min(range(33), key=lambda t: (s["pixel_values"] - full[:, :, t:t + 32]).abs().mean().item())
            tops.add(top)
            label = labels[s["videoid"]]
            mask = unpack_mask(label["mask_bits"], label["mask_height"], label["mask_width"])
            assert torch.equal(s["motion_mask"][0].bool(), torch.from_numpy(mask[top:top + 32]))
            # unit: px per pair at reference 256 relative to the 32-px short side of the crop (as on the fly), and
            # re-derived for the crop: scaled by the mean stored |flow| inside the cropped vs the full mask
            magnitude = unpack_floats(label["magnitude_bits"], label["mask_height"], label["mask_width"])
            kept = magnitude[top:top + 32][mask[top:top + 32]]
            ratio = kept.mean() / magnitude[mask].mean() if kept.size else 0.0
            assert s["motion_strength"].item() == pytest.approx(
                label["strength"] * 64 / 512 * 256 / 32 * ratio, rel=1e-4)
    assert len(tops) > 1


def test_broken_videos_are_recorded_and_skipped(toy, tmp_path, caplog):
    folder = tmp_path / "v"
    good = _rows(toy / "move.csv")[:2]
    truncated = folder / "truncated.mp4"
    write_video(truncated, np.full((8, 32, 32, 3), 90, np.uint8), fps=8)
    truncated.write_bytes(truncated.read_bytes()[: truncated.stat().st_size // 2])
    (folder / "garbage.mp4").write_bytes(np.random.default_rng(0).bytes(4096))
    (folder / "empty.mp4").write_bytes(b"")
    write_video(folder / "short.mp4", np.full((4, 32, 32, 3), 90, np.uint8), fps=8)
    rows = [dict(good[0], page_dir=str(toy / good[0]["page_dir"]))]
    rows += [{"videoid": v, "page_dir": str(folder), "name": v} for v in
             ("missing", "truncated", "garbage", "empty", "short", "")]
    rows += [dict(good[1], page_dir=str(toy / good[1]["page_dir"]))]
    csv_path = _write_csv(tmp_path / "broken.csv", rows)
    out = tmp_path / "broken.parquet"
    with caplog.at_level(logging.WARNING, logger="fyc.data.annotate"):
        result = annotate_motion(csv_path, out, CFG, progress=False, batch_size=3)
    assert result.processed == 2
    assert result.skipped == {"missing_file": 1, "decode_error": 3, "too_few_frames": 1, "bad_row": 1}
    assert "truncated" in caplog.text and "garbage" in caplog.text
    status = {r["videoid"]: r["status"] for r in read_sidecar(out).to_pylist()}
    assert status == {good[0]["videoid"]: "ok", good[1]["videoid"]: "ok", "missing": "missing_file",
                      "truncated": "decode_error", "garbage": "decode_error", "empty": "decode_error",
                      "short": "too_few_frames"}
    again = annotate_motion(csv_path, out, CFG, progress=False)
    assert again.processed == 0 and again.done == 7  # failures are not retried unless asked
    # The dataset skips rows with no ok label, counted as no_label.
    ds = WebVidDataset(csv_path, resolution=32, num_frames=8, motion_labels=out)
    ids = [ds[i]["videoid"] for i in range(len(ds))]
    assert ids == [good[0]["videoid"]] + [good[1]["videoid"]] * 7
    assert ds.skipped["no_label"] > 0 and ds.skipped["bad_row"] > 0


def test_sidecar_must_match_the_dataset(toy, tmp_path):
    out = tmp_path / "move.motion.parquet"
    annotate_motion(toy / "move.csv", out, CFG, progress=False, limit=1)
    with pytest.raises(ValueError, match="num_frames=8 in the sidecar"):
        WebVidDataset(toy / "move.csv", resolution=32, num_frames=4, motion_labels=out)
    with pytest.raises(FileNotFoundError, match="nowhere.parquet"):
        WebVidDataset(toy / "move.csv", resolution=32, num_frames=8, motion_labels=tmp_path / "nowhere.parquet")
    with pytest.raises(ValueError, match="motion_labels"):
        WebVidDataset(toy / "move.csv", motion_labels="optical")
    # Partial sidecar (limit=1, not merged): only the labelled video is served.
    ds = WebVidDataset(toy / "move.csv", resolution=32, num_frames=8, motion_labels=out)
    assert {ds[i]["videoid"] for i in range(len(ds))} == {_rows(toy / "move.csv")[0]["videoid"]}


def test_raft_random_weights_local_file_and_loud_fallback(tmp_path, capsys):
    from torchvision.models.optical_flow import raft_small

    from fyc.motion import FlowEstimator

    clip = np.random.default_rng(0).integers(0, 255, (3, 128, 128, 3), dtype=np.uint8)
    folder = tmp_path / "p"
    write_video(folder / "noise.mp4", clip, fps=8)
    csv_path = _write_csv(tmp_path / "one.csv", [{"videoid": "noise", "page_dir": "p", "name": "noise"}])
    weights = tmp_path / "raft_small.pth"
    torch.manual_seed(0)
    torch.save(raft_small(weights=None).state_dict(), weights)
    cfg = AnnotateConfig(num_frames=3, frame_stride=1, flow="raft_small", weights=str(weights))
    result = annotate_motion(csv_path, tmp_path / "raft.parquet", cfg, progress=False)
    assert result.processed == 1 and result.backend == "raft_small"
    # Batched pairs (what annotation uses) give the same flow as the per-clip call.
    estimator = FlowEstimator("raft_small", weights=str(weights))
    frames = read_video(folder / "noise.mp4")
    assert torch.allclose(estimator.pairs(frames[:-1], frames[1:]), estimator(frames), atol=1e-4)

    missing = AnnotateConfig(num_frames=3, frame_stride=1, flow="raft_small", weights=str(tmp_path / "no.pth"))
    with pytest.raises(FileNotFoundError, match="no.pth"):
        annotate_motion(csv_path, tmp_path / "fail.parquet", missing, progress=False)
    missing.allow_fallback = True
    result = annotate_motion(csv_path, tmp_path / "fallback.parquet", missing, progress=False)
    assert result.backend == "dis" and "FALLING BACK" in capsys.readouterr().err
    assert read_sidecar(tmp_path / "fallback.parquet")["flow_backend"].to_pylist() == ["dis"]


def test_cli_writes_sidecar(toy, tmp_path, capsys):
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import annotate_motion as cli
    finally:
        sys.path.pop(0)
    out = tmp_path / "cli.parquet"
    assert cli.main(["--csv", str(toy / "slow.csv"), "--out", str(out), "--flow", "farneback", "--frames", "8",
                     "--stride", "2", "--workers", "0", "--no-progress", "--shard", "0/1"]) == 0
    assert "3 labelled with farneback" in capsys.readouterr().out
    assert read_sidecar(out).num_rows == 3 and read_sidecar_metadata(out)["frame_stride"] == 2
    with pytest.raises(ValueError, match="'page_dir'"):  # missing column: fails at start, naming it
        cli.main(["--csv", str(_write_csv(tmp_path / "flat.csv", [{"videoid": "a", "name": "b"}],
                                          ("videoid", "name"))), "--out", str(tmp_path / "x.parquet"),
                  "--flow", "farneback", "--workers", "0", "--no-progress"])


def test_skips_in_dataloader_workers_are_visible_in_the_main_process(toy, tmp_path):
    good = _rows(toy / "move.csv")
    rows = [dict(good[0], page_dir=str(toy / good[0]["page_dir"]))]
    rows += [{"videoid": f"gone{k}", "page_dir": str(tmp_path), "name": "x"} for k in range(3)]
    text_rows = _write_csv(tmp_path / "w.csv", rows)
    with open(text_rows, "a") as f:
        f.write("broken,row,with,too,many,fields\n")  # malformed: counted once at construction
    ds = WebVidDataset(text_rows, resolution=32, num_frames=4, motion_labels=None)
    loader = torch.utils.data.DataLoader(ds, batch_size=2, num_workers=2)
    assert [v for b in loader for v in b["videoid"]] == [good[0]["videoid"]] * 4  # gone* fall through to row 0
    assert not ds.skipped.get("missing_file")  # the workers counted, not this process...
    assert ds.skipped_all_processes == {"missing_file": 6, "bad_row": 1}  # ...but the totals reach it
