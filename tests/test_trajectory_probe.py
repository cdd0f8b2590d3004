"""The sampling-trajectory probe (fyc/research/trajectory.py, research/probe_trajectory.py) on the tiny toy pipeline."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

from fyc.eval.manifest import load_manifest, write_manifest
from fyc.research.trajectory import x0_trajectory
from fyc.pipelines import FollowYourClickPipeline

ROOT = Path(__file__).resolve().parents[1]


class FixedX0UNet(torch.nn.Module):
    """Predicts the v that makes the clean estimate exactly ``x0`` at every step:
    v = (sqrt(a) x_t - x0) / sqrt(1 - a)."""

    def __init__(self, real_unet, alphas_cumprod, x0):
        super().__init__()
        self.config, self.alphas_cumprod, self.x0 = real_unet.config, alphas_cumprod, x0
        self.device, self.dtype = real_unet.device, real_unet.dtype

    def forward(self, noisy, timestep, **kwargs):
        a = self.alphas_cumprod[int(timestep)]
        return SimpleNamespace(sample=(a.sqrt() * noisy - self.x0.expand_as(noisy)) / (1 - a).sqrt())


@pytest.fixture(scope="module")
def pipeline_and_item(toy_pipeline_dir, toy_benchmark):
    pipeline = FollowYourClickPipeline.from_pretrained(toy_pipeline_dir)
    pipeline.set_progress_bar_config(disable=True)
    item = load_manifest(toy_benchmark)[0]
    image = np.asarray(Image.open(item.image).convert("RGB"))
    mask = np.asarray(Image.open(item.mask).convert("L")) > 0
    return pipeline, image, mask


@pytest.mark.parametrize("guidance_scale", [1.0, 7.5])
def test_every_step_decodes_the_models_clean_estimate(pipeline_and_item, guidance_scale):
    """A model whose clean estimate is a fixed latent video: each step's decoded x0 is that video (with or without
    CFG, whose branches then agree), and the seeded run is reproducible."""
    pipeline, image, mask = pipeline_and_item
    real_unet = pipeline.unet
    h, w = image.shape[0] // pipeline.vae_scale_factor, image.shape[1] // pipeline.vae_scale_factor
    target = torch.rand(1, real_unet.config.latent_channels, 4, h, w, generator=torch.Generator().manual_seed(3)) - 0.5
    try:
        pipeline.unet = FixedX0UNet(real_unet, pipeline.scheduler.alphas_cumprod, target)
        pipeline.unet.config = SimpleNamespace(**{**real_unet.config, "first_frame_residual": False})
        steps, video = x0_trajectory(pipeline, image, mask, "move left", 1.0, num_frames=4, num_inference_steps=5,
                                     guidance_scale=guidance_scale, generator=torch.Generator().manual_seed(0))
    finally:
        pipeline.unet = real_unet
    expected = pipeline.decode_latents(target)[0].permute(0, 2, 3, 1)
    pipeline.scheduler.set_timesteps(5)
    assert [s["step"] for s in steps] == list(range(5))
    assert [s["timestep"] for s in steps] == pipeline.scheduler.timesteps.tolist()
    for s in steps:
        assert s["x0"].shape == (4, *image.shape[:2], 3)
        torch.testing.assert_close(s["x0"], expected, atol=2e-5, rtol=0)
    assert video.shape == (4, *image.shape[:2], 3) and 0 <= video.min() and video.max() <= 1


def test_real_unet_trajectory_is_seeded(pipeline_and_item):
    pipeline, image, mask = pipeline_and_item
    runs = [x0_trajectory(pipeline, image, mask, "move up", 0.5, num_frames=4, num_inference_steps=3,
                          generator=torch.Generator().manual_seed(1)) for _ in range(2)]
    for a, b in zip(runs[0][0], runs[1][0]):
        torch.testing.assert_close(a["x0"], b["x0"])
    # The estimates change along the trajectory (the noise is removed step by step).
    assert not torch.allclose(runs[0][0][0]["x0"], runs[0][0][-1]["x0"])
    # The pipeline's own output with the same seed is the video returned.
    frames = pipeline(image, mask=mask, prompt="move up", strength=0.5, num_frames=4, num_inference_steps=3,
                      generator=torch.Generator().manual_seed(1), output_type="pt").frames[0]
    torch.testing.assert_close(runs[0][1], frames.permute(0, 2, 3, 1).cpu())


def test_probe_script(toy_pipeline_dir, toy_benchmark, tmp_path):
    items = load_manifest(toy_benchmark)[:2]
    items[0].prompt, items[1].prompt = "move left", "spin"  # the second names no direction: left out
    manifest = write_manifest(tmp_path / "directional.jsonl", items)
    out = tmp_path / "trajectory"
    proc = subprocess.run(
        [sys.executable, "research/probe_trajectory.py", "--pipeline", str(toy_pipeline_dir), "--manifest",
         str(manifest), "--num-inference-steps", "3", "--flow", "farneback", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads((out / "trajectory.json").read_text())
    assert result["num_items"] == 1 and [r["step"] for r in result["per_step"]] == [0, 1, 2]
    assert result["per_step"][0]["timestep"] == 999 and result["final"]["direction_accuracy"] in (0.0, 1.0)
    assert result["copy_mse_to_truth"] > 0 and result["per_step"][-1]["mse_to_truth"] > 0
    assert (out / "trajectory.png").exists() and "| video |" in (out / "trajectory.md").read_text()
    # No directional item at all is a clear error.
    items[0].prompt = "spin"
    write_manifest(manifest, items)
    proc = subprocess.run([sys.executable, "research/probe_trajectory.py", "--pipeline", str(toy_pipeline_dir),
                           "--manifest", str(manifest), "--out", str(out)], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode != 0 and "no item's prompt names a direction" in proc.stderr
