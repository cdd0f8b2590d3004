"""research/make_figures.py: frame strips / GIFs of a manifest's videos and the strength-sweep plot."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
from PIL import Image

from conftest import ROOT
from fyc.research.figures import outline, strength_sweep_plot, sweep_groups


def test_outline_paints_only_the_mask_border():
    frame = np.zeros((8, 8, 3), np.uint8)
    mask = np.zeros((8, 8), bool)
    mask[2:6, 2:6] = True
    out = outline(frame, mask)
    painted = out.any(-1)
    assert painted[2, 2] and painted[5, 3] and not painted[3, 3] and not painted[0, 0]
    assert painted.sum() == 12  # the 4x4 square's border


def test_frames_command_writes_png_and_gif(toy_benchmark, tmp_path):
    out = tmp_path / "fig" / "toy"
    proc = subprocess.run([sys.executable, "research/make_figures.py", "frames", "--manifest", str(toy_benchmark),
                           "--items", "2", "--frames", "0", "3", "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    png = Image.open(out.with_suffix(".png"))
    assert png.size[1] == 2 * 32 * 3 + 2  # two rows of 3x-upscaled 32-px frames and one gap
    assert Image.open(out.with_suffix(".gif")).n_frames == 4
    assert f"wrote: {out.with_suffix('.gif')}" in proc.stdout


def test_sweep_plot_groups_rows_by_item(tmp_path):
    rows = [{"id": f"a@x{f}", "strength": str(0.1 * f), "in_region_magnitude": str(0.2 * f)} for f in (0.5, 1, 2)]
    rows += [{"id": "b@x1", "strength": "0.3", "in_region_magnitude": "nan"}, {"id": "c", "strength": "1",
                                                                               "in_region_magnitude": "1"}]
    groups = sweep_groups(rows)
    assert list(groups) == ["a"] and [x for x, _ in groups["a"]] == [0.05, 0.1, 0.2]
    path = strength_sweep_plot({"model": rows}, tmp_path / "sweep.png")
    assert Image.open(path).size[0] > 100
