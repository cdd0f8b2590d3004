"""Write the tiny random stand-ins for SD-1.5 + AnimateDiff (toy world) in diffusers folder layout.

python scripts/make_toy_components.py --out data/toy/components
"""
import argparse

from fyc.data.toy_world import TOY_VOCABULARY
from fyc.toy.components import ToyComponentsConfig, build_toy_components


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="data/toy/components")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--vae-downsample-factor", type=int, default=2)
    args = parser.parse_args()
    config = ToyComponentsConfig(vae_downsample_factor=args.vae_downsample_factor)
    root = build_toy_components(args.out, TOY_VOCABULARY, config, seed=args.seed)
    print(f"components: {root}")


if __name__ == "__main__":
    main()
