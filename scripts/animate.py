"""Animate the clicked object(s) of an image with a short motion prompt.

One object:
    python scripts/animate.py --model <pipeline dir> --image img.png --click 20,14 [--click 22,15]
        [--negative-click 3,3] --prompt "move left" --strength 4 --out video.mp4
Several objects, each with its own clicks, prompt and optional strength ("CLICKS|PROMPT[|STRENGTH]", clicks
separated by ";", a leading "!" marks a negative click):
    python scripts/animate.py --model DIR --image img.png --region "20,14|move left|4" \
        --region "50,40;52,44;!60,60|move up" --strength 4 --out video.mp4
Options: --mask mask.png (instead of clicks), --sam <hub id or folder> (SAM segmenter; default: the offline
region-growing fallback, reported as such), --steps 25 --guidance 7.5 --seed 0 --frames 16 --fps 8,
--side-by-side (also <out>_side_by_side.mp4: input with mask overlay | video), --gif (also <out>.gif).
Prints "mask: ...", "segmenter: ..." and "video: <path>" lines.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from fyc.data.video_io import write_video
from fyc.pipelines import FollowYourClickPipeline, Region, load_segmenter
from fyc.pipelines.visualize import side_by_side
from fyc.toy.default_model import resolve_model


def parse_click(text: str) -> tuple[float, float]:
    try:
        x, y = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"a click is X,Y pixel coordinates, got {text!r}") from None
    return x, y


def parse_region(text: str) -> Region:
    """``"X,Y[;X,Y;!X,Y...]|PROMPT[|STRENGTH]"`` → Region (``!`` = negative click)."""
    parts = text.split("|")
    if len(parts) not in (2, 3) or not parts[0].strip():
        raise argparse.ArgumentTypeError(f'--region expects "CLICKS|PROMPT[|STRENGTH]", got {text!r}')
    clicks, negative = [], []
    for item in filter(None, (p.strip() for p in parts[0].split(";"))):
        (negative if item.startswith("!") else clicks).append(parse_click(item.lstrip("!")))
    if not clicks:
        raise argparse.ArgumentTypeError(f"--region needs at least one positive click, got {text!r}")
    try:
        strength = float(parts[2]) if len(parts) == 3 and parts[2].strip() else None
    except ValueError:
        raise argparse.ArgumentTypeError(f"--region strength must be a number, got {parts[2]!r}") from None
    return Region(prompt=parts[1].strip(), clicks=clicks, negative_clicks=negative or None, strength=strength)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None,
                        help="FollowYourClickPipeline folder or hub id (train.py exports one); "
                             "default: the shipped toy model (assets/toy_fyc)")
    parser.add_argument("--image", required=True)
    parser.add_argument("--click", type=parse_click, action="append", default=[], help="X,Y (repeatable)")
    parser.add_argument("--negative-click", type=parse_click, action="append", default=[], help="X,Y (repeatable)")
    parser.add_argument("--mask", default=None, help="mask image (non-zero = animate) instead of clicks")
    parser.add_argument("--region", type=parse_region, action="append", default=[],
                        help='"CLICKS|PROMPT[|STRENGTH]" per object (repeatable; replaces --click/--prompt)')
    parser.add_argument("--prompt", default=None, help='short motion prompt, e.g. "move left"')
    parser.add_argument("--negative-prompt", default=None)
    parser.add_argument("--strength", type=float, default=None, help="px per frame pair (the training label unit)")
    parser.add_argument("--sam", default=None, help="SAM hub id or folder (SamModel + SamProcessor); "
                                                    "default: region-growing fallback")
    parser.add_argument("--out", required=True, help=".mp4 or .gif")
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--guidance", type=float, default=7.5)
    parser.add_argument("--image-guidance", type=float, default=None)
    parser.add_argument("--guidance-interval", type=float, nargs=2, default=None, metavar=("T_MIN", "T_MAX"),
                        help="guidance only at timesteps in [T_MIN, T_MAX] (0-1000); default: every step")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--fps", type=float, default=8.0)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--side-by-side", action="store_true", help="also write <out>_side_by_side with the mask")
    parser.add_argument("--gif", action="store_true", help="also write a .gif next to the output")
    return parser


def main(argv: list[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    where = sum(map(bool, (args.click, args.mask, args.region)))
    if where != 1:
        parser.error("give exactly one of --click (with --prompt), --mask (with --prompt) or --region")
    if not args.region and args.prompt is None:
        parser.error("--prompt is required with --click / --mask")

    image = np.asarray(Image.open(args.image).convert("RGB"))
    pipeline = FollowYourClickPipeline.from_pretrained(resolve_model(args.model)).to(args.device)
    pipeline.set_progress_bar_config(leave=False)
    segmenter = load_segmenter(args.sam, device=args.device)
    if args.region:
        call = dict(regions=args.region)
    elif args.mask:
        call = dict(mask=np.asarray(Image.open(args.mask).convert("L")) > 0, prompt=args.prompt)
    else:
        call = dict(clicks=args.click, negative_clicks=args.negative_click or None, prompt=args.prompt)
    try:
        out = pipeline(image, **call, strength=args.strength, num_frames=args.frames,
                       num_inference_steps=args.steps, guidance_scale=args.guidance,
                       image_guidance_scale=args.image_guidance, guidance_interval=args.guidance_interval,
                       negative_prompt=args.negative_prompt,
                       generator=torch.Generator().manual_seed(args.seed), segmenter=segmenter)
    except ValueError as error:
        parser.error(str(error))
    sizes = ", ".join(str(int(m.sum())) for m in out.masks[0])
    print(f"mask: {sizes} px in {out.masks.shape[1]} region(s)")
    print(f"segmenter: {out.segmenter or 'none (mask given)'}"
          + (" — the offline fallback; pass --sam for natural images" if segmenter.is_fallback and out.segmenter
             else ""))
    frames = (out.frames[0] * 255).round().astype(np.uint8)
    path = Path(args.out)
    write_video(path, frames, fps=args.fps)
    print(f"video: {path}")
    if args.side_by_side:
        sbs = path.with_name(path.stem + "_side_by_side" + path.suffix)
        write_video(sbs, side_by_side(frames, out.masks[0], image), fps=args.fps)
        print(f"side_by_side: {sbs}")
    if args.gif and path.suffix.lower() != ".gif":
        gif = write_video(path.with_suffix(".gif"), frames, fps=args.fps)
        print(f"gif: {gif}")


if __name__ == "__main__":
    main()
