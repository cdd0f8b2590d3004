"""fyc.eval.regional: leakage, allowed-region modes, strength Spearman — on exact synthetic flow, on rendered
videos with known motion (helpers from tests/test_motion.py), and on the true toy benchmark videos."""
from __future__ import annotations

import numpy as np
import pytest

from fyc.eval.masks import region_per_frame
from fyc.eval.regional import (REGION_MODES, RegionalMotionMetrics, allowed_per_pair, allowed_region,
                               motion_leakage, regional_motion_metrics, spearman_or_reason, strength_spearman,
                               swept_region, tracked_region, visible_motion)
from fyc.motion import FlowEstimator
from test_motion import striped_background, translating_disc


def _square(size: int = 32, box=(8, 8, 14, 14)) -> np.ndarray:
    mask = np.zeros((size, size), bool)
    x0, y0, x1, y1 = box
    mask[y0:y1, x0:x1] = True
    return mask


# ----------------------------------------------------------------------------------------- exact flow

def test_leakage_on_exact_motion_fields():
    region = _square()
    motion = np.zeros((3, 32, 32))
    motion[:, region] = 2.0  # only the region moves
    assert motion_leakage(motion, region) == (0.0, False)
    motion = np.zeros((3, 32, 32))
    motion[:, ~region] = 1.5  # only the background moves
    assert motion_leakage(motion, region) == (1.0, False)
    motion[:, region] = 3.0  # both: share of the motion outside
    outside, inside = 1.5 * (~region).sum(), 3.0 * region.sum()
    assert motion_leakage(motion, region)[0] == pytest.approx(outside / (outside + inside), rel=1e-12)
    assert motion_leakage(np.zeros((3, 32, 32)), region) == (0.0, True)


def test_visible_motion_needs_flow_above_the_floor_and_a_changed_pixel():
    video = np.zeros((3, 32, 32, 3), np.uint8)
    video[1:, :, :16] = 50  # the left half changes between frames 0 and 1, nothing changes afterwards
    flow = np.full((2, 2, 32, 32), 1.0)
    flow[:, :, :8] = 0.05  # |flow| 0.07: below the 0.1 px floor
    motion = visible_motion(video, flow, min_magnitude=0.1, change_threshold=4)
    assert (motion[1] == 0).all()  # no pixel changed between frames 1 and 2: flow there is not motion
    assert (motion[0, :8] == 0).all() and np.allclose(motion[0, 8:, :16], np.sqrt(2))
    assert (motion[0, :, 16:] == 0).all()


def test_swept_and_tracked_regions_follow_an_exact_translation():
    region = _square()
    flow = np.zeros((4, 2, 32, 32))
    flow[:, 0] = 2.0  # everything moves 2 px right per pair (the region's mean flow is (2, 0))
    expected = np.zeros_like(region)
    for t in range(5):
        expected |= np.roll(region, 2 * t, axis=1)
    np.testing.assert_array_equal(swept_region(flow, region), expected)
    np.testing.assert_array_equal(tracked_region(flow, region), expected)
    np.testing.assert_array_equal(allowed_region(flow, region, "first_frame"), region)
    # Motion outside the region never enlarges it.
    flow = np.zeros((4, 2, 32, 32))
    flow[:, 1][:, ~region] = 3.0
    for mode in ("swept", "tracked"):
        np.testing.assert_array_equal(allowed_region(flow, region, mode), region)
    grown = allowed_region(flow, region, "swept", dilate_px=1)
    assert grown.sum() > region.sum() and grown[region].all()


def test_region_errors_name_the_value():
    video = np.zeros((3, 32, 32, 3), np.uint8)
    flow = np.zeros((2, 2, 32, 32))
    with pytest.raises(ValueError, match=r"region must be one of \('first_frame', 'swept', 'tracked'\), got 'box'"):
        regional_motion_metrics(video, _square(), None, flow=flow, region="box")
    with pytest.raises(ValueError, match="region mask is empty"):
        regional_motion_metrics(video, np.zeros((32, 32), bool), None, flow=flow, region="swept")
    with pytest.raises(ValueError, match=r"region mask has shape \(16, 16\), frames are \(32, 32\)"):
        regional_motion_metrics(video, np.ones((16, 16), bool), None, flow=flow)


# ------------------------------------------------------------------------------- videos with known motion

@pytest.fixture(scope="module")
def flow_estimator():
    """DIS: Farneback smears motion ~4 px past an object's edge on these small frames (leakage 0.2 even for a
    region covering the object's whole path at dilate_px=2), DIS ~1 px."""
    return FlowEstimator("dis")


def test_only_the_region_moves_gives_leakage_near_zero(flow_estimator):
    frames, cover = translating_disc(48, 6.0, (1.5, 0.0), num_frames=6)
    flow = flow_estimator(frames)
    first = cover[0]
    by_mode = {mode: regional_motion_metrics(frames, first, None, dilate_px=2, flow=flow, region=mode)
               for mode in REGION_MODES}
    # The first-frame mask alone calls the disc's own motion leakage; swept / tracked regions follow it.
    assert by_mode["first_frame"]["motion_leakage"] > 0.2
    assert by_mode["swept"]["motion_leakage"] < 0.05 and by_mode["tracked"]["motion_leakage"] < 0.05
    assert by_mode["tracked"]["background_stillness"] < by_mode["first_frame"]["background_stillness"]
    # Where the object is: the followed region reads the disc's speed, the first-frame mask less (it leaves it).
    assert by_mode["tracked"]["object_speed"] == pytest.approx(1.5, rel=0.15)
    assert by_mode["first_frame"]["object_speed"] < by_mode["tracked"]["object_speed"]
    assert by_mode["tracked"]["direction_dx"] > 1.0 and abs(by_mode["tracked"]["direction_dy"]) < 0.2


def test_only_the_background_moves_gives_leakage_near_one(flow_estimator):
    size, radius = 48, 6.0
    yy, xx = np.mgrid[0:size, 0:size] + 0.5
    disc = np.hypot(xx - size / 2, yy - size / 2) <= radius
    frames = []
    for t in range(6):
        frame = striped_background(size, shift=(1.5 * t, 0.0))
        frame[disc] = (0.9, 0.8, 0.2)  # a still object on a panning background
        frames.append(frame)
    frames = np.round(np.stack(frames) * 255).astype(np.uint8)
    flow = flow_estimator(frames)
    for mode in REGION_MODES:
        metrics = regional_motion_metrics(frames, disc, None, dilate_px=1, flow=flow, region=mode)
        assert metrics["motion_leakage"] > 0.9, mode
        assert metrics["motion_precision"] < 0.2  # moved boxes cover the whole frame


def test_strength_spearman_on_a_synthetic_sweep(flow_estimator):
    speeds = [0.5, 1.0, 1.5, 2.0, 2.5]
    videos, masks = [], []
    for speed in speeds:
        frames, cover = translating_disc(48, 6.0, (speed, 0.0), num_frames=5)
        videos.append(frames)
        masks.append(cover[0])
    metric = RegionalMotionMetrics(flow_estimator, dilate_px=2)
    metric.update(videos[:2], masks[:2], requested_strengths=speeds[:2], directions=["right"] * 2)
    metric.update(videos[2:], masks[2:], requested_strengths=speeds[2:], directions=["right"] * 3)
    result = metric.compute()
    assert result["strength_spearman"] == pytest.approx(1.0)
    assert result["direction_accuracy"] == 1.0 and result["motion_leakage"] < 0.1
    # A model that ignores the strength, one that inverts it, and a non-sweep.
    assert strength_spearman(speeds, [1.0] * 5) == 0.0
    assert strength_spearman(speeds, speeds[::-1]) == pytest.approx(-1.0)
    assert strength_spearman([4, 8, 12, 16], [0.5, 0.4, 1.1, 1.3]) == pytest.approx(0.8)
    with pytest.raises(ValueError, match="all requested strengths are equal"):
        strength_spearman([8, 8, 8], [1, 2, 3])
    # The summary-level form reports why instead of raising.
    assert spearman_or_reason([8, 8, 8], [1, 2, 3]) == (None, "all 3 items request the same strength (8); no sweep")
    assert spearman_or_reason([1, 2], [1, 2])[0] is None and "needs >= 3" in spearman_or_reason([1, 2], [1, 2])[1]


# ------------------------------------------------------------------------------------- true toy videos

def test_true_toy_videos_under_each_region_mode(toy_benchmark):
    """The true videos move only the clicked object: the followed regions read leakage near 0, the first-frame mask
    counts the object's displacement; followed regions are supersets of the first-frame one, never more leakage."""
    from fyc.data.video_io import read_video
    from fyc.eval.manifest import load_manifest
    from fyc.eval.score import _region

    flow_estimator = FlowEstimator("dis")
    leakage = {mode: [] for mode in REGION_MODES}
    for item in load_manifest(toy_benchmark):
        video = read_video(item.reference_video)
        mask = _region(item, video.shape[1:3])
        flow = flow_estimator(video)
        values = {mode: regional_motion_metrics(video, mask, None, flow=flow, region=mode) for mode in REGION_MODES}
        for mode in REGION_MODES:
            leakage[mode].append(values[mode]["motion_leakage"])
        regions = region_per_frame(flow, mask, "tracked")
        assert allowed_per_pair(regions, 2).shape == (len(flow), *mask.shape)
    means = {mode: float(np.mean(v)) for mode, v in leakage.items()}
    print("true toy videos, mean leakage:", means)
    assert means["tracked"] < 0.05 and means["tracked"] < means["first_frame"]


def test_summary_direction_accuracy_and_cosine_over_directional_rows_only():
    from fyc.eval.score import summarize

    rows = [{"strength": 1.0, "realised_strength": 1.0, "direction_cosine": 1.0, "direction_correct": 1.0},
            {"strength": 2.0, "realised_strength": 2.0, "direction_cosine": 0.5, "direction_correct": 0.0},
            {"strength": 3.0, "realised_strength": 3.0}]  # "spin": no direction
    summary = summarize(rows)
    assert summary["num_directional"] == 2 and summary["direction_accuracy"] == 0.5
    assert summary["direction_accuracy_n"] == 2 and summary["direction_accuracy_se"] == pytest.approx(0.5)
    assert summary["direction_cosine"] == pytest.approx(0.75) and summary["strength_spearman"] == pytest.approx(1.0)
    assert summary["strength_spearman_n"] == 3 and summary["strength_spearman_of"] == "realised_strength"
