"""The toy stand-ins: exact pixel autoencoder, offline tokenizer, SD-layout folder loading."""
import json

import pytest
import torch
from diffusers import MotionAdapter, UNet2DConditionModel
from transformers import CLIPTextModel, CLIPTokenizer

from fyc.toy.pixel_autoencoder import PixelAutoencoder
from fyc.toy.tokenizer import build_word_tokenizer


@pytest.mark.parametrize("factor", [1, 2, 4])
def test_pixel_autoencoder_shapes_and_roundtrip(tmp_path, factor):
    vae = PixelAutoencoder(downsample_factor=factor, scaling_factor=0.5)
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    z = vae.encode(x).latent_dist.sample()
    assert z.shape == (2, 4, 16 // factor, 16 // factor)
    assert torch.equal(z, vae.encode(x).latent_dist.mode())  # deterministic
    assert 2 ** (len(vae.config.block_out_channels) - 1) == factor  # diffusers' vae_scale_factor convention
    recon = vae.decode(z).sample
    assert recon.shape == x.shape
    if factor == 1:
        assert torch.equal(recon, x)
    # Piecewise-constant images survive pooling exactly at any factor.
    blocks = torch.rand(1, 3, 4, 4).repeat_interleave(4, -1).repeat_interleave(4, -2) * 2 - 1
    assert torch.allclose(vae(blocks), blocks, atol=1e-6)
    vae.save_pretrained(tmp_path)
    loaded = PixelAutoencoder.from_pretrained(tmp_path)
    assert loaded.config.downsample_factor == factor and torch.equal(loaded(x), vae(x))


def test_pixel_autoencoder_rejects_bad_sizes():
    with pytest.raises(ValueError, match="power of 2"):
        PixelAutoencoder(downsample_factor=3)
    with pytest.raises(ValueError, match="not divisible"):
        PixelAutoencoder(downsample_factor=4).encode(torch.zeros(1, 3, 10, 10))


def test_word_tokenizer_roundtrip(tmp_path):
    words = ["move", "left", "right", "red", "disc"]
    tok = build_word_tokenizer(words, tmp_path)
    loaded = CLIPTokenizer.from_pretrained(tmp_path)
    ids = loaded("move left").input_ids
    assert loaded.convert_ids_to_tokens(ids) == ["<|startoftext|>", "move</w>", "left</w>", "<|endoftext|>"]
    assert loaded("move left").input_ids != loaded("move right").input_ids
    assert loaded("zebra!").input_ids[-1] == loaded.eos_token_id  # unknown words fall back to characters
    padded = loaded(["move"], padding="max_length", max_length=loaded.model_max_length, return_tensors="pt")
    assert padded.input_ids.shape == (1, 77) and tok.model_max_length == 77


def test_toy_components_load_like_sd15(toy_components):
    root = toy_components
    unet = UNet2DConditionModel.from_pretrained(root, subfolder="unet")
    adapter = MotionAdapter.from_pretrained(root / "motion_adapter")
    text_encoder = CLIPTextModel.from_pretrained(root, subfolder="text_encoder")
    tokenizer = CLIPTokenizer.from_pretrained(root, subfolder="tokenizer")
    vae = PixelAutoencoder.from_pretrained(root, subfolder="vae")
    assert unet.config.cross_attention_dim == text_encoder.config.hidden_size
    assert len(adapter.config.block_out_channels) == len(unet.config.block_out_channels)
    assert text_encoder.config.vocab_size == len(tokenizer)
    ids = tokenizer(["move left"], padding="max_length", max_length=77, return_tensors="pt").input_ids
    assert text_encoder(ids)[0].shape == (1, 77, unet.config.cross_attention_dim)
    assert vae.config.downsample_factor == json.loads((root / "toy_components.json").read_text())["vae_downsample_factor"]


def test_make_toy_components_cli_sets_widths(tmp_path):
    """scripts/make_toy_components.py --block-out-channels/--layers-per-block reach the saved UNet and adapter."""
    import sys

    from conftest import ROOT

    sys.path.insert(0, str(ROOT / "scripts"))
    import make_toy_components

    make_toy_components.main(["--out", str(tmp_path / "wide"), "--block-out-channels", "16", "48",
                              "--layers-per-block", "2", "--text-max-length", "20"])
    unet = UNet2DConditionModel.from_pretrained(tmp_path / "wide", subfolder="unet")
    adapter = MotionAdapter.from_pretrained(tmp_path / "wide" / "motion_adapter")
    assert tuple(unet.config.block_out_channels) == (16, 48) and unet.config.layers_per_block == 2
    assert len(adapter.down_blocks) == 2 and len(adapter.down_blocks[1].motion_modules) == 2
    assert adapter.down_blocks[1].motion_modules[0].proj_in.in_features == 48
    # --text-max-length: the tokenizer pads to it and the text encoder has exactly that many positions.
    from fyc.training.conditioning import encode_text

    tokenizer = CLIPTokenizer.from_pretrained(tmp_path / "wide", subfolder="tokenizer")
    text_encoder = CLIPTextModel.from_pretrained(tmp_path / "wide", subfolder="text_encoder")
    assert tokenizer.model_max_length == text_encoder.config.max_position_embeddings == 20
    assert encode_text(tokenizer, text_encoder, ["move left", ""], "cpu").shape == (2, 20, 32)
