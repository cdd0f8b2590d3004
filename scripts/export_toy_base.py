"""Export a trained toy base (``train.py experiment=toy_base``) to the SD-1.5 + AnimateDiff folder layout.

python scripts/export_toy_base.py --ckpt <run>/checkpoints/last.ckpt --components <toy>/components --out assets/toy_base

Writes unet/, motion_adapter/ (EMA weights when the checkpoint has them), vae/, text_encoder/, tokenizer/; FYC
fine-tunes load the folder with ``pretrained=toy_base`` (or ``paths.toy_components=<out>``).
"""
from __future__ import annotations

import argparse

import torch

from fyc.toy.base import export_toy_base
from fyc.training.checkpoint_io import load_checkpoint
from fyc.training.module import unet_state_from_checkpoint


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ckpt", required=True, help="training checkpoint of experiment=toy_base")
    parser.add_argument("--components", required=True, help="the make_toy_components.py folder it trained from")
    parser.add_argument("--out", required=True)
    parser.add_argument("--fp16", action="store_true", help="save the UNet and motion adapter in float16")
    parser.add_argument("--raw", action="store_true", help="the raw weights instead of the EMA weights")
    args = parser.parse_args(argv)
    checkpoint = load_checkpoint(args.ckpt)  # weights_only: a crafted checkpoint cannot run code
    card = {"checkpoint_global_step": int(checkpoint.get("global_step", -1)),
            "weights": "raw" if args.raw or "ema" not in checkpoint else "ema"}
    state = unet_state_from_checkpoint(checkpoint, prefer_ema=not args.raw)
    del checkpoint
    out = export_toy_base(state, args.components, args.out, torch.float16 if args.fp16 else torch.float32, card)
    print(f"base: {out}")


if __name__ == "__main__":
    main()
