"""benchmarks/benchmark_model.py: several FYC settings against the plain model in one run (analytic mode, no GPU)."""
from __future__ import annotations

import json
import re
import subprocess
import sys

from conftest import ROOT


def test_benchmark_reports_a_ratio_per_fyc_setting(tmp_path):
    cmd = [sys.executable, "benchmarks/benchmark_model.py", "--config", "tiny", "--device", "meta",
           "--ma-query-group-size", "0", "64", "--ma-checkpointing", "on", "off", "--json", str(tmp_path / "r.json")]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ratios = re.findall(r"^(FYC g(\d+) ckpt (on|off)) / plain fwd\+bwd GFLOP\s+([\d.]+)", proc.stdout, re.M)
    assert {(g, c) for _, g, c, _ in ratios} == {("0", "on"), ("0", "off"), ("64", "on"), ("64", "off")}
    # FYC adds layers, so it costs more FLOPs than the plain model under every setting.
    assert all(float(r) > 1.0 for *_, r in ratios)
    data = json.loads((tmp_path / "r.json").read_text())  # --json (benchmarks/run_all.py reads it) = the printout
    assert {name: round(r["fwd+bwd GFLOP"], 3) for name, r in data["ratios"].items()} == \
        {name: float(r) for name, *_, r in ratios}
    assert data["device"] == "meta" and len(data["models"]) == 5


def test_benchmark_compiles_both_models():
    # aot_eager traces forward and backward through dynamo/AOTAutograd like inductor does, without code generation,
    # so this checks the --compile path (and that neither model breaks the graph) in seconds on a CPU.
    cmd = [sys.executable, "benchmarks/benchmark_model.py", "--config", "tiny", "--device", "cpu", "--threads", "1",
           "--height", "32", "--width", "32", "--frames", "4", "--steps", "1", "--warmup", "1", "--rounds", "1",
           "--compile", "default", "--compile-backend", "aot_eager"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "compile=default" in proc.stdout
    graphs, breaks = map(int, re.search(r"compiled graphs: (\d+), graph breaks: (\d+)", proc.stdout).groups())
    assert graphs >= 2 and breaks == 0, proc.stdout[-2000:]
    assert re.search(r"^FollowYourClickUNet / plain median ms\s+[\d.]+", proc.stdout, re.M), proc.stdout[-2000:]
