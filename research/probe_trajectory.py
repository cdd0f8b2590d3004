"""Where along the sampling trajectory does a sampled video get (or lose) its prompted direction?
(fyc/research/trajectory.py)

For each manifest item (e.g. the toy study's translate-only held-out set) the pipeline samples as evaluate.py does
(item k seeded ``seed + k``, a strength sweep's rows their first row's seed), and the clean-video estimate of every
step is decoded and scored like a sampled video: direction accuracy / cosine against the prompt, in- and
out-of-region flow, leakage, and the pixel MSE of frames 1.. to the true video (next to copying frame 0).

    python research/probe_trajectory.py --pipeline outputs/toy_study/runs/full/pipeline \
        --manifest outputs/toy_study/directional/benchmark/benchmark.jsonl --out outputs/toy_study/trajectory

Writes ``<out>/trajectory.json``, ``<out>/trajectory.md`` (the per-step table) and ``<out>/trajectory.png`` (the
estimates of the first items at a few steps, every 2nd frame) and prints the table.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from fyc.data.video_io import read_video
from fyc.eval.manifest import load_manifest
from fyc.eval.regional import DIRECTION_COS_THRESHOLD, direction_cosine, regional_motion_metrics
from fyc.eval.score import prompted_direction
from fyc.research.trajectory import x0_trajectory
from fyc.motion import FlowEstimator
from fyc.pipelines import FollowYourClickPipeline
from fyc.pipelines.generate import item_mask, item_seeds, load_image_uint8

MEAN_KEYS = ("direction_accuracy", "direction_cosine", "object_speed", "out_region_magnitude",
             "motion_leakage", "mse_to_truth")


def to_uint8(frames: torch.Tensor) -> np.ndarray:
    """float (F, H, W, 3) in [0, 1] → uint8, as a written video holds it."""
    return (frames.clamp(0, 1).numpy() * 255).round().astype(np.uint8)


def score(video: np.ndarray, mask: np.ndarray, direction: str, truth: np.ndarray | None, flow, args) -> dict:
    """video: uint8 (F, H, W, 3). → the per-video numbers averaged in the table."""
    m = regional_motion_metrics(video, mask, flow, dilate_px=args.dilate_px, region=args.region)
    cosine = direction_cosine(direction, (m["direction_dx"], m["direction_dy"]))
    row = {"direction_accuracy": float(cosine >= DIRECTION_COS_THRESHOLD), "direction_cosine": cosine,
           **{k: m[k] for k in ("object_speed", "out_region_magnitude", "motion_leakage")}}
    row["mse_to_truth"] = None if truth is None else float(((video[1:].astype(np.float64) - truth[1:]) ** 2).mean())
    return row


def mean_rows(rows: list[dict]) -> dict:
    return {k: (float(np.mean([r[k] for r in rows])) if rows[0][k] is not None else None) for k in MEAN_KEYS}


def table(per_step: list[dict], final: dict, copy_mse: float | None) -> str:
    def fmt(x):
        return "–" if x is None else f"{x:.3f}"

    lines = ["| step | t | direction acc. | direction cos | in-region flow | out-region flow | leakage "
             "| MSE to truth |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in per_step + [final]:
        lines.append(f"| {r['step']} | {r['timestep']} | " + " | ".join(fmt(r[k]) for k in MEAN_KEYS) + " |")
    if copy_mse is not None:
        lines.append(f"\nCopying frame 0 into every frame: MSE to truth {copy_mse:.3f} (0-255 pixels, frames 1..).")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pipeline", required=True, help="an exported pipeline folder (train.py's pipeline_dir)")
    parser.add_argument("--manifest", required=True, help="benchmark jsonl whose prompts name a direction")
    parser.add_argument("--items", type=int, default=None, help="first N directional items (default: all)")
    parser.add_argument("--num-frames", type=int, default=8)
    parser.add_argument("--num-inference-steps", type=int, default=25)
    parser.add_argument("--guidance-scale", type=float, default=7.5)
    parser.add_argument("--guidance-interval", type=float, nargs=2, default=None, metavar=("T_MIN", "T_MAX"),
                        help="guidance only at timesteps in [T_MIN, T_MAX] (the pipeline's guidance_interval)")
    parser.add_argument("--eta", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=0,
                        help="item k of the manifest uses seed + k, as evaluate.py (fyc.pipelines.generate.item_seeds)")
    parser.add_argument("--flow", default="dis", help="flow backend of the metrics (fyc.motion.FlowEstimator)")
    parser.add_argument("--region", default="tracked", help="allowed region for leakage (fyc.eval.regional)")
    parser.add_argument("--dilate-px", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()

    manifest = load_manifest(args.manifest)
    items = [(item, item_seed) for item, item_seed in zip(manifest, item_seeds(manifest, args.seed))
             if prompted_direction(item.prompt)]
    items = items[:args.items]
    if not items:
        raise ValueError(f"{args.manifest}: no item's prompt names a direction (left/right/up/down)")
    pipeline = FollowYourClickPipeline.from_pretrained(args.pipeline).to(args.device)
    pipeline.set_progress_bar_config(disable=True)
    flow = FlowEstimator(args.flow, device=args.device)
    per_step_rows: dict[int, list[dict]] = {}
    timesteps, finals, copies, strips = {}, [], [], []
    for item, item_seed in tqdm(items, desc="trajectory", unit="video"):
        image = load_image_uint8(item.image)
        mask = item_mask(item, image)
        direction = prompted_direction(item.prompt)
        truth = None if item.reference_video is None else \
            read_video(item.reference_video, range(args.num_frames), size=image.shape[:2]).astype(np.float64)
        steps, video = x0_trajectory(pipeline, image, mask, item.prompt, item.strength, num_frames=args.num_frames,
                                     num_inference_steps=args.num_inference_steps, guidance_scale=args.guidance_scale,
                                     guidance_interval=args.guidance_interval, eta=args.eta,
                                     generator=torch.Generator().manual_seed(item_seed))
        for s in steps:
            per_step_rows.setdefault(s["step"], []).append(score(to_uint8(s["x0"]), mask, direction, truth, flow, args))
            timesteps[s["step"]] = s["timestep"]
        finals.append(score(to_uint8(video), mask, direction, truth, flow, args))
        if truth is not None:
            copies.append(float(((truth[1:] - truth[:1]) ** 2).mean()))
        if len(strips) < 3:
            shown = [steps[i] for i in sorted({0, len(steps) // 4, len(steps) // 2, len(steps) - 1})]
            strips.append([to_uint8(s["x0"]) for s in shown])

    per_step = [{"step": s, "timestep": timesteps[s], **mean_rows(rows)} for s, rows in sorted(per_step_rows.items())]
    final = {"step": "video", "timestep": "–", **mean_rows(finals)}
    copy_mse = float(np.mean(copies)) if copies else None
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "trajectory.json").write_text(json.dumps({"settings": vars(args), "num_items": len(items),
                                                     "per_step": per_step, "final": final,
                                                     "copy_mse_to_truth": copy_mse}, indent=2))
    text = table(per_step, final, copy_mse)
    (out / "trajectory.md").write_text(
        f"# Clean-video estimates along the sampling trajectory\n\n`{args.pipeline}` on {len(items)} items of "
        f"`{args.manifest}`; flow {args.flow}, region {args.region}; guidance {args.guidance_scale}, interval "
        f"{args.guidance_interval}.\n\n{text}\n")
    from PIL import Image

    rows = [np.concatenate(list(x0[::2]), 1) for strip in strips for x0 in strip]
    grid = np.concatenate(rows, 0)
    Image.fromarray(grid).resize((grid.shape[1] * 3, grid.shape[0] * 3), Image.NEAREST).save(out / "trajectory.png")
    print(text)
    print(f"results: {out / 'trajectory.json'}")


if __name__ == "__main__":
    main()
