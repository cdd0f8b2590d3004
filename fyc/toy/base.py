"""The pretrained toy base: a text-to-video FollowYourClickUNet (every FYC condition off, ``experiment=toy_base``)
split back into the SD-1.5 + AnimateDiff folder layout, so FYC fine-tunes load it exactly as they load real weights.

``<out>/unet`` (``UNet2DConditionModel``), ``<out>/motion_adapter`` (``MotionAdapter``), ``<out>/vae``,
``<out>/text_encoder``, ``<out>/tokenizer`` (copied from the components the base was trained with). A fine-tune
composes them with ``FollowYourClickUNet.from_unet2d`` (``fyc.models.loading.load_fyc_unet``): spatial layers and
motion modules from the base, the mask / first-frame ``conv_in`` channels, MA and strength embedding zero-initialised.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import torch
from diffusers import MotionAdapter, UNet2DConditionModel

BASE_SUBFOLDERS = ("unet", "motion_adapter", "vae", "text_encoder", "tokenizer")


def split_motion_unet_state(state: dict[str, torch.Tensor], unet: UNet2DConditionModel,
                            adapter: MotionAdapter) -> tuple[dict, dict]:
    """Split a (FollowYourClick / UNetMotion) state dict into ``unet``'s and ``adapter``'s state dicts.

    Key names coincide (diffusers' motion blocks keep the 2D blocks' layers and the adapter's ``motion_modules``);
    ``conv_in.weight`` keeps its first ``unet.config.in_channels`` input channels (the noisy latent).
    Raises ValueError naming keys the base lacks, shape mismatches, or trained FYC layers that would be dropped.
    """
    unet_state, adapter_state = {}, {}
    problems = []
    for target, module in ((unet_state, unet), (adapter_state, adapter)):
        # Fixed buffers (the motion modules' sinusoidal position table) are not in training checkpoints.
        buffers = {name for name, _ in module.named_buffers()}
        for key, ref in module.state_dict().items():
            if key not in state:
                if key in buffers:
                    target[key] = ref
                else:
                    problems.append(f"missing {key}")
                continue
            value = state[key]
            if key == "conv_in.weight":
                value = value[:, : ref.shape[1]]
            if tuple(value.shape) != tuple(ref.shape):
                problems.append(f"{key}: {tuple(value.shape)} vs {tuple(ref.shape)}")
                continue
            target[key] = value.to(ref.dtype).contiguous()
    used = set(unet_state) | set(adapter_state)
    extra = sorted(k for k in state if k not in used)
    if extra:
        problems.append(f"weights with no place in the SD layout (was an FYC condition on?): {extra[:5]} "
                        f"({len(extra)})")
    if problems:
        raise ValueError("cannot split the base into UNet2DConditionModel + MotionAdapter: " + "; ".join(problems[:8]))
    return unet_state, adapter_state


def export_toy_base(unet_state: dict[str, torch.Tensor], components: str | os.PathLike, out: str | os.PathLike,
                    dtype: torch.dtype = torch.float32, card: dict | None = None) -> Path:
    """Write the base in the SD layout to ``out`` (atomically: a temporary sibling, then renamed).

    ``unet_state``: the trained text-to-video UNet's weights (``fyc.training.module.read_unet_state_dict``);
    ``components``: the folder it was trained from (``make_toy_components.py``), giving the configs, the VAE, text
    encoder and tokenizer; ``dtype``: of the saved UNet and adapter (float16 halves the size); ``card``: written to
    ``base.json`` (how it was made).
    """
    components, out = Path(components), Path(out)
    unet = UNet2DConditionModel.from_pretrained(components, subfolder="unet")
    adapter = MotionAdapter.from_pretrained(components / "motion_adapter")
    unet_weights, adapter_weights = split_motion_unet_state(unet_state, unet, adapter)
    unet.load_state_dict(unet_weights)
    adapter.load_state_dict(adapter_weights)
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    unet.to(dtype).save_pretrained(tmp / "unet", safe_serialization=True)
    adapter.to(dtype).save_pretrained(tmp / "motion_adapter", safe_serialization=True)
    for name in ("vae", "text_encoder", "tokenizer"):
        shutil.copytree(components / name, tmp / name)
    if (components / "toy_components.json").is_file():
        shutil.copy(components / "toy_components.json", tmp / "toy_components.json")
    if card is not None:
        (tmp / "base.json").write_text(json.dumps(card, indent=2))
    if out.exists():
        shutil.rmtree(out)
    os.replace(tmp, out)
    return out
