"""The one-step denoising probe (fyc/research/denoising.py, research/probe_denoising.py) on the tiny toy pipeline."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from fyc.data import WebVidDataset
from fyc.research.denoising import denoising_errors, denoising_table, encode_clip, merge_rows, prompt_variant
from fyc.pipelines import FollowYourClickPipeline

ROOT = Path(__file__).resolve().parents[1]
TIMESTEPS = (999, 500, 100, 10)


class FakeUNet(torch.nn.Module):
    """Predicts v from a chosen x0 estimate: v = (sqrt(a) x_t - x0) / sqrt(1 - a), so the probe's x0 is exactly it."""

    def __init__(self, real_unet, alphas_cumprod, x0):
        super().__init__()
        self.config, self.alphas_cumprod, self.x0 = real_unet.config, alphas_cumprod, x0
        self.device, self.dtype = x0.device, x0.dtype

    def forward(self, noisy, timesteps, **kwargs):
        a = self.alphas_cumprod[timesteps[0]]
        return SimpleNamespace(sample=(a.sqrt() * noisy - self.x0) / (1 - a).sqrt())


@pytest.fixture(scope="module")
def pipeline_and_batch(toy_pipeline_dir, toy_root):
    pipeline = FollowYourClickPipeline.from_pretrained(toy_pipeline_dir)
    dataset = WebVidDataset(toy_root / "val.csv", resolution=32, num_frames=8, frame_stride=1, start="first")
    batch = next(iter(torch.utils.data.DataLoader(dataset, batch_size=2)))
    return pipeline, batch


def test_x0_conversion_and_references(pipeline_and_batch):
    pipeline, batch = pipeline_and_batch
    real_unet = pipeline.unet
    latents = encode_clip(pipeline, batch["pixel_values"])
    alphas = pipeline.scheduler.alphas_cumprod
    try:
        # A perfect model: x0 error and v error vanish at every noise level.
        pipeline.unet = FakeUNet(real_unet, alphas, latents)
        perfect = denoising_errors(pipeline, batch, TIMESTEPS)
        # A model that copies the first frame: its x0 error is the copy reference, frame 0 exact.
        pipeline.unet = FakeUNet(real_unet, alphas, latents[:, :, :1].expand_as(latents))
        copier = denoising_errors(pipeline, batch, TIMESTEPS)
    finally:
        pipeline.unet = real_unet
    for row in perfect:
        assert row["x0_mse"]["all"] < 1e-8 and row["v_mse"] < 1e-6, row
    for row in copier:
        assert row["x0_mse"]["later"] == pytest.approx(row["copy_mse"]["later"], rel=1e-4)
        assert row["x0_mse"]["frame0"] < 1e-8 and row["copy_mse"]["later"] > 1e-4  # the toy clips do move
    # Zero-terminal SNR: the input is pure noise at t=999 (no rescaled-input reference); less noise, smaller error.
    assert perfect[0]["rescaled_input_mse"] is None
    errors = [row["rescaled_input_mse"]["all"] for row in perfect[1:]]
    assert errors == sorted(errors, reverse=True) and errors[-1] < 0.05 * errors[0]


def test_first_frame_residual_unet(pipeline_and_batch):
    """A first_frame_residual UNet's estimates are residuals: the probe adds the first-frame latent back, so a
    perfect residual model scores 0 and one that predicts a zero residual scores exactly the copy reference."""
    pipeline, batch = pipeline_and_batch
    real_unet = pipeline.unet
    latents = encode_clip(pipeline, batch["pixel_values"])
    copy = latents[:, :, :1].expand_as(latents)
    alphas = pipeline.scheduler.alphas_cumprod
    rows = {}
    try:
        for name, residual in (("perfect", latents - copy), ("zero", torch.zeros_like(latents))):
            pipeline.unet = FakeUNet(real_unet, alphas, residual)
            pipeline.unet.config = SimpleNamespace(**{**real_unet.config, "first_frame_residual": True})
            rows[name] = denoising_errors(pipeline, batch, TIMESTEPS)
    finally:
        pipeline.unet = real_unet
    for perfect, zero in zip(rows["perfect"], rows["zero"]):
        assert perfect["x0_mse"]["all"] < 1e-8 and perfect["v_mse"] < 1e-6, perfect
        assert zero["x0_mse"]["later"] == pytest.approx(zero["copy_mse"]["later"], rel=1e-4)
        assert zero["x0_mse"]["frame0"] < 1e-8 and zero["copy_mse"]["later"] > 1e-4


def test_real_unet_rows_table_and_merge(pipeline_and_batch):
    pipeline, batch = pipeline_and_batch
    rows = denoising_errors(pipeline, batch, TIMESTEPS)
    assert [r["timestep"] for r in rows] == list(TIMESTEPS)
    assert all(torch.isfinite(torch.tensor(r["v_mse"])) and r["x0_mse"]["all"] > 0 for r in rows)
    merged = merge_rows([rows, rows], [2, 1])
    assert merged[1]["x0_mse"]["later"] == pytest.approx(rows[1]["x0_mse"]["later"])
    table = denoising_table(merged)
    assert table.count("\n") == len(TIMESTEPS) + 1 and "| 999 |" in table and "–" in table
    with pytest.raises(ValueError, match="outside"):
        denoising_errors(pipeline, batch, (1000,))


def test_probe_script(toy_pipeline_dir, toy_root, tmp_path):
    out = tmp_path / "probe"
    proc = subprocess.run(
        [sys.executable, "research/probe_denoising.py", "--pipeline", str(toy_pipeline_dir), "--csv",
         str(toy_root / "val.csv"), "--frames", "8", "--resolution", "32", "--clips", "3", "--batch", "2",
         "--timesteps", "999", "250", "--prompt", "opposite", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads((out / "denoising.json").read_text())
    assert result["num_clips"] == 3 and [r["timestep"] for r in result["rows"]] == [999, 250]
    assert "| 250 |" in (out / "denoising.md").read_text() and "results:" in proc.stdout
    assert result["settings"]["prompt"] == "opposite" and "prompt: opposite" in (out / "denoising.md").read_text()


def test_prompt_variants():
    prompts = ["move left", "move up and move right", "spin", ""]
    assert prompt_variant(prompts, "given") == prompts
    assert prompt_variant(prompts, "opposite") == ["move right", "move down and move left", "spin", ""]
    assert prompt_variant(prompts, "empty") == ["", "", "", ""]
    with pytest.raises(ValueError, match="'given', 'opposite' or 'empty'"):
        prompt_variant(prompts, "flipped")
