"""The toy study: train the full model and its ablations on the toy world, evaluate each on held-out seeds.

    python research/toy_study.py --out outputs/toy_study            # all variants, docs/toy_study.md's setting
    python research/toy_study.py --steps 50 --val-videos 4 ...      # a smoke run
    python research/toy_study.py --out outputs/toy_study_gpu --experiment toy_study_gpu --parallel 5 \
        --train-videos 1000 --val-videos 32                          # one GPU: all five variants train at once

Every step is a documented command of its own (printed as it runs): make_toy_webvid / make_toy_components /
``train.py experiment=toy_study ablation=<variant>`` / make_toy_benchmark / ``evaluate.py`` (on a strength sweep of
the held-out split, and on a translate-only held-out set for direction accuracy). A rerun skips the
trainings and evaluations whose outputs exist (``--fresh`` redoes them). Writes ``<out>/results.json``,
``<out>/report.md`` (the table) and ``<out>/strength_sweep.png``. Metrics: see fyc/research/toy_study.py; the same
metrics on the true toy videos ("oracle") are the floor a perfect model reaches on this benchmark.
"""
from __future__ import annotations

import argparse
import csv
import json
import shlex
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

from fyc.eval.manifest import load_manifest, write_manifest
from fyc.eval.paired import paired_difference
from fyc.eval.score import score_items, summarize
from fyc.steps import ROOT, run
from fyc.research.toy_study import (ablation_table, load_ablations, oracle_items, per_item_spearman,
                                    strength_sweep_items, study_table, verdict_sources)

# variant -> (config overrides, the metric its component exists for, the better direction of that metric), all from
# the ablation_meta blocks of configs/ablation/*.yaml (fyc/research/toy_study.py's load_ablations).
ABLATION_META = load_ablations()
VARIANTS = {name: (a.overrides, a.hurts, a.better) for name, a in ABLATION_META.items()}
ABLATIONS = [name for name, a in ABLATION_META.items() if a.toy_study == "default"]  # the default set
# First seed of the translate-only held-out set: its val seeds (seed + SPLIT_SEED_STRIDE + i) stay clear of the main
# held-out split's as long as that has fewer than 500 videos.
DIRECTIONAL_SEED = 500
# A verdict's metric -> (the evaluation whose per_sample.csv holds it, its column there) for the paired difference.
VERDICT_SOURCES = verdict_sources(ABLATION_META)
# "Measurably worse": the paired difference (same items, same seeds) is beyond this many standard errors.
VERDICT_NUM_SE = 2.0


def read_rows(per_sample_csv: Path) -> list[dict]:
    rows = []
    for row in csv.DictReader(per_sample_csv.open()):
        rows.append({k: (float(v) if k in ("strength", "realised_strength", "object_speed") and v else v)
                     for k, v in row.items()})
    return rows


def sweep_plot(path: Path, per_variant_rows: dict[str, list[dict]], factors: list[float]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(5, 3.6), dpi=120)
    for name, rows in per_variant_rows.items():
        means = [np.mean([r["realised_strength"] for r in rows if float(r["strength_factor"]) == f]) for f in factors]
        ax.plot(factors, means, marker="o", label=name)
    ax.set_xlabel("requested strength / true label")
    ax.set_ylabel("realised strength (px / pair)")
    ax.set_title("toy study: strength sweep (mean over held-out items)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def sample_grid(path: Path, items, eval_dirs: dict[str, Path], num_items: int = 3, every: int = 2) -> None:
    """PNG: per item a row of true frames, then one row per variant (its factor-1 video), every ``every``-th frame."""
    import numpy as np
    from PIL import Image

    from fyc.data.video_io import read_video

    rows = []
    for item in items[:num_items]:
        frames = int(item.extra.get("num_frames", 8))
        height, width = read_size(item.image)
        rows.append(np.concatenate(list(read_video(item.reference_video, range(frames), size=(height, width))[::every]), 1))
        for eval_dir in eval_dirs.values():
            rows.append(np.concatenate(list(read_video(eval_dir / "videos" / f"{item.id}@x1.mp4")[::every]), 1))
    grid = np.concatenate(rows, 0)
    Image.fromarray(grid).resize((grid.shape[1] * 3, grid.shape[0] * 3), Image.NEAREST).save(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="outputs/toy_study")
    parser.add_argument("--variants", nargs="+", default=ABLATIONS, choices=list(VARIANTS),
                        help=f"configs/ablation names (default: {' '.join(ABLATIONS)})")
    parser.add_argument("--list-ablations", action="store_true",
                        help="print the markdown table of configs/ablation/*.yaml's ablation_meta and exit")
    parser.add_argument("--train-videos", type=int, default=400)
    parser.add_argument("--val-videos", type=int, default=16)
    parser.add_argument("--motion-kinds", nargs="+", default=None, metavar="KIND",
                        help="motion kinds of the train / held-out world (make_toy_webvid.py --motion-kinds; default: "
                        "all), e.g. 'translate' for a direction-only world")
    parser.add_argument("--balanced-translation", action="store_true",
                        help="place translating objects independently of their direction, here and in the "
                        "translate set (make_toy_webvid.py --balanced-translation): direction only from the prompt")
    parser.add_argument("--video-frames", type=int, default=None, metavar="N",
                        help="frames per toy video (make_toy_webvid.py --frames; default 16). Training and evaluation "
                        "use the first 8, and a balanced mover's speed is capped so its whole path fits (fewer "
                        "frames allow faster movers)")
    parser.add_argument("--text-max-length", type=int, default=None, metavar="N",
                        help="tokens per prompt of the toy text encoder (make_toy_components.py; default: 77)")
    parser.add_argument("--steps", type=int, default=None, help="training steps (default: experiment=toy_study's)")
    parser.add_argument("--factors", type=float, nargs="+", default=[0.5, 1.0, 2.0],
                        help="requested strength = factor x the item's true label")
    parser.add_argument("--eval-steps", type=int, default=25, help="sampling steps")
    parser.add_argument("--guidance-interval", type=int, nargs=2, default=None, metavar=("T_MIN", "T_MAX"),
                        help="sample with guidance only at timesteps in [T_MIN, T_MAX] (the pipeline's "
                        "guidance_interval; default: every step)")
    parser.add_argument("--directional-videos", type=int, default=96, metavar="N",
                        help="extra held-out set of N translate-only videos for direction accuracy (the main set "
                             "has few 'move' items; 24 items could not resolve a 0.2 difference); 0 = skip")
    parser.add_argument("--label-flow", default="farneback",
                        help="flow backend of the strength labels (training and requested strengths)")
    parser.add_argument("--flow", default="dis", help="flow backend of the metrics")
    parser.add_argument("--region", default="tracked", help="allowed region for leakage (fyc.eval.regional)")
    parser.add_argument("--train-mask", choices=["object", "flow"], default="object",
                        help="mask channel in training: the toy world's first-frame object masks, like the clicked "
                        "masks of inference (default), or the paper's Eq. 2 flow mask (union over frame pairs)")
    parser.add_argument("--fresh", action="store_true", help="redo trainings and evaluations that exist")
    parser.add_argument("--experiment", default="toy_study",
                        help="train.py experiment (toy_study: 2-core CPU; toy_study_gpu: one GPU)")
    parser.add_argument("--parallel", type=int, default=1, metavar="N",
                        help="train up to N variants at once (a GPU has room for all five tiny models)")
    parser.add_argument("--train-only", action="store_true",
                        help="stop after training (e.g. train on a GPU machine, evaluate elsewhere with a rerun)")
    parser.add_argument("overrides", nargs="*", help="extra train.py overrides for every variant")
    args = parser.parse_args()
    if args.list_ablations:
        print(ablation_table(ABLATION_META), end="")
        return
    if args.video_frames is not None and args.video_frames < 8:
        parser.error(f"--video-frames {args.video_frames}: training and evaluation take 8 frames, need >= 8")
    out = (ROOT / args.out).resolve()
    toy, py = out / "toy", sys.executable
    metric_overrides = [f"metrics.flow_backend={args.flow}", f"metrics.region={args.region}",
                        f"metrics.label_flow_backend={args.label_flow}"]

    if args.fresh or not (toy / "val.csv").exists():
        run([py, "scripts/make_toy_webvid.py", "--out", str(toy), "--train", str(args.train_videos),
             "--val", str(args.val_videos), "--seed", "0",
             *(["--motion-kinds", *args.motion_kinds] if args.motion_kinds else []), *world_flags(args)])
        run([py, "scripts/make_toy_components.py", "--out", str(toy / "components"),
             *(["--text-max-length", str(args.text_max_length)] if args.text_max_length else [])])
    sidecar = toy / ("train.object.motion.parquet" if args.train_mask == "object" else "train.motion.parquet")
    if args.fresh or not sidecar.exists():
        # Precomputed labels for the trainings: the same flow backend, frame size and unit (px per frame pair at the
        # 32-px training size) as the on-the-fly labels, on one window per video. "object": the window starts at
        # frame 0 and the mask channel gets the frame-0 object mask the toy world writes beside each video (what a
        # click gives at inference; Eq. 2's flow union covers the object's whole path plus the flow's spill, 5-15x
        # the object at 32 px), the strength stays Eq. 2's. "flow": Eq. 2's mask, centred window.
        where = ["--start", "first", "--mask-file", "{page_dir}/{videoid}_mask.png"] if args.train_mask == "object" \
            else []
        run([py, "scripts/annotate_motion.py", "--csv", str(toy / "train.csv"), "--video-root", str(toy),
             "--out", str(sidecar), "--flow", args.label_flow, "--frames", "8", "--stride", "1",
             "--flow-short-side", "32", "--mask-short-side", "32", "--reference-short-side", "32", *where,
             "--no-progress"])
    train_variants(args, out, toy, py, sidecar)
    if args.train_only:
        return
    bench = toy / "benchmark"
    if args.fresh or not (bench / "benchmark.jsonl").exists():
        run([py, "scripts/make_toy_benchmark.py", "--toy-root", str(toy), "--split", "val", "--out", str(bench),
             "--flow", args.label_flow])
    items = load_manifest(bench / "benchmark.jsonl")
    sweep_manifest = write_manifest(bench / "strength_sweep.jsonl", strength_sweep_items(items, args.factors))

    summaries, rows_by_variant = {}, {}
    for name in args.variants:
        eval_dir = out / "eval" / name
        summary = evaluate_variant(args, out, py, name, sweep_manifest, eval_dir, metric_overrides)
        rows_by_variant[name] = read_rows(eval_dir / "per_sample.csv")
        summary["strength_spearman_per_item"] = per_item_spearman(rows_by_variant[name])
        summaries[name] = summary

    if args.directional_videos:
        evaluate_directional(args, out, py, metric_overrides, summaries)

    # The floor: the true videos (one strength each, so no sweep Spearman) scored the same way.
    frames = int(items[0].extra.get("num_frames", 8))
    size = read_size(items[0].image)
    oracle = oracle_items(items, out / "oracle_videos", frames, size)
    oracle_rows, _, _ = score_items(oracle, flow_backend=args.flow, region=args.region,
                                    label_flow_backend=args.label_flow)
    summaries["oracle (true videos)"] = summarize(oracle_rows)

    verdicts = {name: verdict(out, name, summaries) for name in args.variants
                if "full" in summaries and VARIANTS[name][1] is not None}

    sweep_plot(out / "strength_sweep.png", rows_by_variant, args.factors)
    if 1.0 in args.factors:
        sample_grid(out / "samples.png", items, {name: out / "eval" / name for name in args.variants})
    timings = json.loads((out / "train_seconds.json").read_text()) if (out / "train_seconds.json").exists() else {}
    results = {"variants": summaries, "verdicts": verdicts, "train_seconds": timings,
               "settings": {**vars(args), "out": str(out)}}
    (out / "results.json").write_text(json.dumps(results, indent=2, default=float))
    report = ["# Toy study", "", f"`{shlex.join(['python', 'research/toy_study.py', *sys.argv[1:]])}`", "",
              study_table(summaries), "", "Ablation vs full on the metric its component exists for:", ""]
    report += [verdict_line(name, v) for name, v in verdicts.items()
               if v["full"] is not None and v["ablation"] is not None]
    report += ["", "![strength sweep](strength_sweep.png)", ""]
    if 1.0 in args.factors:
        report += [f"Samples (`samples.png`): per held-out item, the true video, then {', '.join(args.variants)} "
                   "(requested strength = the true label; every 2nd frame).", ""]
    (out / "report.md").write_text("\n".join(report))
    print("\n" + "\n".join(report))
    print(f"results: {out / 'results.json'}\nreport: {out / 'report.md'}")


def verdict(out: Path, name: str, summaries: dict) -> dict:
    """Ablation ``name`` vs full on the metric its component exists for: both values, whether the ablation is worse
    (``ablation_is_worse``), and the paired difference ablation − full over the same items and seeds
    (``paired``, fyc/eval/paired.py) with ``measurably_worse`` = worse by more than VERDICT_NUM_SE standard errors."""
    _, key, better = VARIANTS[name]
    a, b = summaries["full"].get(key), summaries[name].get(key)
    worse = None if a is None or b is None else (b > a if better == "low" else b < a)
    result = {"metric": key, "full": a, "ablation": b, "ablation_is_worse": worse, "paired": None,
              "measurably_worse": None}
    source, column = VERDICT_SOURCES[key]
    csvs = [out / source / variant / "per_sample.csv" for variant in ("full", name)]
    if all(path.exists() for path in csvs):
        paired = paired_difference(read_rows(csvs[0]), read_rows(csvs[1]), column)
        result["paired"] = paired.as_dict()
        result["measurably_worse"] = bool(worse) and paired.resolved(VERDICT_NUM_SE)
    return result


def verdict_line(name: str, v: dict) -> str:
    """One report line: the two values, then the paired difference and whether it is beyond noise."""
    line = f"- {name}: {v['metric']} {v['full']:.3f} (full) vs {v['ablation']:.3f} — "
    if v["paired"] is None:
        return line + ("worse" if v["ablation_is_worse"] else "NOT worse") + " (no per-sample rows to pair)"
    p = v["paired"]
    verdict_text = "measurably worse" if v["measurably_worse"] else \
        "worse within noise" if v["ablation_is_worse"] else "NOT worse"
    return line + f"{verdict_text} (paired ablation − full {p['diff']:+.3f}, SE {p['se']:.3f}, {p['n']} items)"


def evaluate_variant(args, out: Path, py: str, name: str, manifest: Path, eval_dir: Path,
                     metric_overrides: list[str]) -> dict:
    """``evaluate.py`` of variant ``name``'s pipeline on ``manifest`` into ``eval_dir`` (skipped when its results
    exist with the same sampler settings, unless ``--fresh``); returns the metrics of its results.json."""
    interval = args.guidance_interval
    sampler = {"num_inference_steps": args.eval_steps, "guidance_interval": interval}
    interval_override = "null" if interval is None else f"[{interval[0]},{interval[1]}]"
    results = eval_dir / "results.json"
    if not args.fresh and results.exists():
        done = json.loads(results.read_text())["protocol"]["generation"]
        if {key: done.get(key) for key in sampler} == sampler:
            return json.loads(results.read_text())["metrics"]
    run([py, "evaluate.py", "mode=all", f"manifest={manifest}", f"pipeline_dir={out / 'runs' / name / 'pipeline'}",
         f"output_dir={eval_dir}", f"hydra.run.dir={eval_dir}", f"method_name={name}",
         f"generation.num_inference_steps={args.eval_steps}",
         f"generation.guidance_interval={interval_override}", *metric_overrides])
    return json.loads(results.read_text())["metrics"]


def world_flags(args) -> list[str]:
    """make_toy_webvid.py's world flags, the same for the study's world and its translate set."""
    return (["--balanced-translation"] if args.balanced_translation else []) + \
        (["--frames", str(args.video_frames)] if args.video_frames else [])


def evaluate_directional(args, out: Path, py: str, metric_overrides: list[str], summaries: dict) -> None:
    """Direction accuracy on ``<out>/directional``: translate-only held-out videos (same world otherwise), each at its
    true strength; adds ``direction_accuracy_translate`` / ``direction_cosine_translate`` /
    ``num_directional_translate`` to each variant's summary."""
    root = out / "directional"
    bench = root / "benchmark" / "benchmark.jsonl"
    if args.fresh or not bench.exists():
        run([py, "scripts/make_toy_webvid.py", "--out", str(root), "--train", "0", "--val",
             str(args.directional_videos), "--seed", str(DIRECTIONAL_SEED), "--motion-kinds", "translate",
             *world_flags(args)])
        run([py, "scripts/make_toy_benchmark.py", "--toy-root", str(root), "--split", "val", "--out",
             str(bench.parent), "--flow", args.label_flow])
    for name in args.variants:
        metrics = evaluate_variant(args, out, py, name, bench, root / "eval" / name, metric_overrides)
        summaries[name]["direction_accuracy_translate"] = metrics.get("direction_accuracy")
        summaries[name]["direction_cosine_translate"] = metrics.get("direction_cosine")
        summaries[name]["num_directional_translate"] = metrics.get("num_directional")


def train_variants(args, out: Path, toy: Path, py: str, sidecar: Path) -> None:
    """Train every variant whose pipeline is missing, up to ``args.parallel`` at once; each run logs to
    ``<out>/runs/<variant>/train.out`` when parallel. Writes ``<out>/train_seconds.json``."""
    timings_path = out / "train_seconds.json"
    timings = json.loads(timings_path.read_text()) if timings_path.exists() else {}
    todo = [name for name in args.variants
            if args.fresh or not (out / "runs" / name / "pipeline" / "model_index.json").exists()]
    steps = [f"trainer.max_steps={args.steps}"] if args.steps else []

    def command(name: str) -> list[str]:
        # The sidecar's labels: on-the-fly flow labels are a large share of a CPU step and make a GPU step data-bound.
        return [py, "train.py", f"experiment={args.experiment}", *VARIANTS[name][0], f"paths.toy_root={toy}",
                f"data.train_dataset.motion_labels={sidecar}", *steps, *args.overrides,
                f"hydra.run.dir={out / 'runs' / name}"]

    if args.parallel <= 1:
        for name in todo:
            start = time.time()
            run(command(name))
            timings[name] = round(time.time() - start, 1)
            timings_path.write_text(json.dumps(timings, indent=2))
    else:
        def train_logged(name: str) -> tuple[str, int, float]:
            log, start = out / "runs" / name / "train.out", time.time()
            log.parent.mkdir(parents=True, exist_ok=True)
            with log.open("w") as log_file:
                code = subprocess.run(command(name), cwd=ROOT, stdout=log_file, stderr=subprocess.STDOUT).returncode
            return name, code, round(time.time() - start, 1)

        failed = []
        with ThreadPoolExecutor(max_workers=args.parallel) as pool:
            for name in todo:
                print(f"\n$ {shlex.join(command(name))}  > {out / 'runs' / name / 'train.out'}", flush=True)
            for future in as_completed([pool.submit(train_logged, name) for name in todo]):
                name, code, seconds = future.result()
                timings[name] = seconds
                timings_path.write_text(json.dumps(timings, indent=2))
                print(f"  {name}: exit {code} ({timings[name]:.0f} s)", flush=True)
                if code != 0:
                    failed.append(name)
        if failed:
            raise SystemExit(f"training failed for {failed}; see <out>/runs/<variant>/train.out")


def read_size(image_path: str) -> tuple[int, int]:
    from PIL import Image

    width, height = Image.open(image_path).size
    return height, width


if __name__ == "__main__":
    main()
