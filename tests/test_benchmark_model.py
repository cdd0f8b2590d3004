"""scripts/benchmark_model.py: several FYC settings against the plain model in one run (analytic mode, no GPU)."""
from __future__ import annotations

import re
import subprocess
import sys

from conftest import ROOT


def test_benchmark_reports_a_ratio_per_fyc_setting():
    cmd = [sys.executable, "scripts/benchmark_model.py", "--config", "tiny", "--device", "meta",
           "--ma-query-group-size", "0", "64", "--ma-checkpointing", "on", "off"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ratios = re.findall(r"^(FYC g(\d+) ckpt (on|off)) / plain fwd\+bwd GFLOP\s+([\d.]+)", proc.stdout, re.M)
    assert {(g, c) for _, g, c, _ in ratios} == {("0", "on"), ("0", "off"), ("64", "on"), ("64", "off")}
    # FYC adds layers, so it costs more FLOPs than the plain model under every setting.
    assert all(float(r) > 1.0 for *_, r in ratios)
