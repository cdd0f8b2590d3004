"""Every GPU speed measurement in one command, each sub-benchmark under its own time budget; JSON + markdown report.

    python benchmarks/run_all.py --out outputs/bench              # one GPU: SD-1.5 size, random weights, < 10 min
    python benchmarks/run_all.py --out outputs/bench_tiny --tiny  # CPU: tiny models and sizes, a smoke test

Sub-benchmarks (each the documented command of its script, run as a subprocess; see benchmarks/README.md):

- ``model_eager`` / ``model_batch2`` / ``model_compiled``: benchmark_model.py, FollowYourClickUNet vs plain
  UNetMotionModel train step at 512x512x16 (bf16 autocast): batch 1, batch 2, and ``--compile reduce-overhead``;
- ``train``: benchmark_train.py, full training step at 256^2 and 512^2 x16 (batch 4, bf16, gradient
  checkpointing): s/step, samples/s, peak memory, FLOPs and MFU;
- ``sampling``: benchmark_sampling.py, FollowYourClickPipeline vs diffusers' AnimateDiffPipeline at 512^2 x16.

A sub-benchmark that runs past its budget is killed (its whole process group) and reported as ``timeout`` with
whatever it printed; the run goes on with the next one, and no sub-benchmark starts with less than
``--min-start-s`` left of ``--total-budget-s``. The compiled run is last: it gets what the others leave, up to its
own budget. Writes ``<out>/report.json``, ``<out>/report.md`` and ``<out>/logs/<name>.log``.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable

# name -> (budget seconds on one H100/H200, script (from the repository root), arguments on the GPU, arguments with
# --tiny on the CPU).
# "{json}" is replaced by <out>/<name>.json. The budgets add up to TOTAL_BUDGET_S: each is a cap, not an estimate.
_MODEL_GPU = ["--config", "sd15", "--device", "cuda", "--dtype", "bfloat16", "--height", "512", "--width", "512",
              "--frames", "16", "--json", "{json}"]
_MODEL_TINY = ["--config", "tiny", "--device", "cpu", "--threads", "1", "--height", "32", "--width", "32",
               "--frames", "4", "--steps", "1", "--warmup", "1", "--rounds", "1", "--json", "{json}"]
BENCHMARKS = {
    "model_eager": (60, "benchmarks/benchmark_model.py",
                    [*_MODEL_GPU, "--batch", "1", "--steps", "5", "--rounds", "2"], [*_MODEL_TINY, "--batch", "1"]),
    "model_batch2": (70, "benchmarks/benchmark_model.py",
                     [*_MODEL_GPU, "--batch", "2", "--steps", "5", "--rounds", "2"], [*_MODEL_TINY, "--batch", "2"]),
    "train": (100, "benchmarks/benchmark_train.py",
              ["--config", "sd15", "--resolution", "256", "512", "--frames", "16", "--batch-size", "4", "--device",
               "cuda", "--bf16", "--grad-ckpt", "--steps", "5", "--warmup", "2"],
              ["--config", "tiny", "--resolution", "32", "--frames", "4", "--batch-size", "1", "--device", "cpu",
               "--threads", "1", "--steps", "1", "--warmup", "1"]),
    "sampling": (110, "benchmarks/benchmark_sampling.py",
                 ["--config", "sd15", "--device", "cuda", "--resolution", "512", "--frames", "16", "--steps", "25",
                  "--repeats", "2"],
                 ["--config", "tiny", "--device", "cpu", "--threads", "1", "--resolution", "32", "--frames", "4",
                  "--steps", "2", "--repeats", "1"]),
    # CUDA graphs (no per-op launch cost); inductor compiles both models during --warmup, which takes most of this.
    "model_compiled": (220, "benchmarks/benchmark_model.py",
                       [*_MODEL_GPU, "--batch", "1", "--compile", "reduce-overhead", "--rounds", "1", "--warmup", "3",
                        "--steps", "10"],
                       [*_MODEL_TINY, "--batch", "1", "--compile", "default", "--compile-backend", "aot_eager"]),
}
TOTAL_BUDGET_S = 570  # under 10 minutes with start-up and the report


def run_one(name: str, cmd: list[str], budget_s: float, log_path: Path) -> dict:
    """Run ``cmd`` in the repository root for at most ``budget_s`` seconds (then kill its process group)."""
    start = time.perf_counter()
    with log_path.open("w") as log:
        log.write(f"$ {shlex.join(cmd)}\n")
        log.flush()
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=log, text=True, start_new_session=True,
                                env={**os.environ, "PYTHONPATH": os.pathsep.join(
                                    [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])})
        try:
            stdout, _ = proc.communicate(timeout=budget_s)
            status = "ok" if proc.returncode == 0 else f"failed (exit {proc.returncode})"
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # compile workers and other children too
            stdout, _ = proc.communicate()
            status = "timeout"
        log.write(stdout or "")
    seconds = round(time.perf_counter() - start, 1)
    print(f"  {name}: {status} ({seconds:.0f} s of {budget_s:.0f} s)", flush=True)
    return {"status": status, "seconds": seconds, "budget_s": round(budget_s, 1), "stdout": stdout or ""}


def parse_results(name: str, stdout: str, json_path: Path) -> object:
    """The sub-benchmark's results: benchmark_model.py's --json file, the others' JSON lines on stdout."""
    if name.startswith("model_"):
        return json.loads(json_path.read_text()) if json_path.exists() else None
    rows = []
    for line in stdout.splitlines():
        if line.startswith("{"):
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                pass
    return rows


def _fmt(value, digits: int = 3) -> str:
    if value is None:
        return "–"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def markdown_report(report: dict) -> str:
    """The report's tables, each with its command and status."""
    env = report["environment"]
    lines = [f"# Speed benchmarks ({'tiny, CPU' if report['tiny'] else 'SD-1.5 size, random weights'})", "",
             f"`{report['command']}`", "",
             f"Device: {env['gpu'] or 'CPU'}; torch {env['torch']}; {env['date']}; "
             f"{report['total_seconds']:.0f} s in all.", ""]
    runs = report["benchmarks"]

    def header(title: str, names: list[str]) -> None:
        lines.extend([f"## {title}", ""])
        for name in names:
            run = runs.get(name)
            if run is None:
                lines.append(f"- `{name}`: not run")
                continue
            lines.append(f"- `{name}`: {run['status']} ({run['seconds']:.0f} s, budget {run['budget_s']:.0f} s): "
                         f"`{run['command']}`")
        lines.append("")

    model_names = [n for n in ("model_eager", "model_batch2", "model_compiled") if n in BENCHMARKS]
    header("FollowYourClickUNet vs plain UNetMotionModel, one train step", model_names)
    lines += ["| run | batch | size | compile | plain ms | FYC ms | time ratio | plain MiB | FYC MiB | memory ratio |",
              "|---|---:|---|---|---:|---:|---:|---:|---:|---:|"]
    for name in model_names:
        data = (runs.get(name) or {}).get("results")
        if not data:
            continue
        (plain_name, plain), (fyc_name, fyc) = list(data["models"].items())[:2]
        ratio = data["ratios"][fyc_name]
        lines.append(f"| {name} | {data['batch']} | {data['height']}x{data['width']}x{data['frames']} | "
                     f"{data['compile']} | {_fmt(plain['median ms'], 1)} | {_fmt(fyc['median ms'], 1)} | "
                     f"{_fmt(ratio['median ms'])} | {_fmt(plain['peak MiB'], 0)} | {_fmt(fyc['peak MiB'], 0)} | "
                     f"{_fmt(ratio['peak MiB'])} |")
    lines.append("")

    header("Training step (FollowYourClickModule: VAE + text encode, loss, backward, AdamW)", ["train"])
    lines += ["| resolution | frames | batch | s/step | samples/s | peak GiB | TFLOP/step | MFU |",
              "|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for row in (runs.get("train") or {}).get("results") or []:
        if "error" in row:
            lines.append(f"| {row['resolution']} | {row['frames']} | {row['batch_size']} | {row['error']} ||||| ")
            continue
        lines.append(f"| {row['resolution']} | {row['frames']} | {row['batch_size']} | {_fmt(row['s_per_step'])} | "
                     f"{_fmt(row['samples_per_s'])} | {_fmt(row['peak_mem_gb'], 2)} | "
                     f"{_fmt(row['tflop_per_step'], 4)} | {_fmt(row['mfu'])} |")
    lines.append("")

    header("Sampling: FollowYourClickPipeline vs AnimateDiffPipeline (same backbone)", ["sampling"])
    lines += ["| regions | size | steps | dtype | FYC s | AnimateDiff s | ratio |",
              "|---:|---|---:|---|---:|---:|---:|"]
    for row in (runs.get("sampling") or {}).get("results") or []:
        lines.append(f"| {row['regions']} | {row['resolution']}x{row['resolution']}x{row['frames']} | {row['steps']} | "
                     f"{row['dtype']} | {_fmt(row['fyc_s'])} | {_fmt(row['animatediff_s'])} | {_fmt(row['ratio'])} |")
    lines.append("")
    return "\n".join(lines)


def environment() -> dict:
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return {"gpu": gpu, "torch": torch.__version__, "python": platform.python_version(), "cpu_count": os.cpu_count(),
            "date": date}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="outputs/benchmarks", help="report folder")
    parser.add_argument("--tiny", action="store_true", help="tiny models and sizes on the CPU (a smoke test)")
    parser.add_argument("--only", nargs="+", choices=list(BENCHMARKS), default=None, help="run these only")
    parser.add_argument("--total-budget-s", type=float, default=TOTAL_BUDGET_S,
                        help="wall-clock cap of all sub-benchmarks together")
    parser.add_argument("--budget", nargs="+", default=[], metavar="NAME=SECONDS",
                        help="override sub-benchmarks' budgets, e.g. --budget model_compiled=400")
    parser.add_argument("--min-start-s", type=float, default=20.0,
                        help="do not start a sub-benchmark with less than this left of the total budget")
    args = parser.parse_args(argv)
    budgets = {name: float(spec[0]) for name, spec in BENCHMARKS.items()}
    for item in args.budget:
        name, _, seconds = item.partition("=")
        if name not in BENCHMARKS or not seconds:
            parser.error(f"--budget {item!r}: expected NAME=SECONDS with NAME one of {', '.join(BENCHMARKS)}")
        budgets[name] = float(seconds)
    if not args.tiny:
        import torch

        if not torch.cuda.is_available():
            parser.error("no CUDA device: run on a GPU, or pass --tiny for the CPU smoke test")
    out = Path(args.out).resolve()
    (out / "logs").mkdir(parents=True, exist_ok=True)

    start = time.perf_counter()
    runs = {}
    for name, (_, script, gpu_args, tiny_args) in BENCHMARKS.items():
        if args.only and name not in args.only:
            continue
        left = args.total_budget_s - (time.perf_counter() - start)
        json_path = out / f"{name}.json"
        json_path.unlink(missing_ok=True)
        cmd = [PY, script,
               *[a.replace("{json}", str(json_path)) for a in (tiny_args if args.tiny else gpu_args)]]
        shown = shlex.join(["python", *cmd[1:]]).replace(str(out), "<out>")
        if left < args.min_start_s:
            runs[name] = {"status": f"skipped ({left:.0f} s of the total budget left)", "seconds": 0.0,
                          "budget_s": 0.0, "command": shown, "results": None}
            print(f"  {name}: {runs[name]['status']}", flush=True)
            continue
        print(f"$ {shown}", flush=True)
        run = run_one(name, cmd, min(budgets[name], left), out / "logs" / f"{name}.log")
        stdout = run.pop("stdout")
        runs[name] = {**run, "command": shown, "results": parse_results(name, stdout, json_path)}

    command = shlex.join(["python", "benchmarks/run_all.py", *(sys.argv[1:] if argv is None else argv)])
    report = {"command": command, "tiny": args.tiny, "environment": environment(),
              "total_budget_s": args.total_budget_s, "total_seconds": round(time.perf_counter() - start, 1),
              "benchmarks": runs}
    (out / "report.json").write_text(json.dumps(report, indent=2))
    markdown = markdown_report(report)
    (out / "report.md").write_text(markdown)
    print("\n" + markdown + f"\nreport: {out / 'report.json'}, {out / 'report.md'}", flush=True)
    return report


if __name__ == "__main__":
    main()
