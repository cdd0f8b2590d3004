"""Animate the clicked object(s) of an image with a short motion prompt.

One object:
    python scripts/animate.py --model <pipeline dir> --image img.png --click 20,14 [--click 22,15]
        [--negative-click 3,3] --prompt "move left" --strength 4 --out video.mp4
Several objects, each with its own clicks, prompt and optional strength ("CLICKS|PROMPT[|STRENGTH]", clicks
separated by ";", a leading "!" marks a negative click):
    python scripts/animate.py --model DIR --image img.png --region "20,14|move left|4" \
        --region "50,40;52,44;!60,60|move up" --strength 4 --out video.mp4
Options: --mask mask.png (instead of clicks), --sam <hub id or folder> (SAM segmenter; default: the offline
region-growing fallback, reported as such), --steps 25 --guidance 7.5 --seed 0 --frames 16, --frame-stride
(stride-conditioned models; default: the training stride), --fps (default: the training clips' effective fps),
--side-by-side (also <out>_side_by_side.mp4: input with mask overlay | video), --gif (also <out>.gif).
Without --strength a strength-conditioned model samples at the median strength of its training clips (recorded in
the exported pipeline). Prints "mask: ...", "segmenter: ...", "strength: ..." and "video: <path>" lines.
"""
from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from fyc.data.video_io import write_video
from fyc.pipelines import FollowYourClickPipeline, Region, load_segmenter
from fyc.pipelines.pipeline_fyc import check_number
from fyc.pipelines.visualize import side_by_side
from fyc.toy.default_model import resolve_model as default_model


VIDEO_SUFFIXES = (".mp4", ".gif")
#: options whose value may start with "-" (a click such as -5,-3 must reach the parser as a value, to be rejected
#: with a clear message rather than read as an unknown option)
VALUE_OPTIONS = ("--click", "--negative-click", "--region", "--strength", "--guidance", "--image-guidance",
                 "--frame-stride", "--fps")


def parse_click(text: str) -> tuple[float, float]:
    try:
        x, y = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"a click is X,Y pixel coordinates, got {text!r}") from None
    if not (math.isfinite(x) and math.isfinite(y)) or x < 0 or y < 0:
        raise argparse.ArgumentTypeError(f"click {text!r}: X and Y must be finite and >= 0 (pixels from the "
                                         f"image's top-left corner)")
    return x, y


def non_negative(name: str, positive: bool = False):
    """argparse type: a finite number >= 0 (> 0 with ``positive``), the error naming the option."""

    def parse(text: str) -> float:
        try:
            check_number(name, text, positive=positive)  # the pipeline's own check, same message
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None
        return float(text)

    return parse


def join_option_values(argv: list[str]) -> list[str]:
    """``["--click", "-5,-3"]`` → ``["--click=-5,-3"]`` for :data:`VALUE_OPTIONS`, so argparse takes the value."""
    out, i = [], 0
    while i < len(argv):
        if argv[i] in VALUE_OPTIONS and i + 1 < len(argv) and argv[i + 1].startswith("-") \
                and not argv[i + 1].startswith("--"):
            out.append(f"{argv[i]}={argv[i + 1]}")
            i += 2
        else:
            out.append(argv[i])
            i += 1
    return out


def resolve_model(parser: argparse.ArgumentParser, model: str | None) -> str:
    """The pipeline to load: ``--model`` (a folder or hub id), else the shipped toy model; a clear usage error
    when neither exists."""
    if not model:
        try:
            return default_model(None)
        except FileNotFoundError as error:
            parser.error(str(error))
    if (model.startswith((".", "/", "~")) or Path(model).exists()) and not Path(model).expanduser().is_dir():
        parser.error(f"--model {model}: no such folder (expected a FollowYourClickPipeline folder with "
                     f"model_index.json)")
    return str(Path(model).expanduser()) if Path(model).expanduser().is_dir() else model


def check_out(parser: argparse.ArgumentParser, out: str) -> Path:
    """Validate --out before any sampling: a known video suffix and a folder that exists or can be made."""
    path = Path(out)
    if path.suffix.lower() not in VIDEO_SUFFIXES:
        parser.error(f"--out {out}: the file must end in {' or '.join(VIDEO_SUFFIXES)}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        parser.error(f"--out {out}: cannot create its folder ({error})")
    return path


def load_image(parser: argparse.ArgumentParser, image: str) -> np.ndarray:
    if not Path(image).is_file():
        parser.error(f"--image {image}: no such file")
    try:
        return np.asarray(Image.open(image).convert("RGB"))
    except OSError as error:
        parser.error(f"--image {image}: not a readable image ({error})")


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
                        help="FollowYourClickPipeline folder or hub id (train.py exports one)")
    parser.add_argument("--image", default=None)
    parser.add_argument("--click", type=parse_click, action="append", default=[], help="X,Y (repeatable)")
    parser.add_argument("--negative-click", type=parse_click, action="append", default=[], help="X,Y (repeatable)")
    parser.add_argument("--mask", default=None, help="mask image (non-zero = animate) instead of clicks")
    parser.add_argument("--region", type=parse_region, action="append", default=[],
                        help='"CLICKS|PROMPT[|STRENGTH]" per object (repeatable; replaces --click/--prompt)')
    parser.add_argument("--prompt", default=None, help='short motion prompt, e.g. "move left"')
    parser.add_argument("--negative-prompt", default=None)
    parser.add_argument("--strength", type=non_negative("--strength"), default=None,
                        help="px per frame pair (the training label unit); default: the training median")
    parser.add_argument("--sam", default=None, help="SAM hub id or folder (SamModel + SamProcessor); "
                                                    "default: region-growing fallback")
    parser.add_argument("--out", default=None, help=".mp4 or .gif")
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--guidance", type=non_negative("--guidance"), default=7.5)
    parser.add_argument("--image-guidance", type=non_negative("--image-guidance"), default=None)
    parser.add_argument("--guidance-interval", type=float, nargs=2, default=None, metavar=("T_MIN", "T_MAX"),
                        help="guidance only at timesteps in [T_MIN, T_MAX] (0-1000); default: every step")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--fps", type=non_negative("--fps", positive=True), default=None,
                        help="default: the training clips' effective fps recorded in the pipeline (else 8)")
    parser.add_argument("--frame-stride", type=non_negative("--frame-stride", positive=True), default=None,
                        help="for stride-conditioned models; default: the training stride")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--side-by-side", action="store_true", help="also write <out>_side_by_side with the mask")
    parser.add_argument("--gif", action="store_true", help="also write a .gif next to the output")
    return parser


def main(argv: list[str] | None = None) -> None:
    import sys

    parser = build_parser()
    args = parser.parse_args(join_option_values(list(sys.argv[1:] if argv is None else argv)))
    model = resolve_model(parser, args.model)
    if not args.image:
        parser.error("--image is required: the picture to animate (PNG/JPEG)")
    if not args.out:
        parser.error("--out is required: the video to write (.mp4 or .gif)")
    path = check_out(parser, args.out)
    where = sum(map(bool, (args.click, args.mask, args.region)))
    if where != 1:
        parser.error("give exactly one of --click (with --prompt), --mask (with --prompt) or --region")
    if not args.region and args.prompt is None:
        parser.error("--prompt is required with --click / --mask")

    image = load_image(parser, args.image)
    if args.mask and not Path(args.mask).is_file():
        parser.error(f"--mask {args.mask}: no such file")
    pipeline = FollowYourClickPipeline.from_pretrained(model).to(args.device)
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
                       negative_prompt=args.negative_prompt, frame_stride=args.frame_stride,
                       generator=torch.Generator().manual_seed(args.seed), segmenter=segmenter)
    except ValueError as error:
        parser.error(str(error))
    sizes = ", ".join(str(int(m.sum())) for m in out.masks[0])
    print(f"mask: {sizes} px in {out.masks.shape[1]} region(s)")
    print(f"segmenter: {out.segmenter or 'none (mask given)'}"
          + (" — the offline fallback; pass --sam for natural images" if segmenter.is_fallback and out.segmenter
             else ""))
    strengths = ", ".join("none" if v is None else f"{v:g}" for v in out.strengths)
    print(f"strength: {strengths} ({out.strength_reason})")
    fps = args.fps or out.fps or 8.0
    frames = (out.frames[0] * 255).round().astype(np.uint8)
    write_video(path, frames, fps=fps)
    print(f"video: {path}")
    if args.side_by_side:
        sbs = path.with_name(path.stem + "_side_by_side" + path.suffix)
        write_video(sbs, side_by_side(frames, out.masks[0], image), fps=fps)
        print(f"side_by_side: {sbs}")
    if args.gif and path.suffix.lower() != ".gif":
        gif = write_video(path.with_suffix(".gif"), frames, fps=fps)
        print(f"gif: {gif}")


if __name__ == "__main__":
    main()
