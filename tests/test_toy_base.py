"""The pretrained toy base and the shipped toy models: export to the SD layout, composition into FYC with zero-init
additions, the shipped weights' recorded metrics (their model cards) reproduced on a small fixed set, the default
model of the CLIs, the demo's preview."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import ROOT, compose

ASSETS = ROOT / "assets"


def _base_like_unet(components: Path):
    """A text-to-video FYC UNet as experiment=toy_base builds it, with every weight perturbed (a 'trained' base)."""
    from fyc.models.loading import load_fyc_unet

    unet = load_fyc_unet(str(components), str(components / "motion_adapter"), region_mask_channel=False,
                         first_frame_residual=False, motion_augmented_attention=False,
                         motion_strength_embedding=False, frame_stride_embedding=False)
    torch.manual_seed(1)
    with torch.no_grad():
        for p in unet.parameters():
            p.add_(torch.randn_like(p) * 0.02)
    return unet.eval()


def test_base_exports_to_sd_layout_and_composes_into_fyc_unchanged(toy_components, tmp_path):
    """Exported unet/ + motion_adapter/ rebuild the base exactly, and the FYC model composed from them
    (from_unet2d, mask / first-frame channels, MA, strength embedding at zero) predicts what the base predicts."""
    from diffusers import MotionAdapter, UNet2DConditionModel

    from fyc.models.loading import load_fyc_unet
    from fyc.toy.base import BASE_SUBFOLDERS, export_toy_base

    base = _base_like_unet(toy_components)
    out = export_toy_base(base.state_dict(), toy_components, tmp_path / "base", card={"steps": 1})
    assert all((out / name).is_dir() for name in BASE_SUBFOLDERS)
    assert json.loads((out / "base.json").read_text()) == {"steps": 1}
    unet2d = UNet2DConditionModel.from_pretrained(out, subfolder="unet")
    assert unet2d.config.in_channels == 4
    assert torch.equal(unet2d.conv_in.weight, base.conv_in.weight[:, :4])
    MotionAdapter.from_pretrained(out / "motion_adapter")

    fyc = load_fyc_unet(str(out), str(out / "motion_adapter"), motion_augmented_attention=True,
                        ma_num_attention_heads=2, first_frame_placement="repeat").eval()
    torch.manual_seed(0)
    sample = torch.randn(2, 4, 4, 16, 16)
    text = torch.randn(2, 77, 32)
    with torch.no_grad():
        expected = base(sample, 500, text).sample
        got = fyc(sample, 500, text, region_mask=torch.ones(2, 1, 16, 16), first_frame_latent=torch.randn(2, 4, 16, 16),
                  motion_prompt_embeds=torch.randn(2, 77, 32), motion_strength=torch.tensor([1.0, 2.0])).sample
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)


def test_split_refuses_trained_fyc_layers(toy_components):
    """A UNet with MA layers is not a base: the split names the weights it would drop."""
    from diffusers import MotionAdapter, UNet2DConditionModel

    from fyc.models.loading import load_fyc_unet
    from fyc.toy.base import split_motion_unet_state

    fyc = load_fyc_unet(str(toy_components), str(toy_components / "motion_adapter"), motion_augmented_attention=True,
                        ma_num_attention_heads=2)
    with pytest.raises(ValueError, match="no place in the SD layout"):
        split_motion_unet_state(fyc.state_dict(), UNet2DConditionModel.from_pretrained(toy_components, subfolder="unet"),
                                MotionAdapter.from_pretrained(toy_components / "motion_adapter"))


def test_toy_base_experiment_turns_every_fyc_condition_off(tmp_path):
    cfg = compose("train", ["experiment=toy_base", f"paths.output_dir={tmp_path}"])
    unet = cfg.model.unet
    assert not (unet.region_mask_channel or unet.motion_augmented_attention or unet.motion_strength_embedding
                or unet.first_frame_residual)
    assert cfg.model.condition_dropout.first_frame == 1.0 and cfg.data.train_dataset.motion_labels is None
    fine_tune = compose("train", ["experiment=toy_from_base", f"paths.output_dir={tmp_path}"])
    assert fine_tune.pretrained.model.endswith("assets/toy_base")
    assert fine_tune.model.unet.pretrained_model_name_or_path == fine_tune.pretrained.model


def _card_metrics(name: str) -> dict:
    path = ASSETS / name / "metrics.json"
    assert path.is_file(), f"shipped model {name} lacks {path}"
    return json.loads(path.read_text())


def test_shipped_assets_are_small_safetensors():
    files = [p for p in ASSETS.rglob("*") if p.is_file()]
    assert sum(p.stat().st_size for p in files) <= 10 * 2**20
    assert not [p for p in files if p.suffix in (".bin", ".pt", ".ckpt")]
    for name in ("toy_base", "toy_fyc"):
        assert (ASSETS / name / "README.md").is_file()


def test_shipped_base_reproduces_its_recorded_loss():
    """The model card's fixed-set denoising losses (also a check that the weights load as SD-layout parts)."""
    from fyc.toy.regression import base_denoising_loss

    recorded = _card_metrics("toy_base")["fixed_set"]
    measured = base_denoising_loss(ASSETS / "toy_base", count=recorded["count"])
    for key in ("loss_caption", "loss_empty", "loss_reversed_motion"):
        assert measured[key] == pytest.approx(recorded[key], rel=2e-3, abs=2e-4), key
    assert measured["loss_caption"] < recorded["random_init_loss_caption"]  # it trained


def test_shipped_fyc_model_reproduces_its_recorded_metrics():
    """The model card's fixed-set sampling metrics (the sampler's regression test)."""
    from fyc.toy.regression import fyc_sample_metrics

    recorded = _card_metrics("toy_fyc")["fixed_set"]
    measured = fyc_sample_metrics(ASSETS / "toy_fyc", count=recorded["count"], steps=recorded["steps"])
    assert measured["i1_mse"] == pytest.approx(recorded["i1_mse"], rel=0.02, abs=0.5)
    assert measured["direction_accuracy"] == pytest.approx(recorded["direction_accuracy"], abs=1 / recorded["count"])
    assert measured["object_speed"] == pytest.approx(recorded["object_speed"], rel=0.05, abs=0.02)


def test_default_model_is_the_shipped_one(capsys):
    from fyc.toy.default_model import SHIPPED_MODEL, resolve_model

    assert resolve_model("some/where") == "some/where"
    assert capsys.readouterr().out == ""
    assert resolve_model(None) == str(SHIPPED_MODEL)
    assert capsys.readouterr().out.count("\n") == 1
    assert (SHIPPED_MODEL / "model_index.json").is_file()


def test_preview_is_upscaled_with_mask_and_caption():
    from fyc.toy.preview import captioned_preview, upscale_nearest

    frames = np.zeros((3, 4, 4, 3), np.uint8)
    frames[:, 1, 2] = 200
    big = upscale_nearest(frames, 8)
    assert big.shape == (3, 32, 32, 3) and (big[:, 8:16, 16:24] == 200).all() and big[:, :8].max() == 0
    mask = np.zeros((4, 4), bool)
    mask[1, 1] = True
    preview = captioned_preview(frames, mask, frames[0], '"move left", strength 2', scale=8)
    assert preview.shape[0] == 3 and preview.shape[2] == 64 and preview.shape[1] > 32
    band = preview[0, 32:]
    assert (band == 255).mean() > 0.5 and (band < 128).any()  # white band with dark text
    assert preview[0, 8:16, 8:16, 0].mean() > preview[0, 0:8, 0:8, 0].mean()  # the masked pixel is tinted red


def test_animate_needs_no_model(tmp_path):
    """scripts/animate.py without --model animates with the shipped toy model and says so in one line."""
    import subprocess
    import sys

    from PIL import Image

    from fyc.data.video_io import read_video

    image = np.full((32, 32, 3), 110, np.uint8)
    image[6:16, 4:14] = (220, 40, 40)
    Image.fromarray(image).save(tmp_path / "image.png")
    out = tmp_path / "v.mp4"
    proc = subprocess.run([sys.executable, "scripts/animate.py", "--image", str(tmp_path / "image.png"), "--click",
                           "8,10", "--prompt", "move left", "--steps", "2", "--frames", "4", "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert sum("the shipped toy model" in line for line in proc.stdout.splitlines()) == 1
    assert read_video(out).shape == (4, 32, 32, 3)


@pytest.mark.slow
def test_demo_runs_end_to_end_from_the_base(tmp_path):
    """scripts/demo.py (make demo) at a tiny size: fine-tunes from the shipped base, writes the preview and metrics."""
    import subprocess
    import sys

    from PIL import Image

    out = tmp_path / "demo"
    proc = subprocess.run([sys.executable, "scripts/demo.py", "--out", str(out), "--steps", "2", "--train-videos", "8",
                           "--val-videos", "2"], cwd=ROOT, capture_output=True, text=True, timeout=1200,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "assets/toy_base" in (out / "train" / "config.yaml").read_text()
    gif = Image.open(out / "animation_preview.gif")
    assert gif.size[0] == 2 * 32 * 8 and gif.size[1] > 32 * 8 and gif.n_frames == 8
    assert json.loads((out / "eval" / "results.json").read_text())
