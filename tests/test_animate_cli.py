"""scripts/animate.py on a toy pipeline folder: writes playable videos (read back with decord), reports the
segmenter, parses several regions, and turns bad clicks into a clear usage error."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fyc.data.video_io import read_video, video_info

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
import animate  # noqa: E402


@pytest.fixture(scope="module")
def image_path(tmp_path_factory) -> Path:
    """A 32x32 image with a red square (x, y in [10, 19] x [8, 17]) and a blue one ([22, 29] x [22, 29])."""
    image = np.full((32, 32, 3), 40, np.uint8)
    image[8:18, 10:20] = (220, 30, 30)
    image[22:30, 22:30] = (30, 30, 220)
    path = tmp_path_factory.mktemp("img") / "image.png"
    Image.fromarray(image).save(path)
    return path


def test_cli_writes_playable_mp4_side_by_side_and_gif(toy_pipeline_dir, image_path, tmp_path):
    out = tmp_path / "video.mp4"
    proc = subprocess.run(
        [sys.executable, "scripts/animate.py", "--model", str(toy_pipeline_dir), "--image", str(image_path),
         "--click", "14,12", "--click", "15,13", "--negative-click", "2,2", "--prompt", "move left",
         "--strength", "2", "--steps", "2", "--frames", "4", "--out", str(out), "--side-by-side", "--gif"],
        cwd=ROOT, capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "mask: 100 px in 1 region(s)" in proc.stdout
    assert "segmenter: region-growing fallback" in proc.stdout and "fallback" in proc.stdout
    assert f"video: {out}" in proc.stdout
    frames = read_video(out)
    assert frames.shape == (4, 32, 32, 3) and frames.dtype == np.uint8
    assert video_info(out)[0] == 4
    sbs = read_video(tmp_path / "video_side_by_side.mp4")
    assert sbs.shape == (4, 32, 64, 3)
    # The left half is the input with a red tint on the clicked object only.
    assert sbs[0, 12, 14, 0] > 200 and abs(int(sbs[0, 2, 2, 0]) - 40) < 12
    gif = Image.open(tmp_path / "video.gif")
    assert gif.n_frames == 4


def test_cli_several_regions_and_errors(toy_pipeline_dir, image_path, tmp_path, capsys):
    out = tmp_path / "two.mp4"
    animate.main(["--model", str(toy_pipeline_dir), "--image", str(image_path), "--region", "14,12|move left|2",
                  "--region", "25,25;!2,2|move up", "--strength", "3", "--steps", "1", "--frames", "4",
                  "--guidance-interval", "500", "1000", "--out", str(out)])
    assert "mask: 100, 64 px in 2 region(s)" in capsys.readouterr().out
    assert read_video(out).shape == (4, 32, 32, 3)
    region = animate.parse_region("1,2;!3,4;5,6|wag tail|8")
    assert region.clicks == [(1, 2), (5, 6)] and region.negative_clicks == [(3, 4)]
    assert region.prompt == "wag tail" and region.strength == 8
    with pytest.raises(SystemExit):
        animate.main(["--model", str(toy_pipeline_dir), "--image", str(image_path), "--click", "40,3",
                      "--prompt", "move left", "--steps", "1", "--frames", "4", "--out", str(tmp_path / "x.mp4")])
    assert "clicks: (40, 3) is outside the image (32x32); x must be in [0, 31]" in capsys.readouterr().err
    assert not (tmp_path / "x.mp4").exists()
    with pytest.raises(SystemExit):
        animate.main(["--model", str(toy_pipeline_dir), "--image", str(image_path), "--click", "14,12",
                      "--prompt", "move left", "--steps", "1", "--frames", "4", "--guidance-interval", "600", "500",
                      "--out", str(tmp_path / "x.mp4")])
    assert "guidance_interval must be (t_min, t_max)" in capsys.readouterr().err
