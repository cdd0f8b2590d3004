"""The whole loop on the toy world, through the documented commands: train → animate → evaluate."""
import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from conftest import ROOT
from fyc.data.video_io import read_video
from fyc.eval.manifest import load_manifest


def _run(args, timeout=900):
    proc = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{args}\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
    return proc.stdout


def _printed(output, key):
    return next(line.split(": ", 1)[1] for line in output.splitlines() if line.startswith(f"{key}: "))


@pytest.mark.slow
def test_train_animate_evaluate(toy_root, toy_components, toy_benchmark, tmp_path):
    train_out = _run(["train.py", "experiment=toy", f"paths.toy_root={toy_root}", "trainer.max_steps=30",
                      "trainer.val_check_interval=30", "callbacks.model_checkpoint.every_n_train_steps=30",
                      f"hydra.run.dir={tmp_path / 'train'}"])
    pipeline_dir = _printed(train_out, "pipeline_dir")
    item = load_manifest(toy_benchmark)[0]
    ys, xs = np.nonzero(np.asarray(Image.open(item.mask)) > 0)
    video = tmp_path / "animation.mp4"
    anim_out = _run(["scripts/animate.py", "--model", pipeline_dir, "--image", item.image,
                     "--click", f"{xs[0]},{ys[0]}", "--prompt", item.prompt, "--strength", str(item.strength),
                     "--frames", "8", "--steps", "4", "--out", str(video), "--side-by-side"])
    assert _printed(anim_out, "video") == str(video)
    frames = read_video(video)
    assert frames.shape == (8, 32, 32, 3)
    sbs = read_video(tmp_path / "animation_side_by_side.mp4")
    assert sbs.shape == (8, 32, 64, 3)
    eval_out = _run(["evaluate.py", "mode=all", f"manifest={toy_benchmark}", f"pipeline_dir={pipeline_dir}",
                     "generation.num_inference_steps=4", f"output_dir={tmp_path / 'eval'}",
                     f"hydra.run.dir={tmp_path / 'eval'}"])
    results = json.loads(open(_printed(eval_out, "results")).read())
    for key in ("i1_mse", "motion_leakage", "background_stillness", "realised_strength", "object_speed"):
        assert np.isfinite(results["metrics"][key]), key
