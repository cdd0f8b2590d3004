"""The images of docs/results.md, from what the repo's commands write (fyc/research/figures.py draws them).

    # frames and a GIF of true toy videos (a benchmark manifest), the clicked object outlined in frame 0
    python research/make_figures.py frames --manifest outputs/demo/toy/benchmark/benchmark.jsonl \
        --items 4 --out docs/assets/toy_world
    # a model's videos next to the true ones (an evaluation's generated.jsonl)
    python research/make_figures.py frames --manifest outputs/demo/eval/generated.jsonl --kinds true sampled \
        --items 4 --out docs/assets/demo_samples
    # a strength-sweep manifest (each item at 0.5x, 1x, 2x its strength label; rows of an item share a seed)
    python research/make_figures.py sweep --manifest outputs/demo/toy/benchmark/benchmark.jsonl \
        --out outputs/demo/strength_sweep.jsonl
    # requested vs measured strength, one panel per evaluation of a sweep manifest
    python research/make_figures.py sweep-plot --eval "demo model=outputs/demo/eval_sweep" \
        --eval "true videos=outputs/demo/eval_sweep_oracle" --out docs/assets/strength_sweep.png

Prints one "wrote: <path>" line per file.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from PIL import Image

from fyc.eval.manifest import load_manifest, write_manifest
from fyc.research.figures import frame_strip, grid_gif, label_rows, read_per_sample, strength_sweep_plot
from fyc.research.toy_study import strength_sweep_items


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    frames = commands.add_parser("frames", help="PNG strip + GIF of a manifest's videos")
    frames.add_argument("--manifest", required=True)
    frames.add_argument("--out", required=True, help="path without suffix: writes <out>.png and <out>.gif")
    frames.add_argument("--items", type=int, default=4, help="the manifest's first N items")
    frames.add_argument("--kinds", nargs="+", default=["true"], choices=["true", "sampled"])
    frames.add_argument("--frames", type=int, nargs="+", default=[0, 2, 4, 6, 7], help="frame indices of the strip")
    frames.add_argument("--size", type=int, default=32, help="frame side the videos are read at")
    frames.add_argument("--scale", type=int, default=3, help="nearest-neighbour upscaling")
    sweep = commands.add_parser("sweep", help="a strength-sweep manifest")
    sweep.add_argument("--manifest", required=True)
    sweep.add_argument("--out", required=True)
    sweep.add_argument("--factors", type=float, nargs="+", default=[0.5, 1.0, 2.0])
    plot = commands.add_parser("sweep-plot", help="requested vs measured strength")
    plot.add_argument("--eval", action="append", required=True, metavar="NAME=EVAL_DIR",
                      help="an evaluate.py output folder of a sweep manifest (repeatable)")
    plot.add_argument("--out", required=True)
    args = parser.parse_args()

    if args.command == "frames":
        items = load_manifest(args.manifest)[:args.items]
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        strip = frame_strip(items, args.frames, size=args.size, scale=args.scale, kinds=args.kinds)
        labels = [f"{item.prompt} ({kind})" if len(args.kinds) > 1 else str(item.prompt)
                  for item in items for kind in args.kinds]
        Image.fromarray(label_rows(strip, labels)).save(out.with_suffix(".png"), optimize=True)
        print(f"wrote: {out.with_suffix('.png')}")
        gif = grid_gif(items, out.with_suffix(".gif"), num_frames=max(args.frames) + 1, size=args.size,
                       scale=args.scale, kinds=args.kinds)
        print(f"wrote: {gif}")
    elif args.command == "sweep":
        path = write_manifest(args.out, strength_sweep_items(load_manifest(args.manifest), args.factors))
        print(f"wrote: {path}")
    else:
        runs = {}
        for spec in args.eval:
            name, sep, folder = spec.partition("=")
            if not sep:
                parser.error(f"--eval expects NAME=EVAL_DIR, got {spec!r}")
            csv_path = Path(folder) / "per_sample.csv"
            if not csv_path.is_file():
                parser.error(f"no per_sample.csv in {folder} (run evaluate.py mode=all on a sweep manifest first)")
            runs[name] = read_per_sample(csv_path)
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        print(f"wrote: {strength_sweep_plot(runs, args.out)}")


if __name__ == "__main__":
    main()
