"""End a Hydra multirun (``python train.py -m ... ablation=full,no_ma``) with one markdown table comparing its jobs.

Registered as a Hydra callback in ``configs/hydra/default.yaml``. At the end of the sweep it finds every job folder
under ``hydra.sweep.dir`` (a folder holding ``.hydra/overrides.yaml``; the folders are named by their overrides),
reads each job's final metrics and writes ``<sweep dir>/sweep_report.md``:

- training jobs: the last logged value of every metric in the CSV logger's ``csv/version_*/metrics.csv`` (the
  newest version; the ``logger=csv`` default), and ``last step`` = the last logged step;
- evaluation jobs (evaluate.py): the numeric entries of ``results.json``'s ``metrics``.

Columns: the overrides whose values differ between jobs, then the metrics (``val/*`` first, learning rates left out).
A job without metrics (it failed, or logged nowhere) gets a row of "–", so a failed job is visible.
"""
from __future__ import annotations

import csv
import json
import logging
import math
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

log = logging.getLogger(__name__)

REPORT_NAME = "sweep_report.md"
# CSV-logger columns that are bookkeeping or per-group learning rates, not results.
SKIPPED_COLUMNS = ("epoch", "step", "train/lr")
SKIPPED_PREFIXES = ("lr-",)


def job_dirs(sweep_dir: Path) -> list[Path]:
    """Job folders under ``sweep_dir`` (any depth: a value with '/' nests), sorted by name."""
    return sorted(path.parent.parent for path in Path(sweep_dir).glob("**/.hydra/overrides.yaml"))


def job_overrides(job_dir: Path) -> dict[str, str]:
    """``key -> value`` of the job's command-line overrides (``.hydra/overrides.yaml``)."""
    overrides = OmegaConf.load(job_dir / ".hydra" / "overrides.yaml")
    return dict(item.split("=", 1) if "=" in item else (item, "") for item in overrides)


def final_metrics(job_dir: Path) -> dict[str, float]:
    """The job's final metrics: CSV-logger metrics (last non-empty value per column) or evaluate.py's results.json."""
    metrics: dict[str, float] = {}
    versions = sorted(job_dir.glob("csv/version_*/metrics.csv"), key=lambda p: int(p.parent.name.split("_")[-1]))
    if versions:
        with versions[-1].open(newline="") as handle:
            for row in csv.DictReader(handle):
                for key, value in row.items():
                    if value not in ("", None):
                        metrics[key] = float(value)
        if "step" in metrics:
            metrics["last step"] = metrics["step"]
    results = job_dir / "results.json"
    if results.exists():
        for key, value in json.loads(results.read_text()).get("metrics", {}).items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                metrics[key] = float(value)
    return {key: value for key, value in metrics.items()
            if key not in SKIPPED_COLUMNS and not key.startswith(SKIPPED_PREFIXES)}


def _metric_order(name: str) -> tuple[int, str]:
    return (0 if name.startswith("val/") else 1 if name.startswith("train/") else 2 if name != "last step" else 3, name)


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, float):
        return f"{value:.0f}" if value.is_integer() and abs(value) >= 1 else f"{value:.4g}"
    return str(value)


def sweep_table(sweep_dir: Path) -> str:
    """Markdown table: one row per job folder, columns = differing overrides + final metrics."""
    sweep_dir = Path(sweep_dir)
    jobs = job_dirs(sweep_dir)
    if not jobs:
        return f"no job folders (with .hydra/overrides.yaml) under {sweep_dir}\n"
    overrides = {job: job_overrides(job) for job in jobs}
    keys = sorted({key for values in overrides.values() for key in values})
    varying = [key for key in keys if len({values.get(key) for values in overrides.values()}) > 1]
    metrics = {job: final_metrics(job) for job in jobs}
    metric_names = sorted({name for values in metrics.values() for name in values}, key=_metric_order)
    lines = ["| job folder | " + " | ".join(varying + metric_names) + " |",
             "|---|" + "---|" * len(varying) + "---:|" * len(metric_names)]
    for job in jobs:
        cells = [overrides[job].get(key, "–") for key in varying]
        cells += [_cell(metrics[job].get(name)) for name in metric_names]
        lines.append(f"| {job.relative_to(sweep_dir).as_posix() or '.'} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


class SweepReport(Callback):
    """Hydra callback: after the last job of a multirun, write and print ``<sweep dir>/<filename>``."""

    def __init__(self, filename: str = REPORT_NAME) -> None:
        self.filename = filename

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        table = sweep_table(sweep_dir)
        path = sweep_dir / self.filename
        path.write_text(f"# Sweep `{sweep_dir}`\n\n{table}")
        print(f"\n{table}\nsweep report: {path}", flush=True)
