"""Turning a data batch into the UNet's conditioning inputs: text embeddings, latent-size masks, dropout for CFG.

Pure tensor code shared by training and validation; no Lightning here.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass
class ConditionDropout:
    """Per-sample probabilities of replacing a condition by its "null" version (classifier-free guidance).

    caption → the empty prompt's embedding; short_prompt → the empty prompt's embedding (MA input);
    first_frame → a zero first-frame latent (the mask channel is kept: inference always has a mask).
    """

    caption: float = 0.1
    short_prompt: float = 0.1
    first_frame: float = 0.05

    def draw(self, batch_size: int, generator: torch.Generator | None = None,
             device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
        """Return bool ``(B,)`` drop decisions per condition, drawn independently."""
        out = {}
        for name, p in (("caption", self.caption), ("short_prompt", self.short_prompt), ("first_frame", self.first_frame)):
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"condition_dropout.{name} must be in [0, 1], got {p}")
            out[name] = (torch.rand(batch_size, generator=generator) < p).to(device)
        return out


@torch.no_grad()
def encode_text(tokenizer, text_encoder, prompts: list[str], device: torch.device | str) -> torch.Tensor:
    """Prompts → last hidden states ``(B, L, D)`` of the (frozen) CLIP text encoder, padded to model_max_length."""
    ids = tokenizer(prompts, padding="max_length", max_length=tokenizer.model_max_length, truncation=True,
                    return_tensors="pt").input_ids.to(device)
    return text_encoder(ids)[0]


def mask_to_latent(mask: torch.Tensor, latent_size: tuple[int, int]) -> torch.Tensor:
    """Pixel mask ``(B, 1, H, W)`` in {0,1} → latent mask ``(B, 1, h, w)`` in {0,1}.

    A latent pixel counts as "moving" if any of its pixels does (max-pool), so thin objects survive downsampling.
    """
    if mask.shape[-2:] == tuple(latent_size):
        return (mask > 0.5).to(mask.dtype)
    return (F.adaptive_max_pool2d(mask.float(), latent_size) > 0.5).to(mask.dtype)


@torch.no_grad()
def encode_video(vae, pixel_values: torch.Tensor) -> torch.Tensor:
    """Pixels ``(B, 3, F, H, W)`` in [-1, 1] → latents ``(B, 4, F, h, w)`` (deterministic mode × scaling_factor)."""
    b, _, f, h, w = pixel_values.shape
    frames = pixel_values.permute(0, 2, 1, 3, 4).reshape(b * f, 3, h, w)
    latents = vae.encode(frames.to(vae.dtype)).latent_dist.mode() * vae.config.scaling_factor
    return latents.reshape(b, f, *latents.shape[1:]).permute(0, 2, 1, 3, 4)
