"""Scalar conditioning embeddings (motion strength, frame stride) added to the UNet's time embedding.

Follow-Your-Click conditions on motion strength the way the timestep is embedded: scalar -> sinusoid -> MLP, and
the result is added to the time embedding, so every ResNet block of every frame sees it (paper §4.3; official
code `emb += motion_embedding(time_proj(flow))`). The MLP's last linear layer starts at zero, so a freshly
added embedding changes nothing until it is trained.
"""

from __future__ import annotations

import torch
from diffusers.models.embeddings import TimestepEmbedding, Timesteps
from torch import nn


class ScalarConditionEmbedding(nn.Module):
    """Embed one float per sample into the UNet's time-embedding space.

    ``value (B,) float -> value * scale -> sinusoid (B, sinusoid_dim) -> Linear/act/Linear -> (B, embed_dim)``.

    Args:
        sinusoid_dim: width of the sinusoidal projection; use the UNet's ``block_out_channels[0]`` so it matches
            ``time_proj`` (320 for SD-1.5).
        embed_dim: output width, the UNet's time-embedding width (``4 * block_out_channels[0]``; 1280 for SD-1.5).
        scale: multiplier applied before the sinusoid. The sinusoid's fastest frequency is 1 rad per unit and its
            slowest 1e-4, a layout tuned for timesteps in [0, 1000). Small physical values (a strength of 0.5..16
            pixels per frame) would use only the first few channels; scaling by 10 spreads them over the range
            timesteps use and resolves differences of ~0.1 units.
        act_fn: activation between the two linears (the UNet's ``act_fn``).

    The last linear layer is zero-initialised: output is exactly 0 for any input at construction.
    """

    def __init__(self, sinusoid_dim: int, embed_dim: int, scale: float = 1.0, act_fn: str = "silu"):
        super().__init__()
        self.scale = float(scale)
        # Same sinusoid convention as UNetMotionModel.time_proj (flip_sin_to_cos=True, shift 0).
        self.proj = Timesteps(sinusoid_dim, flip_sin_to_cos=True, downscale_freq_shift=0)
        self.mlp = TimestepEmbedding(sinusoid_dim, embed_dim, act_fn=act_fn)
        nn.init.zeros_(self.mlp.linear_2.weight)
        nn.init.zeros_(self.mlp.linear_2.bias)

    def forward(self, values: torch.Tensor) -> torch.Tensor:
        """values: (B,) float (any real number) -> (B, embed_dim) in the MLP's parameter dtype."""
        # Timesteps computes in float32 whatever the input; no float64 anywhere (bf16/MPS friendly).
        sinusoid = self.proj(values.float() * self.scale)
        return self.mlp(sinusoid.to(self.mlp.linear_1.weight.dtype))
