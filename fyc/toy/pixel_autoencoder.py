"""A fixed, exactly invertible stand-in for the SD VAE, for the toy world.

A randomly initialised ``AutoencoderKL`` does not reconstruct (decode(encode(x)) is noise), so "the first frame
equals the input" could never hold in the toy world. ``PixelAutoencoder`` has no learned weights: the latent is
the image itself, average-pooled by ``downsample_factor`` (RGB in channels 0-2, luma in channel 3), and decoding
upsamples channels 0-2 back. With ``downsample_factor=1`` it is exact.

It mimics the parts of ``AutoencoderKL``'s interface that pipelines and training use:
``encode(x).latent_dist.{sample,mode}()``, ``decode(z).sample``, ``config.scaling_factor``, and
``config.block_out_channels`` (whose length gives diffusers' ``vae_scale_factor = 2 ** (len - 1)``).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.autoencoders.autoencoder_kl import AutoencoderKLOutput
from diffusers.models.autoencoders.vae import DecoderOutput, DiagonalGaussianDistribution
from diffusers.models.modeling_utils import ModelMixin


class PixelAutoencoder(ModelMixin, ConfigMixin):
    """Images ``(N, 3, H, W)`` in [-1, 1] ↔ latents ``(N, 4, H/f, W/f)``, f = ``downsample_factor`` (power of 2).

    The latent values are the pooled pixels times ``scaling_factor`` (pipelines multiply by it after encoding and
    divide before decoding, as with SD's 0.18215).
    """

    @register_to_config
    def __init__(self, in_channels: int = 3, latent_channels: int = 4, downsample_factor: int = 1,
                 scaling_factor: float = 1.0, upsample_mode: str = "nearest",
                 block_out_channels: tuple[int, ...] | None = None):
        super().__init__()
        if in_channels != 3 or latent_channels != 4:
            raise ValueError(f"PixelAutoencoder maps RGB to 4 latent channels, got in={in_channels}, latent={latent_channels}")
        if downsample_factor < 1 or downsample_factor & (downsample_factor - 1):
            raise ValueError(f"downsample_factor must be a power of 2, got {downsample_factor}")
        if block_out_channels is None:
            # Only its length matters: diffusers derives vae_scale_factor = 2 ** (len - 1) from it.
            self.register_to_config(block_out_channels=[8] * (int(math.log2(downsample_factor)) + 1))
        # Rec. 601 luma weights; a buffer also gives the parameter-free module a dtype/device.
        self.register_buffer("luma_weights", torch.tensor([0.299, 0.587, 0.114]))

    def _encode(self, x: torch.Tensor) -> torch.Tensor:
        f = self.config.downsample_factor
        if x.shape[-2] % f or x.shape[-1] % f:
            raise ValueError(f"image size {tuple(x.shape[-2:])} is not divisible by downsample_factor={f}")
        pooled = F.avg_pool2d(x, f) if f > 1 else x
        luma = torch.einsum("nchw,c->nhw", pooled, self.luma_weights.to(pooled.dtype))[:, None]
        return torch.cat([pooled, luma], dim=1)

    def encode(self, x: torch.Tensor, return_dict: bool = True):
        """x: ``(N, 3, H, W)`` in [-1, 1] → ``AutoencoderKLOutput`` whose ``latent_dist`` is deterministic."""
        mean = self._encode(x)
        # Deterministic distribution: sample() == mode() == mean (logvar is ignored when deterministic).
        dist = DiagonalGaussianDistribution(torch.cat([mean, torch.zeros_like(mean)], dim=1), deterministic=True)
        return AutoencoderKLOutput(latent_dist=dist) if return_dict else (dist,)

    def decode(self, z: torch.Tensor, return_dict: bool = True, generator=None):
        """z: ``(N, 4, h, w)`` (already divided by ``scaling_factor``) → ``DecoderOutput.sample`` ``(N, 3, h*f, w*f)``."""
        f = self.config.downsample_factor
        image = z[:, :3]
        if f > 1:
            image = F.interpolate(image, scale_factor=f, mode=self.config.upsample_mode)
        return DecoderOutput(sample=image) if return_dict else (image,)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x).latent_dist.mode()).sample
