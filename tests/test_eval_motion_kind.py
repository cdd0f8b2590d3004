"""fyc.eval.motion_kind: the affine fit on exact flow fields, the prompt → kind mapping, and the classifier on the
true toy videos (research/motion_kind_oracle.py)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fyc.eval.motion_kind import (STILL, affine_flow_fit, classify_motion_kind, motion_kind_scores,
                                  prompted_kind)

ROOT = Path(__file__).resolve().parents[1]
SIZE = 32


def _disc(centre=(15.0, 17.0), radius=6.0) -> np.ndarray:
    ys, xs = np.mgrid[:SIZE, :SIZE]
    return (xs - centre[0]) ** 2 + (ys - centre[1]) ** 2 <= radius ** 2


def _affine_flow(v_per_pair, gradient, centre=(15.0, 17.0)) -> np.ndarray:
    """Exact flow ``v_t + A (p - centre)`` over the whole frame, float ``(len(v_per_pair), 2, SIZE, SIZE)``."""
    ys, xs = np.mgrid[:SIZE, :SIZE]
    p = np.stack([xs - centre[0], ys - centre[1]]).astype(np.float64)  # (2, H, W)
    gradient = np.asarray(gradient, np.float64)
    return np.stack([np.asarray(v, np.float64)[:, None, None] + np.einsum("ij,jhw->ihw", gradient, p)
                     for v in v_per_pair])


def test_affine_fit_recovers_an_exact_field():
    mask = _disc()
    gradient = [[0.02, -0.05], [0.05, 0.03]]
    v, fitted, radius = affine_flow_fit(_affine_flow([(1.0, -0.5), (0.2, 0.3)], gradient), mask)
    np.testing.assert_allclose(fitted, [gradient, gradient], atol=1e-9)
    # The fit is about the mask's centroid (about the disc centre, up to rasterisation).
    np.testing.assert_allclose(v, [(1.0, -0.5), (0.2, 0.3)], atol=0.05)
    assert radius == pytest.approx(6.0, rel=0.1)


@pytest.mark.parametrize("kind,v_per_pair,gradient", [
    ("translate", [(1.0, 0.0)] * 5, np.zeros((2, 2))),
    ("translate", [(0.0, -0.6)] * 5, np.zeros((2, 2))),
    ("rotate", [(0.0, 0.0)] * 5, [[0.0, -0.1], [0.1, 0.0]]),   # clockwise on screen
    ("rotate", [(0.0, 0.0)] * 5, [[0.0, 0.1], [-0.1, 0.0]]),   # counterclockwise
    ("grow", [(0.0, 0.0)] * 5, [[0.06, 0.0], [0.0, 0.06]]),
    ("shrink", [(0.0, 0.0)] * 5, [[-0.06, 0.0], [0.0, -0.06]]),
    ("shake", [(1.0, 0.0), (-1.0, 0.0), (1.0, 0.0), (-1.0, 0.0), (1.0, 0.0), (-1.0, 0.0)], np.zeros((2, 2))),
    (STILL, [(0.0, 0.0)] * 5, np.zeros((2, 2))),
    (STILL, [(0.05, 0.0)] * 5, np.zeros((2, 2))),  # below the noise floor
])
def test_classifier_on_exact_fields(kind, v_per_pair, gradient):
    flow = _affine_flow(v_per_pair, gradient)
    assert classify_motion_kind(flow, _disc()) == kind
    scores = motion_kind_scores(flow, _disc())
    assert set(scores) == {"translate", "rotate", "grow", "shrink", "shake"} and min(scores.values()) >= 0


def test_scores_are_edge_speeds_in_px_per_pair():
    """A disc of radius 6 growing at rate 0.05/pair moves its edge ~0.3 px/pair; a 1 px/pair drift scores 1."""
    mask = _disc(radius=6.0)
    grow = motion_kind_scores(_affine_flow([(0.0, 0.0)] * 4, [[0.05, 0.0], [0.0, 0.05]]), mask, dilate_px=0)
    assert grow["grow"] == pytest.approx(0.3, rel=0.1) and grow["translate"] < 1e-6
    drift = motion_kind_scores(_affine_flow([(0.6, 0.8)] * 4, np.zeros((2, 2))), mask, dilate_px=0)
    assert drift["translate"] == pytest.approx(1.0) and drift["shake"] == pytest.approx(0.0, abs=1e-9)


def test_thin_or_empty_regions_are_errors():
    flow = np.zeros((2, 2, SIZE, SIZE))
    line = np.zeros((SIZE, SIZE), bool)
    line[10, 5:20] = True
    with pytest.raises(ValueError, match="too thin for an affine fit"):
        affine_flow_fit(flow, line)
    with pytest.raises(ValueError, match="region mask is empty"):
        classify_motion_kind(flow, np.zeros((SIZE, SIZE), bool))


@pytest.mark.parametrize("prompt,kind", [
    ("move left", "translate"), ("Move up", "translate"), ("spin", "rotate"), ("grow", "grow"),
    ("shrink", "shrink"), ("shake", "shake"), ("wag tail", None), ("", None), ("grow, shrink", None),
    ("move left and spin", None),
])
def test_prompted_kind(prompt, kind):
    assert prompted_kind(prompt) == kind


def test_summary_motion_kind_accuracy_over_rows_that_name_a_kind():
    from fyc.eval.score import summarize

    rows = [{"kind_correct": 1.0}, {"kind_correct": 0.0}, {"kind_correct": 1.0}, {"i1_mse": 2.0}]
    summary = summarize(rows)
    assert summary["num_kind"] == 3 and summary["motion_kind_accuracy"] == pytest.approx(2 / 3)
    assert "motion_kind_accuracy" not in summarize([{"i1_mse": 2.0}])


def test_oracle_script_reads_the_true_toy_videos(tmp_path):
    """On true toy videos at the world's own 64 px the classifier names the rendered kind (the script's
    confusion matrix); a classifier that guessed one kind would score 0.2."""
    out = tmp_path / "oracle.md"
    proc = subprocess.run([sys.executable, str(ROOT / "research" / "motion_kind_oracle.py"), "--per-kind", "2",
                           "--size", "64", "--out", str(out)], capture_output=True, text=True, cwd=tmp_path,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    table = out.read_text()
    assert "| true \\ measured |" in table and table.count("\n| ") == 6  # header + 5 kinds
    accuracy = float(table.split("overall accuracy ")[1].split()[0])
    assert accuracy >= 0.9, table
