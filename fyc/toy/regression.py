"""Small fixed measurements of the shipped toy models, recorded in their model cards and re-checked by the tests.

* :func:`base_denoising_loss`: the toy base's v-prediction MSE on a fixed set of toy clips (fixed noise and
  timesteps), with their captions, with the empty caption (a text-to-video base does better with the caption) and
  with the caption's motion reversed ("move left" → "move right": a base that reads the motion words does worse).
* :func:`fyc_sample_metrics`: the FYC pipeline samples fixed translate items from their first frame, object mask,
  prompt and true strength; I1-MSE and direction accuracy as ``evaluate.py`` scores them.

Items are rendered in memory (``render_toy_video``, 8-frame balanced translate world, downsampled 64 → 32 px by
area averaging), so nothing is read from disk but the model.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch

from fyc.toy.world import ToyWorldConfig, render_toy_video

# Seeds far from every split the CLI writes (train seeds start at 0, val / test at multiples of its stride).
REGRESSION_SEED = 900_000_000
OPPOSITE_DIRECTIONS = {"left": "right", "right": "left", "up": "down", "down": "up"}
WORLD = ToyWorldConfig(num_frames=8, motion_kinds=("translate",), balanced_translation=True)


@dataclass
class RegressionItem:
    """frames uint8 (F, 32, 32, 3); mask bool (32, 32) of the moving object at frame 0; caption / prompt text."""

    frames: np.ndarray
    mask: np.ndarray
    caption: str
    prompt: str
    strength: float


def regression_items(count: int, resolution: int = 32) -> list[RegressionItem]:
    """``count`` fixed toy clips (seeds ``REGRESSION_SEED + i``) with their strength labels (farneback, as training)."""
    from fyc.motion import FlowEstimator, motion_label_from_flow

    flow = FlowEstimator("farneback")
    items = []
    for i in range(count):
        video = render_toy_video(REGRESSION_SEED + i, WORLD)
        factor = video.frames.shape[1] // resolution
        frames = video.frames.reshape(video.frames.shape[0], resolution, factor, resolution, factor, 3)
        frames = frames.astype(np.float32).mean(axis=(2, 4)).round().astype(np.uint8)
        mask = video.motion_mask.reshape(resolution, factor, resolution, factor).mean(axis=(1, 3)) >= 0.5
        strength = motion_label_from_flow(flow(frames)).strength
        items.append(RegressionItem(frames, mask, video.caption, video.short_prompt, round(float(strength), 4)))
    return items


def reverse_direction(prompt: str) -> str:
    """"move left" → "move right" (each direction word swapped for its opposite)."""
    return " ".join(OPPOSITE_DIRECTIONS.get(word, word) for word in prompt.split())


@torch.no_grad()
def base_denoising_loss(base_dir: str | os.PathLike, count: int = 8, seed: int = 0) -> dict[str, float]:
    """v-prediction MSE of the base at ``pretrained.model=base_dir`` on ``count`` fixed clips, with their captions
    (``loss_caption``), with the empty caption (``loss_empty``) and with each caption's direction reversed
    (``loss_reversed_motion``); timesteps spread evenly over [50, 950]."""
    from transformers import CLIPTextModel, CLIPTokenizer

    from fyc.models.loading import load_fyc_unet
    from fyc.models.schedulers import make_training_scheduler
    from fyc.toy.pixel_autoencoder import PixelAutoencoder
    from fyc.training.conditioning import encode_text, encode_video

    base_dir = os.fspath(base_dir)
    unet = load_fyc_unet(base_dir, os.path.join(base_dir, "motion_adapter"), torch_dtype=torch.float32,
                         region_mask_channel=False, motion_strength_embedding=False).eval()
    vae = PixelAutoencoder.from_pretrained(base_dir, subfolder="vae")
    text_encoder = CLIPTextModel.from_pretrained(base_dir, subfolder="text_encoder").eval()
    tokenizer = CLIPTokenizer.from_pretrained(base_dir, subfolder="tokenizer")
    scheduler = make_training_scheduler()
    items = regression_items(count)
    pixels = torch.stack([torch.from_numpy(it.frames).permute(3, 0, 1, 2) for it in items]).float() / 127.5 - 1
    latents = encode_video(vae, pixels)
    generator = torch.Generator().manual_seed(seed)
    noise = torch.randn(latents.shape, generator=generator)
    timesteps = torch.linspace(50, 950, count).round().long()
    noisy = scheduler.add_noise(latents, noise, timesteps)
    target = scheduler.get_velocity(latents, noise, timesteps)
    out = {}
    reversed_captions = [it.caption.replace(it.prompt, reverse_direction(it.prompt)) for it in items]
    for name, texts in (("loss_caption", [it.caption for it in items]), ("loss_empty", [""] * count),
                        ("loss_reversed_motion", reversed_captions)):
        states = encode_text(tokenizer, text_encoder, texts, "cpu")
        pred = unet(noisy, timesteps, states).sample
        out[name] = float(torch.nn.functional.mse_loss(pred, target))
    return out


def fyc_sample_metrics(pipeline_dir: str | os.PathLike, count: int = 8, steps: int = 10, guidance: float = 7.5,
                       seed: int = 0) -> dict[str, float]:
    """Sample ``count`` fixed items with the pipeline at ``pipeline_dir``; mean I1-MSE (0-255), direction accuracy
    (share within 45° of the prompted direction) and the clicked object's speed where it is (``object_speed``, px / frame pair)."""
    from fyc.eval.fidelity import i1_mse
    from fyc.eval.masks import region_per_frame
    from fyc.eval.regional import DIRECTION_COS_THRESHOLD, direction_cosine, motion_direction, object_speed
    from fyc.motion import FlowEstimator
    from fyc.pipelines import FollowYourClickPipeline

    pipeline = FollowYourClickPipeline.from_pretrained(os.fspath(pipeline_dir))
    pipeline.set_progress_bar_config(disable=True)
    flow = FlowEstimator("farneback")
    i1, correct, magnitude = [], [], []
    for k, item in enumerate(regression_items(count)):
        image = item.frames[0]
        result = pipeline(image, mask=item.mask, prompt=item.prompt, strength=item.strength,
                          num_frames=item.frames.shape[0], num_inference_steps=steps, guidance_scale=guidance,
                          generator=torch.Generator().manual_seed(seed + k))
        video = (result.frames[0] * 255).round().astype(np.uint8)
        i1.append(i1_mse(video[0], image))
        video_flow = flow(video)
        direction = item.prompt.split()[-1]
        correct.append(float(direction_cosine(direction, motion_direction(video_flow, item.mask)) >= DIRECTION_COS_THRESHOLD))
        magnitude.append(object_speed(video_flow, region_per_frame(video_flow, item.mask, "tracked")))
    return {"i1_mse": float(np.mean(i1)), "direction_accuracy": float(np.mean(correct)),
            "object_speed": float(np.mean(magnitude))}
