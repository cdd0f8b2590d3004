"""Write tiny, randomly initialised "pretrained" components in the SD-1.5 diffusers folder layout.

``<root>/{unet, vae, text_encoder, tokenizer}`` mirror ``stable-diffusion-v1-5/stable-diffusion-v1-5`` and
``<root>/motion_adapter`` mirrors an AnimateDiff ``MotionAdapter`` repo, so training and sampling load them with
the very calls that load real weights (``from_pretrained(<dir or hub id>, subfolder=...)``).
The VAE is the exact :class:`~fyc.toy.pixel_autoencoder.PixelAutoencoder` (a random AutoencoderKL does not
reconstruct: decode(encode(x)) is noise).
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable

import torch
from diffusers import MotionAdapter, UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel

from fyc.toy.pixel_autoencoder import PixelAutoencoder
from fyc.toy.tokenizer import build_word_tokenizer


@dataclass
class ToyComponentsConfig:
    """Sizes of the tiny stand-ins. Defaults: ~1.5 M UNet parameters, CPU-trainable in minutes at 16² latents."""

    block_out_channels: tuple[int, ...] = (32, 64)
    layers_per_block: int = 1
    cross_attention_dim: int = 32
    # diffusers' UNet2DConditionModel reads an int attention_head_dim as the NUMBER of heads: 2 gives heads of
    # width 16 / 32. With 8 (width-4 heads) CPU attention took ~45% of a toy training step: CPU flash attention
    # costs per head, not per channel (0.66 vs 0.48 s per step, docs/toy_study.md).
    attention_head_dim: int = 2
    norm_num_groups: int = 8
    motion_num_attention_heads: int = 2
    motion_max_seq_length: int = 32
    use_motion_mid_block: bool = False
    text_hidden_size: int = 32
    text_num_layers: int = 2
    text_num_heads: int = 2
    # Tokens per prompt (SD's CLIP: 77). Toy captions need <= 17; a shorter context dilutes a 2-word motion prompt
    # less among padding tokens (mean-pooled "move left" vs "move right": distance / norm 0.06 at 77, 0.15 at 24).
    text_max_length: int = 77
    vae_downsample_factor: int = 2
    # Latent = pooled pixels x this. Toy pixels in [-1, 1] have std ~0.15 (muted backgrounds), so at 1.0 the
    # signal drowns in unit-variance noise at most timesteps and a tiny model learns slowly; 4.0 brings the latent
    # std to ~0.6, like SD's 0.18215 brings its VAE latents to ~unit std.
    vae_scaling_factor: float = 4.0
    extra_words: tuple[str, ...] = field(default_factory=tuple)


def build_toy_components(root: str | Path, vocabulary: Iterable[str], config: ToyComponentsConfig | None = None,
                         seed: int = 0) -> Path:
    """Create and save the tiny components under ``root``; returns ``root``. Deterministic by ``seed``."""
    config = config or ToyComponentsConfig()
    if config.text_hidden_size != config.cross_attention_dim:
        raise ValueError(f"text_hidden_size ({config.text_hidden_size}) must equal cross_attention_dim "
                         f"({config.cross_attention_dim}): the UNet attends to the text encoder's hidden states")
    root = Path(root)
    torch.manual_seed(seed)
    n_blocks = len(config.block_out_channels)
    unet = UNet2DConditionModel(
        sample_size=16,
        in_channels=4,
        out_channels=4,
        block_out_channels=config.block_out_channels,
        layers_per_block=config.layers_per_block,
        down_block_types=("CrossAttnDownBlock2D",) * (n_blocks - 1) + ("DownBlock2D",),
        up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * (n_blocks - 1),
        cross_attention_dim=config.cross_attention_dim,
        attention_head_dim=config.attention_head_dim,
        norm_num_groups=config.norm_num_groups,
    )
    adapter = MotionAdapter(
        block_out_channels=config.block_out_channels,
        motion_layers_per_block=config.layers_per_block,
        motion_norm_num_groups=config.norm_num_groups,
        motion_num_attention_heads=config.motion_num_attention_heads,
        motion_max_seq_length=config.motion_max_seq_length,
        use_motion_mid_block=config.use_motion_mid_block,
    )
    tokenizer = build_word_tokenizer(list(vocabulary) + list(config.extra_words), root / "tokenizer",
                                     model_max_length=config.text_max_length)
    text_encoder = CLIPTextModel(CLIPTextConfig(
        vocab_size=len(tokenizer),
        hidden_size=config.text_hidden_size,
        intermediate_size=config.text_hidden_size * 4,
        num_hidden_layers=config.text_num_layers,
        num_attention_heads=config.text_num_heads,
        projection_dim=config.text_hidden_size,
        max_position_embeddings=tokenizer.model_max_length,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    ))
    vae = PixelAutoencoder(downsample_factor=config.vae_downsample_factor, scaling_factor=config.vae_scaling_factor)
    unet.save_pretrained(root / "unet")
    adapter.save_pretrained(root / "motion_adapter")
    text_encoder.save_pretrained(root / "text_encoder")
    vae.save_pretrained(root / "vae")
    (root / "toy_components.json").write_text(json.dumps(asdict(config), indent=2))
    return root
