"""The toy-world demo behind `make demo`: data → fine-tune FYC from the pretrained toy base → animate a clicked
held-out object → preview → evaluate.

As in the paper, Follow-Your-Click is fine-tuned from a pretrained text-to-video model: the toy base shipped in
``assets/toy_base`` (``experiment=toy_from_base``, ``pretrained=toy_base``). Every step is a documented command of
its own; this script only runs them in order and prints them. Ends with `video:`, `preview:` (upscaled input +
clicked mask + animation with the prompt under it, mp4 + gif) and `metrics:` lines.
"""
import argparse
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from fyc.steps import ROOT, run  # noqa: E402  (one documented step: echo it, run it, stop on failure)

# The base's world: 8-frame videos of translating objects whose start position does not give the direction away.
WORLD_OPTIONS = ["--frames", "8", "--motion-kinds", "translate", "--balanced-translation"]


def printed(output: str, key: str) -> str:
    for line in output.splitlines():
        if line.startswith(f"{key}: "):
            return line.split(": ", 1)[1].strip()
    raise SystemExit(f"expected a '{key}: <path>' line in the step's output")


def write_preview(video: Path, image: Path, click: tuple[int, int], prompt: str, strength: float, scale: int,
                  fps: float) -> tuple[Path, Path]:
    """Upscaled [input + clicked mask | animation] with the prompt under it → (<video>_preview.mp4, .gif)."""
    from fyc.data.video_io import read_video, write_video
    from fyc.pipelines.click_to_mask import load_segmenter
    from fyc.toy.preview import captioned_preview

    frames = read_video(str(video))
    rgb = np.asarray(Image.open(image).convert("RGB"))
    mask = load_segmenter(None)(rgb, [click])  # the mask animate.py's click gave (same offline segmenter)
    preview = captioned_preview(frames, mask, rgb, f'"{prompt}", strength {strength:.2f}', scale=scale, clicks=[click])
    mp4 = write_video(video.with_name(video.stem + "_preview.mp4"), preview, fps=fps)
    gif = write_video(video.with_name(video.stem + "_preview.gif"), preview, fps=fps)
    return Path(mp4), Path(gif)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="outputs/demo")
    parser.add_argument("--train-videos", type=int, default=160)
    parser.add_argument("--val-videos", type=int, default=16, help="held-out items (all translate: direction acc.)")
    parser.add_argument("--steps", type=int, default=600, help="fine-tuning steps")
    parser.add_argument("--base", default=None, help="toy base folder (default: the shipped assets/toy_base)")
    parser.add_argument("--preview-scale", type=int, default=8, help="nearest-neighbour upscaling of the preview")
    args = parser.parse_args()
    out = (ROOT / args.out).resolve()
    toy = out / "toy"
    py = sys.executable

    run([py, "scripts/make_toy_webvid.py", "--out", str(toy), "--train", str(args.train_videos),
         "--val", str(args.val_videos), "--seed", "0", *WORLD_OPTIONS])
    train_dir = out / "train"
    base = [f"pretrained.model={Path(args.base).resolve()}"] if args.base else []
    train_out = run([py, "train.py", "experiment=toy_from_base", *base, f"paths.toy_root={toy}",
                     f"trainer.max_steps={args.steps}", f"hydra.run.dir={train_dir}"])
    pipeline_dir = printed(train_out, "pipeline_dir")
    bench_out = run([py, "scripts/make_toy_benchmark.py", "--toy-root", str(toy), "--split", "val",
                     "--out", str(toy / "benchmark")])
    manifest = Path(printed(bench_out, "manifest"))

    # Click the centre of the first held-out item's moving object, as a user would.
    first = json.loads(manifest.read_text().splitlines()[0])
    image = manifest.parent / first["image"]
    mask = np.asarray(Image.open(manifest.parent / first["mask"]).convert("L")) > 0
    ys, xs = np.nonzero(mask)
    pick = np.argmin((xs - xs.mean()) ** 2 + (ys - ys.mean()) ** 2)  # an object pixel nearest the centroid
    click = (int(xs[pick]), int(ys[pick]))
    video = out / "animation.mp4"
    run([py, "scripts/animate.py", "--model", pipeline_dir, "--image", str(image), "--click", f"{click[0]},{click[1]}",
         "--prompt", first["prompt"], "--strength", str(first["strength"]), "--frames", "8", "--out", str(video),
         "--side-by-side"])
    preview_mp4, preview_gif = write_preview(video, image, click, first["prompt"], float(first["strength"]),
                                             args.preview_scale, fps=4)
    eval_out = run([py, "evaluate.py", "mode=all", f"manifest={manifest}", f"pipeline_dir={pipeline_dir}",
                    f"hydra.run.dir={out / 'eval'}", f"output_dir={out / 'eval'}"])
    results = printed(eval_out, "results")
    summary = json.loads(Path(results).read_text())
    print(f"\nvideo: {video}")
    print(f"preview: {preview_mp4} {preview_gif}")
    print(f"metrics: {results}")
    for key in ("direction_accuracy", "i1_mse"):
        value = _find(summary, key)
        if value is not None:
            print(f"  {key}: {value:.3f}")


def _find(tree, key: str):
    """The first numeric value stored under ``key`` anywhere in a nested results dict (None if absent)."""
    if isinstance(tree, dict):
        for k, v in tree.items():
            if k == key and isinstance(v, (int, float)):
                return float(v)
            found = _find(v, key)
            if found is not None:
                return found
    return None


if __name__ == "__main__":
    main()
