"""Turn a training checkpoint into a folder that inference loads (safetensors, diffusers layout).

python scripts/export.py --ckpt logs/paper_stage2/checkpoints/last.ckpt --out exports/fyc_unet
python scripts/export.py --ckpt CKPT --out exports/fyc_pipeline --pipeline          # + VAE, text encoder, scheduler
python scripts/export.py --ckpt CKPT --out DIR --weights raw                        # not the EMA weights
python scripts/export.py --ckpt CKPT --out DIR --set model.unet.pretrained_model_name_or_path=/new/sd15
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("PROJECT_ROOT", str(Path(__file__).resolve().parents[1]))


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ckpt", required=True, help="Lightning checkpoint written by train.py")
    parser.add_argument("--out", required=True, help="output folder (replaced atomically)")
    parser.add_argument("--pipeline", action="store_true", help="export the full FollowYourClickPipeline folder")
    parser.add_argument("--weights", choices=("ema", "raw"), default="ema",
                        help="EMA weights when the checkpoint has them (default), or the raw trained weights")
    parser.add_argument("--config", default=None, help="the run's config.yaml, for checkpoints without a stored one")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a key of the stored run config (repeatable)")
    args = parser.parse_args(argv)
    if not Path(args.ckpt).is_file():
        parser.error(f"--ckpt {args.ckpt}: no such file")

    from fyc.training.checkpoint_io import UnsafeCheckpointError
    from fyc.training.export import export_checkpoint

    try:
        out = export_checkpoint(args.ckpt, args.out, what="pipeline" if args.pipeline else "unet",
                                weights=args.weights, overrides=args.overrides, config=args.config)
    except UnsafeCheckpointError as error:  # a crafted or foreign pickle: refused, nothing of it ran
        parser.exit(2, f"error: {error}\n")
    print(f"exported {'pipeline' if args.pipeline else 'unet'}: {out}")
    return out


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
