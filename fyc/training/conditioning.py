"""Turning a data batch into the UNet's conditioning inputs: text embeddings, latent-size masks, dropout for CFG.

Pure tensor code shared by training and validation; no Lightning here.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from fyc.motion.masks import pool_mask


@dataclass
class ConditionDropout:
    """Per-sample probabilities of replacing a condition by its "null" version (classifier-free guidance).

    null_condition → caption *and* short prompt both replaced by the empty prompt's embedding, together: the input
    the sampler's unconditional branch gives the UNet (empty text in the spatial and the motion-augmented
    attention), so that branch is trained at this rate (0.1, the text dropout of the SD/AnimateDiff recipes the
    paper fine-tunes; the paper states none of its own). caption / short_prompt → each dropped alone in addition
    (0 by default). first_frame → a zero first-frame latent (the mask channel is kept: inference always has a
    mask).
    """

    null_condition: float = 0.1
    caption: float = 0.0
    short_prompt: float = 0.0
    first_frame: float = 0.05

    def draw(self, batch_size: int, generator: torch.Generator | None = None,
             device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
        """Return bool ``(B,)`` drop decisions for "caption", "short_prompt" and "first_frame" (the joint null
        condition sets both text decisions)."""
        draws = {}
        for name in ("null_condition", "caption", "short_prompt", "first_frame"):
            p = getattr(self, name)
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"condition_dropout.{name} must be in [0, 1], got {p}")
            draws[name] = torch.rand(batch_size, generator=generator) < p
        joint = draws.pop("null_condition")
        draws["caption"] = draws["caption"] | joint
        draws["short_prompt"] = draws["short_prompt"] | joint
        return {name: value.to(device) for name, value in draws.items()}


@torch.no_grad()
def encode_text(tokenizer, text_encoder, prompts: list[str], device: torch.device | str) -> torch.Tensor:
    """Prompts → last hidden states ``(B, L, D)`` of the (frozen) CLIP text encoder, padded to model_max_length."""
    ids = tokenizer(prompts, padding="max_length", max_length=tokenizer.model_max_length, truncation=True,
                    return_tensors="pt").input_ids.to(device)
    return text_encoder(ids)[0]


def mask_to_latent(mask: torch.Tensor, latent_size: tuple[int, int]) -> torch.Tensor:
    """Pixel mask ``(B, 1, H, W)`` in {0,1} → latent mask ``(B, 1, h, w)`` in {0,1}, by the project's one pooling
    rule (:func:`fyc.motion.masks.pool_mask`, shared with the sidecar labels and the sampling pipeline)."""
    return pool_mask(mask, latent_size).to(mask.dtype)


@torch.no_grad()
def encode_video(vae, pixel_values: torch.Tensor) -> torch.Tensor:
    """Pixels ``(B, 3, F, H, W)`` in [-1, 1] → latents ``(B, 4, F, h, w)`` (deterministic mode × scaling_factor)."""
    b, _, f, h, w = pixel_values.shape
    frames = pixel_values.permute(0, 2, 1, 3, 4).reshape(b * f, 3, h, w)
    latents = vae.encode(frames.to(vae.dtype)).latent_dist.mode() * vae.config.scaling_factor
    return latents.reshape(b, f, *latents.shape[1:]).permute(0, 2, 1, 3, 4)
