"""Animate the clicked object of an image with a short motion prompt.

python scripts/animate.py --model <pipeline dir> --image img.png --click 20,14 --prompt "move left" \
    --strength 4 --out video.mp4 [--steps 25 --guidance 7.5 --seed 0 --frames 16 --side-by-side --gif]
"""
import argparse
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from fyc.data.video_io import write_video
from fyc.pipelines import FollowYourClickPipeline, region_grow_mask


def parse_click(text: str) -> tuple[float, float]:
    try:
        x, y = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--click expects X,Y pixel coordinates, got {text!r}") from None
    return x, y


def side_by_side(frames: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """[input with mask overlay | video] per frame; frames uint8 (F, H, W, 3), mask bool (H, W)."""
    overlay = frames[0].astype(np.float32)
    overlay[mask] = 0.5 * overlay[mask] + 0.5 * np.array([255, 0, 0])
    overlay = np.broadcast_to(overlay.astype(np.uint8), frames.shape)
    return np.concatenate([overlay, frames], axis=2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="FollowYourClickPipeline folder (train.py exports one)")
    parser.add_argument("--image", required=True)
    parser.add_argument("--click", type=parse_click, action="append", required=True, help="X,Y (repeatable)")
    parser.add_argument("--prompt", required=True, help='short motion prompt, e.g. "move left"')
    parser.add_argument("--strength", type=float, default=None, help="px per frame pair (the training label unit)")
    parser.add_argument("--out", required=True, help=".mp4 or .gif")
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--guidance", type=float, default=7.5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--fps", type=float, default=8.0)
    parser.add_argument("--side-by-side", action="store_true", help="also write <out>_side_by_side with the mask")
    parser.add_argument("--gif", action="store_true", help="also write a .gif next to the output")
    args = parser.parse_args()

    image = np.asarray(Image.open(args.image).convert("RGB"))
    mask = region_grow_mask(image, args.click)
    print(f"mask: {int(mask.sum())} px from {len(args.click)} click(s) (segmenter: region-growing fallback)")
    pipeline = FollowYourClickPipeline.from_pretrained(args.model)
    frames = pipeline(image, mask, prompt=args.prompt, strength=args.strength, num_frames=args.frames,
                      num_inference_steps=args.steps, guidance_scale=args.guidance,
                      generator=torch.Generator().manual_seed(args.seed)).frames[0]
    frames = (frames * 255).round().astype(np.uint8)
    out = Path(args.out)
    write_video(out, frames, fps=args.fps)
    print(f"video: {out}")
    if args.side_by_side:
        sbs = out.with_name(out.stem + "_side_by_side" + out.suffix)
        write_video(sbs, side_by_side(frames, mask), fps=args.fps)
        print(f"side_by_side: {sbs}")
    if args.gif and out.suffix != ".gif":
        gif = write_video(out.with_suffix(".gif"), frames, fps=args.fps)
        print(f"gif: {gif}")


if __name__ == "__main__":
    main()
