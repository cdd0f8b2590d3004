"""benchmarks/benchmark_data.py runs end to end on a tiny toy world and reports what it promises (streaming too)."""
from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_benchmark_data_smoke(tmp_path):
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import benchmark_data
    finally:
        sys.path.pop(0)
    out = tmp_path / "bench.json"
    results = benchmark_data.main(["--source", "toy", "--clips", "6", "--workers", "0", "--batch-size", "2",
                                   "--resolution", "32", "--frames", "4", "--stride", "1", "--backends",
                                   "farneback", "--annotate-clips", "2", "--repeats", "1", "--label-modes", "none",
                                   "sidecar", "shards", "--shard-size", "2", "--json", str(out)])
    assert json.loads(out.read_text()) == results
    assert results["annotate"]["farneback"]["clips"] == 6 and results["annotate"]["farneback"]["clips_per_s"] > 0
    assert results["shards"] == {"count": 3, "clips_per_shard": 2}
    for mode in ("none", "sidecar", "shards"):
        row = results["loader"][mode]
        assert row["loader_clips_per_s"] > 0 and row["raw_clips_per_s"] > 0
        assert row["ratio"] == round(row["loader_clips_per_s"] / row["raw_clips_per_s"], 3)
    assert not Path(results["csv"]).exists()  # temporary data removed
