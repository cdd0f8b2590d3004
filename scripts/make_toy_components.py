"""Write the tiny random stand-ins for SD-1.5 + AnimateDiff (toy world) in diffusers folder layout.

python scripts/make_toy_components.py --out data/toy/components
python scripts/make_toy_components.py --out /tmp/wide --block-out-channels 64 128   # a wider UNet + motion adapter
"""
from __future__ import annotations

import argparse

from fyc.toy.world import TOY_VOCABULARY
from fyc.toy.components import ToyComponentsConfig, build_toy_components


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="data/toy/components")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--vae-downsample-factor", type=int, default=2)
    defaults = ToyComponentsConfig()
    parser.add_argument("--block-out-channels", type=int, nargs="+", default=list(defaults.block_out_channels),
                        help="UNet / motion-adapter widths, one per resolution level (multiples of 8)")
    parser.add_argument("--layers-per-block", type=int, default=defaults.layers_per_block)
    parser.add_argument("--text-max-length", type=int, default=defaults.text_max_length,
                        help="tokens per prompt (tokenizer model_max_length = text encoder positions)")
    args = parser.parse_args(argv)
    config = ToyComponentsConfig(vae_downsample_factor=args.vae_downsample_factor,
                                 block_out_channels=tuple(args.block_out_channels),
                                 layers_per_block=args.layers_per_block, text_max_length=args.text_max_length)
    root = build_toy_components(args.out, TOY_VOCABULARY, config, seed=args.seed)
    print(f"components: {root}")


if __name__ == "__main__":
    main()
