"""benchmarks/run_all.py: every sub-benchmark under its time budget, one JSON + markdown report.

The fast tests drive the orchestration with stand-in commands (seconds); the slow one runs the real scripts in
--tiny mode on the CPU (the compiled run is covered by tests/test_benchmark_model.py).
"""
from __future__ import annotations

import json
import sys

import pytest

from conftest import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))
import run_all  # noqa: E402

sys.path.remove(str(ROOT / "benchmarks"))

# Stand-ins printing what each real script prints (benchmark_model.py: its --json file).
_MODEL = ("import json, sys; json.dump({'batch': 1, 'height': 32, 'width': 32, 'frames': 4, 'compile': 'none', "
          "'models': {'plain UNetMotionModel': {'median ms': 10.0, 'peak MiB': 100.0}, "
          "'FollowYourClickUNet': {'median ms': 11.0, 'peak MiB': 102.0}}, "
          "'ratios': {'FollowYourClickUNet': {'median ms': 1.1, 'peak MiB': 1.02}}}, open(sys.argv[-1], 'w'))")
_TRAIN = ("print('loading...'); print('{\"resolution\": 32, \"frames\": 4, \"batch_size\": 1, \"s_per_step\": 0.5, "
          "\"samples_per_s\": 2.0, \"peak_mem_gb\": 1.5, \"tflop_per_step\": 0.003, \"mfu\": null}', flush=True); "
          "import time; time.sleep(60)")  # prints its first resolution, then overruns its budget
_SAMPLING = ("print('{\"regions\": 1, \"resolution\": 32, \"frames\": 4, \"steps\": 2, \"dtype\": \"float32\", "
             "\"fyc_s\": 1.0, \"animatediff_s\": 0.9, \"ratio\": 1.111}')")
_FAIL = "raise SystemExit(3)"


def test_each_sub_benchmark_keeps_its_budget_and_the_report_has_every_table(tmp_path, monkeypatch):
    monkeypatch.setattr(run_all, "BENCHMARKS", {
        "model_eager": (30, "-c", [], [_MODEL, "{json}"]),
        "train": (3, "-c", [], [_TRAIN]),
        "sampling": (30, "-c", [], [_SAMPLING]),
        "model_compiled": (30, "-c", [], [_FAIL]),
    })
    report = run_all.main(["--tiny", "--out", str(tmp_path)])
    runs = report["benchmarks"]
    assert runs["model_eager"]["status"] == "ok" and runs["sampling"]["status"] == "ok"
    assert runs["train"]["status"] == "timeout" and runs["train"]["seconds"] < 20  # killed at its 3 s budget
    assert runs["train"]["results"][0]["s_per_step"] == 0.5  # what it printed before is kept
    assert runs["model_compiled"]["status"] == "failed (exit 3)"
    assert json.loads((tmp_path / "report.json").read_text())["benchmarks"].keys() == runs.keys()
    markdown = (tmp_path / "report.md").read_text()
    assert "| model_eager | 1 | 32x32x4 | none | 10.0 | 11.0 | 1.100 | 100 | 102 | 1.020 |" in markdown
    assert "| 32 | 4 | 1 | 0.500 | 2.000 | 1.50 | 0.0030 | – |" in markdown
    assert "| 1 | 32x32x4 | 2 | float32 | 1.000 | 0.900 | 1.111 |" in markdown
    assert "`train`: timeout" in markdown and (tmp_path / "logs" / "train.log").exists()


def test_a_sub_benchmark_is_skipped_when_the_total_budget_is_spent(tmp_path, monkeypatch):
    monkeypatch.setattr(run_all, "BENCHMARKS", {
        "first": (30, "-c", [], ["import time; time.sleep(60)"]),
        "second": (30, "-c", [], ["print('never')"]),
    })
    report = run_all.main(["--tiny", "--out", str(tmp_path), "--total-budget-s", "4", "--min-start-s", "2"])
    assert report["benchmarks"]["first"]["status"] == "timeout"
    assert report["benchmarks"]["second"]["status"].startswith("skipped")


def test_gpu_mode_needs_a_gpu_and_budgets_are_checked(tmp_path, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(SystemExit):
        run_all.main(["--out", str(tmp_path)])  # "no CUDA device: ... pass --tiny"
    with pytest.raises(SystemExit):
        run_all.main(["--tiny", "--out", str(tmp_path), "--budget", "nonsense=3"])
    # The GPU budgets fit the promise: all sub-benchmarks within 10 minutes.
    assert sum(spec[0] for spec in run_all.BENCHMARKS.values()) <= run_all.TOTAL_BUDGET_S < 600


@pytest.mark.slow
def test_tiny_run_all_on_the_cpu(tmp_path):
    """The real scripts in --tiny mode: every table has a row."""
    report = run_all.main(["--tiny", "--out", str(tmp_path), "--only", "model_eager", "train", "sampling",
                           "--total-budget-s", "1200", "--budget", "model_eager=400", "train=400", "sampling=400"])
    runs = report["benchmarks"]
    assert {name: run["status"] for name, run in runs.items()} == dict.fromkeys(runs, "ok"), runs
    assert runs["model_eager"]["results"]["ratios"]["FollowYourClickUNet"]["median ms"] > 0
    assert runs["train"]["results"][0]["tflop_per_step"] > 0
    assert {row["regions"] for row in runs["sampling"]["results"]} == {1, 2}
    markdown = (tmp_path / "report.md").read_text()
    assert "| model_eager | 1 | 32x32x4 | none |" in markdown and "| 32 | 4 | 1 |" in markdown
