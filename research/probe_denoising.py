"""One-step denoising error of a trained pipeline by noise level, next to copying its conditioning
(fyc/research/denoising.py). Tells undertraining from a sampler problem: if the x0 error at a timestep is above the
"copy" column the model has not learned to use its first-frame input there, and a sampled video picks up noise at
those steps whatever the sampler does.

    python research/probe_denoising.py --pipeline outputs/toy_study/runs/full/pipeline \
        --csv outputs/toy_study/toy/val.csv --frames 8 --resolution 32 --out outputs/toy_study/denoising

Writes ``<out>/denoising.json`` and ``<out>/denoising.md`` and prints the table.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from tqdm import tqdm

from fyc.data import WebVidDataset
from fyc.research.denoising import DEFAULT_TIMESTEPS, denoising_errors, denoising_table, merge_rows, prompt_variant
from fyc.pipelines import FollowYourClickPipeline


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pipeline", required=True, help="an exported pipeline folder (train.py's pipeline_dir)")
    parser.add_argument("--csv", required=True, help="a WebVid-format CSV of clips to noise (e.g. the toy val.csv)")
    parser.add_argument("--video-root", default=None, help="default: the CSV's folder")
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--resolution", type=int, default=256)
    parser.add_argument("--clips", type=int, default=16, help="first N clips of the CSV")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--timesteps", type=int, nargs="+", default=list(DEFAULT_TIMESTEPS))
    parser.add_argument("--motion-labels", default="flow",
                        help="mask and strength of each clip: 'flow' (Eq. 2 on the fly) or a sidecar parquet, e.g. the "
                        "object-mask one research/toy_study.py trains on (annotate_motion.py --start first --mask-file)")
    parser.add_argument("--prompt", default="given", choices=["given", "opposite", "empty"],
                        help="the short prompt as is, with left/right/up/down swapped, or empty (does the model read "
                        "the direction from the text?)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()

    pipeline = FollowYourClickPipeline.from_pretrained(args.pipeline).to(args.device)
    dataset = WebVidDataset(args.csv, args.video_root, resolution=args.resolution, num_frames=args.frames,
                            frame_stride=1, start="first", motion_labels=args.motion_labels, seed=args.seed)
    n = min(args.clips, len(dataset))
    loader = torch.utils.data.DataLoader(torch.utils.data.Subset(dataset, range(n)), batch_size=args.batch)
    per_batch, sizes = [], []
    for i, batch in enumerate(tqdm(loader, desc="probe", unit="batch")):
        batch["short_prompt"] = prompt_variant(batch["short_prompt"], args.prompt)
        per_batch.append(denoising_errors(pipeline, batch, args.timesteps, seed=args.seed + i))
        sizes.append(batch["pixel_values"].shape[0])
    rows = merge_rows(per_batch, sizes)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "denoising.json").write_text(json.dumps({"settings": vars(args), "num_clips": n, "rows": rows}, indent=2))
    table = denoising_table(rows)
    (out / "denoising.md").write_text(f"# One-step denoising error ({n} clips of {args.csv})\n\n"
                                      f"Latent MSE; `{args.pipeline}`; prompt: {args.prompt}.\n\n{table}\n")
    print(table)
    print(f"results: {out / 'denoising.json'}")


if __name__ == "__main__":
    main()
