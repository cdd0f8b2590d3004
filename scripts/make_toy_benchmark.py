"""Build the toy evaluation manifest from a held-out toy split.

python scripts/make_toy_benchmark.py --toy-root data/toy --split val --out data/toy/benchmark
"""
import argparse

from fyc.toy.benchmark import build_toy_benchmark


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--toy-root", default="data/toy")
    parser.add_argument("--split", default="val")
    parser.add_argument("--out", default="data/toy/benchmark")
    parser.add_argument("--resolution", type=int, default=32, help="must match the model's training resolution")
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--stride", type=int, default=1)
    parser.add_argument("--flow", default="farneback", help="flow backend for the requested-strength labels")
    args = parser.parse_args()
    manifest = build_toy_benchmark(args.toy_root, args.split, args.out, args.resolution, args.frames, args.stride,
                                   args.flow)
    print(f"manifest: {manifest}")


if __name__ == "__main__":
    main()
