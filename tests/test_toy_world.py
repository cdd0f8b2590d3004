"""The toy world's truth must match the pixels of the written (and decoded) videos."""
from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from fyc.toy.world import (COLOURS, DIRECTIONS, MOTION_KINDS, TOY_VOCABULARY, ToyWorldConfig, mask_to_rle,
                                read_toy_truth, render_toy_video, rle_to_mask, write_toy_webvid)
from fyc.data.video_io import read_video, video_info

RES, FRAMES = 64, 16


def _write(root, split, count, first_seed=0, **overrides):
    config = ToyWorldConfig(resolution=RES, num_frames=FRAMES, **overrides)
    csv_path = write_toy_webvid(root, split, count, config, first_seed=first_seed, progress=False)
    with open(csv_path, newline="") as f:
        rows = list(csv.DictReader(f))
    return config, csv_path, rows


def _load(root, row):
    """Decoded frames uint8 (F, H, W, 3) and the truth sidecar of one CSV row."""
    frames = read_video(root / row["contentUrl"])
    truth = read_toy_truth(root / row["page_dir"] / f"{row['videoid']}.json")
    return frames, truth


def _object_pixels(frame: np.ndarray, obj: dict, shading: float, threshold: float = 35.0) -> np.ndarray:
    """bool (H, W): pixels inside the object's swept box whose colour is one of the object's shades."""
    x0, y0, x1, y1 = obj["swept_bbox"]
    x0, y0 = max(int(np.floor(x0)), 0), max(int(np.floor(y0)), 0)
    x1, y1 = min(int(np.ceil(x1)), frame.shape[1]), min(int(np.ceil(y1)), frame.shape[0])
    crop = frame[y0:y1, x0:x1].astype(np.float64)
    rgb = np.array(obj["rgb"], dtype=np.float64)
    shade = np.clip(crop @ rgb / (rgb @ rgb), 1 - shading, 1.0)
    close = np.linalg.norm(crop - shade[..., None] * rgb, axis=-1) < threshold
    out = np.zeros(frame.shape[:2], dtype=bool)
    out[y0:y1, x0:x1] = close
    return out


def _centroids(frames, obj, shading) -> np.ndarray:
    """(F, 2) colour centroids (x, y) in continuous pixel coordinates."""
    out = []
    for frame in frames:
        ys, xs = np.nonzero(_object_pixels(frame, obj, shading))
        out.append((xs.mean() + 0.5, ys.mean() + 0.5))
    return np.array(out)


def _moving(truth) -> dict:
    return next(o for o in truth["objects"] if o["moving"])


@pytest.fixture(scope="module")
def translate_split(tmp_path_factory):
    root = tmp_path_factory.mktemp("toy_translate")
    config, _, rows = _write(root, "train", 6, motion_kinds=("translate",))
    return root, config, rows


@pytest.fixture(scope="module")
def mixed_split(tmp_path_factory):
    root = tmp_path_factory.mktemp("toy_mixed")
    config, _, rows = _write(root, "train", 10, first_seed=500, max_moving=2)
    return root, config, rows


def test_translate_centroid_moves_by_speed_times_direction(translate_split):
    root, config, rows = translate_split
    directions = set()
    for row in rows:
        frames, truth = _load(root, row)
        obj = _moving(truth)
        assert obj["kind"] == "translate" and row["short_prompt"] == f"move {obj['direction']}"
        directions.add(obj["direction"])
        expected = obj["speed_px_per_frame"] * np.array(DIRECTIONS[obj["direction"]], dtype=np.float64)
        steps = np.diff(_centroids(frames, obj, config.object_shading), axis=0)  # (F-1, 2)
        per_frame_error = np.linalg.norm(steps - expected, axis=1).mean()
        assert per_frame_error < 0.3, (row["videoid"], steps, expected)
        # The truth's own trajectory says the same.
        assert np.allclose(np.diff(np.array(obj["centers"]), axis=0), expected, atol=1e-3)
    assert len(directions) >= 2  # the seeds cover several directions


def test_background_and_still_objects_do_not_change(mixed_split):
    root, config, rows = mixed_split
    yy, xx = np.mgrid[:RES, :RES] + 0.5
    for row in rows:
        frames, truth = _load(root, row)
        moving_area = np.zeros((RES, RES), dtype=bool)
        for obj in truth["objects"]:
            if obj["moving"]:
                for (cx, cy), size in zip(obj["centers"], obj["sizes"]):
                    moving_area |= np.hypot(xx - cx, yy - cy) <= size + 1.5
        static = ~moving_area
        change = np.abs(frames.astype(np.int16) - frames[:1].astype(np.int16)).max(axis=(0, 3))
        assert change[static].max() <= 3, row["videoid"]
        # The moving objects do change pixels, and the still ones are really there (in the static area).
        assert change[moving_area].max() > 20
        for obj in truth["objects"]:
            if not obj["moving"]:
                assert obj["speed_px_per_frame"] == 0 and obj["kind"] is None
                assert (obj["mask"] & static).sum() == obj["mask"].sum() > 0


@pytest.mark.parametrize("kind", ["grow", "shrink", "rotate", "shake"])
def test_other_motion_kinds_match_the_video(tmp_path, kind):
    config, _, rows = _write(tmp_path, kind, 2, first_seed=7, motion_kinds=(kind,))
    for row in rows:
        frames, truth = _load(tmp_path, row)
        obj = _moving(truth)
        assert obj["kind"] == kind
        areas = np.array([_object_pixels(f, obj, config.object_shading).sum() for f in frames])
        centroids = _centroids(frames, obj, config.object_shading)
        if kind == "grow":
            assert areas[-1] > 1.5 * areas[0] and np.all(np.diff(areas) >= -2)
        elif kind == "shrink":
            assert areas[-1] < areas[0] / 1.5 and np.all(np.diff(areas) <= 2)
        elif kind == "rotate":
            assert obj["shape"] in ("square", "triangle") and row["short_prompt"] == "spin"
            assert np.ptp(areas) < 0.15 * areas.mean()  # same object, turning in place
            assert np.linalg.norm(centroids - centroids[0], axis=1).max() < 0.6
            first, last = _object_pixels(frames[0], obj, 0.3), _object_pixels(frames[4], obj, 0.3)
            assert (first & last).sum() / (first | last).sum() < 0.9  # but its pixels change
        else:  # shake: horizontal, mean |dx| per frame = speed
            steps = np.diff(centroids, axis=0)
            assert abs(np.abs(steps[:, 0]).mean() - obj["speed_px_per_frame"]) < 0.3
            assert np.abs(steps[:, 1]).max() < 0.3


def test_objects_stay_inside_and_apart():
    config = ToyWorldConfig(max_objects=3, min_objects=3, speed_range=(3.0, 3.0))
    for seed in range(12):
        video = render_toy_video(seed, config)
        boxes = [np.array(o.swept_bbox) for o in video.objects]
        for o, box in zip(video.objects, boxes):
            assert box[0] >= 0 and box[1] >= 0 and box[2] <= RES and box[3] <= RES
            assert o.mask.any()
        for i in range(len(boxes)):
            for j in range(i + 1, len(boxes)):
                a, b = boxes[i], boxes[j]
                assert a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1]


def test_same_seed_same_video_regardless_of_split_size(tmp_path):
    _, _, rows_small = _write(tmp_path / "a", "train", 2, first_seed=40)
    _, _, rows_big = _write(tmp_path / "b", "train", 4, first_seed=40)
    assert rows_small == rows_big[:2]
    for row in rows_small:
        frames_a, _ = _load(tmp_path / "a", row)
        frames_b, _ = _load(tmp_path / "b", row)
        assert np.array_equal(frames_a, frames_b)
        sidecar = f"{row['page_dir']}/{row['videoid']}.json"
        assert (tmp_path / "a" / sidecar).read_text() == (tmp_path / "b" / sidecar).read_text()
    one, two = render_toy_video(41), render_toy_video(41)
    assert np.array_equal(one.frames, two.frames) and one.caption == two.caption
    assert not np.array_equal(one.frames, render_toy_video(42).frames)


def test_csv_columns_paths_and_sidecars(translate_split):
    root, config, rows = translate_split
    with open(root / "train.csv", newline="") as f:
        assert next(csv.reader(f)) == ["videoid", "contentUrl", "duration", "page_dir", "name", "short_prompt"]
    assert len({r["videoid"] for r in rows}) == len(rows)
    for row in rows:
        mp4 = root / row["page_dir"] / f"{row['videoid']}.mp4"
        assert row["contentUrl"] == f"{row['page_dir']}/{row['videoid']}.mp4" and mp4.is_file()
        assert row["duration"] == "PT00H00M02S"  # 16 frames at 8 fps
        assert video_info(mp4) == (FRAMES, 8.0, RES, RES)
        truth = json.loads((root / row["page_dir"] / f"{row['videoid']}.json").read_text())
        assert truth["caption"] == row["name"] and truth["short_prompt"] == row["short_prompt"]
        png = cv2.imread(str(root / row["page_dir"] / truth["motion_mask_png"]), cv2.IMREAD_GRAYSCALE)
        assert set(np.unique(png)) <= {0, 255}
        assert np.array_equal(png > 0, read_toy_truth(root / row["page_dir"] / f"{row['videoid']}.json")["motion_mask"])
    saved = json.loads((root / "train_config.json").read_text())
    assert saved["first_seed"] == 0 and saved["resolution"] == RES


def test_text_uses_only_the_vocabulary():
    config = ToyWorldConfig(max_moving=2, max_objects=3)
    kinds, prompts = set(), set()
    for seed in range(40):
        video = render_toy_video(seed, config)
        for text in (video.caption, video.short_prompt):
            assert text and set(text.split()) <= set(TOY_VOCABULARY), text
        assert video.short_prompt == " and ".join(o.short_prompt for o in video.moving_objects)
        for obj in video.objects:
            assert obj.name == f"{obj.colour} {obj.shape}" and obj.name in video.caption
        # the caption names each mover's motion in its prompt's words (a text-to-video base learns it from there)
        phrases = video.caption.split(" on a ")[0].split(" and ")
        assert [p.split(maxsplit=1)[1] for p in phrases] == [
            f"{o.name} {o.short_prompt}" if o.moving else o.name for o in video.objects], video.caption
        assert len({o.colour for o in video.objects}) == len(video.objects)
        kinds.update(o.kind for o in video.moving_objects)
        prompts.add(video.short_prompt)
    assert kinds == set(MOTION_KINDS)
    assert any(" and " in p for p in prompts)  # two moving objects
    assert set(COLOURS) <= set(TOY_VOCABULARY)


def test_motion_mask_is_union_of_moving_masks():
    video = render_toy_video(3, ToyWorldConfig(min_moving=2, max_moving=2, min_objects=3))
    union = np.zeros_like(video.motion_mask)
    for obj in video.moving_objects:
        union |= obj.mask
    assert len(video.moving_objects) == 2 and np.array_equal(union, video.motion_mask) and union.any()


def test_rle_round_trip():
    rng = np.random.default_rng(0)
    for mask in (rng.random((7, 9)) > 0.5, np.ones((4, 4), bool), np.zeros((3, 5), bool)):
        assert np.array_equal(rle_to_mask(mask_to_rle(mask)), mask)


def test_cli_writes_disjoint_splits(tmp_path):
    script = Path(__file__).resolve().parents[1] / "scripts" / "make_toy_webvid.py"
    subprocess.run([sys.executable, str(script), "--out", str(tmp_path), "--train", "2", "--val", "1", "--seed", "3",
                    "--resolution", "32", "--frames", "8", "--workers", "1", "--speed-min", "0.5", "--speed-max", "1"],
                   check=True, capture_output=True)
    ids = {}
    for split in ("train", "val"):
        with open(tmp_path / f"{split}.csv", newline="") as f:
            ids[split] = {row["videoid"] for row in csv.DictReader(f)}
    assert len(ids["train"]) == 2 and len(ids["val"]) == 1 and not ids["train"] & ids["val"]
    assert video_info(next((tmp_path / "val_000").glob("*.mp4")))[:1] == (8,)


def _fits_every_direction(obj, config) -> bool:
    """Whether the object's frame-0 disc, moved ``speed x (F-1)`` px in any of the config's directions, stays in the
    frame: what balanced placement promises, so the start position says nothing about the direction."""
    start, size = obj.centers[0], obj.sizes[0]
    path = obj.speed_px_per_frame * (config.num_frames - 1)
    for d in config.directions:
        end = start + path * np.array(DIRECTIONS[d])
        lo, hi = np.minimum(start, end) - size, np.maximum(start, end) + size
        if (lo < config.margin_px - 1e-6).any() or (hi > config.resolution - config.margin_px + 1e-6).any():
            return False
    return True


def test_balanced_translation_leaves_room_for_every_direction():
    kwargs = dict(resolution=RES, num_frames=FRAMES, motion_kinds=("translate",), speed_range=(1.0, 3.0))
    fits = {}
    for balanced in (False, True):
        config = ToyWorldConfig(balanced_translation=balanced, **kwargs)
        movers = [o for seed in range(24) for o in render_toy_video(seed, config).objects if o.moving]
        fits[balanced] = [_fits_every_direction(o, config) for o in movers]
        for o in movers:  # the truth's swept box is the true path's, not the placement's
            x0, y0, x1, y1 = o.swept_bbox
            assert x1 - x0 == pytest.approx(2 * o.sizes[0] + abs(o.centers[-1][0] - o.centers[0][0]))
            assert y1 - y0 == pytest.approx(2 * o.sizes[0] + abs(o.centers[-1][1] - o.centers[0][1]))
    assert all(fits[True])
    assert not all(fits[False])  # the default world's start position does hint at the direction
    # Opposite directions share an axis, so a balanced path is at most (room - 2 size) / 2 long.
    config = ToyWorldConfig(balanced_translation=True, **kwargs)
    video = render_toy_video(3, config)
    mover = next(o for o in video.objects if o.moving)
    room = RES - 2 * config.margin_px
    assert mover.speed_px_per_frame * (FRAMES - 1) <= (room - 2 * mover.sizes[0]) / 2 + 1e-9
