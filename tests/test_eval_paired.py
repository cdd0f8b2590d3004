import csv
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.stats

from fyc.eval.paired import PER_ITEM_SPEARMAN, comparison_table, paired_difference, per_unit_values, read_per_sample

ROOT = Path(__file__).resolve().parents[1]


def rows(values: dict[str, float], column: str = "motion_leakage") -> list[dict]:
    return [{"id": key, column: value} for key, value in values.items()]


def test_paired_difference_is_the_mean_and_standard_error_over_shared_items():
    a = rows({"x": 0.5, "y": 0.6, "z": 0.7, "only_a": 0.0})
    b = rows({"x": 0.6, "y": 0.8, "z": 0.7, "only_b": 1.0, "nan": math.nan})
    d = paired_difference(a, b, "motion_leakage")
    diffs = np.array([0.1, 0.2, 0.0])
    assert d.n == 3 and d.mean_a == pytest.approx(0.6) and d.mean_b == pytest.approx(0.7)
    assert d.diff == pytest.approx(diffs.mean())
    assert d.se == pytest.approx(diffs.std(ddof=1) / math.sqrt(3))
    # the paired t statistic with n - 1 degrees of freedom, as scipy computes it
    test = scipy.stats.ttest_rel([0.6, 0.8, 0.7], [0.5, 0.6, 0.7])
    assert d.t == pytest.approx(d.diff / d.se) == pytest.approx(test.statistic) and d.p == pytest.approx(test.pvalue)
    assert not d.resolved(2.0) and d.resolved(1.0) and not d.identical


def test_paired_difference_reads_csv_text_and_refuses_disjoint_items():
    # research/toy_study.py's read_rows keeps most columns as text
    d = paired_difference(rows({"x": "0.25", "y": "0.5"}), rows({"x": "0.5", "y": "0.75"}), "motion_leakage")
    assert d.diff == pytest.approx(0.25) and d.se == 0.0 and d.t == math.inf and d.resolved()
    with pytest.raises(ValueError, match="motion_leakage.*same manifest"):
        paired_difference(rows({"x": 0.1}), rows({"y": 0.2}), "motion_leakage")


def sweep(item: str, magnitudes: list[float]) -> list[dict]:
    return [{"id": f"{item}@x{i}", "sweep_of": item, "strength": 0.1 * (i + 1), "realised_strength": m}
            for i, m in enumerate(magnitudes)]


def test_per_item_spearman_pairs_sweep_groups():
    a = sweep("p", [1, 2, 3]) + sweep("q", [1, 2, 3]) + sweep("r", [3, 2, 1])
    b = sweep("p", [3, 2, 1]) + sweep("q", [1, 3, 2]) + sweep("r", [3, 2, 1])
    assert per_unit_values(a, PER_ITEM_SPEARMAN) == {"p": 1.0, "q": 1.0, "r": -1.0}
    d = paired_difference(a, b, PER_ITEM_SPEARMAN)
    assert d.n == 3 and d.diff == pytest.approx((-2.0 - 0.5 + 0.0) / 3)


def test_comparison_table_says_which_side_is_better_only_beyond_noise():
    ids = [f"i{k}" for k in range(10)]
    a = [{"id": i, "motion_leakage": 0.5 + 0.01 * k, "i1_mse": 50.0 + k % 2} for k, i in enumerate(ids)]
    b = [{"id": i, "motion_leakage": 0.7 + 0.01 * k, "i1_mse": 50.0 + (k + 1) % 2} for k, i in enumerate(ids)]
    table = comparison_table(a, b, "full", "no_mask")
    leakage = next(line for line in table.splitlines() if line.startswith("| motion_leakage"))
    i1 = next(line for line in table.splitlines() if line.startswith("| i1_mse"))
    assert "| 10 |" in leakage and "+0.2" in leakage and leakage.endswith("no_mask worse |")
    assert i1.endswith("within noise |")
    assert "direction_correct" not in table  # neither side has it
    with pytest.raises(ValueError, match="share no metric"):
        comparison_table(a, b, metrics=[("direction_correct", "high")])


def test_identical_runs_read_identical_not_nan():
    a = [{"id": f"i{k}", "motion_leakage": 0.1 * k, "i1_mse": 3.0} for k in range(5)]
    d = paired_difference(a, a, "motion_leakage")
    assert d.identical and d.diff == 0 and math.isnan(d.t) and not d.resolved()
    table = comparison_table(a, [dict(r) for r in a])
    assert "nan" not in table and all(line.endswith("identical |") for line in table.splitlines()[2:])


def write_csv(path: Path, table: list[dict]) -> Path:
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(table[0]))
        writer.writeheader()
        writer.writerows(table)
    return path


def test_compare_runs_script_writes_the_table(tmp_path):
    a_dir = tmp_path / "full"
    a_dir.mkdir()
    write_csv(a_dir / "per_sample.csv", [{"id": f"i{k}", "direction_correct": float(k % 2)} for k in range(8)])
    assert read_per_sample(write_csv(tmp_path / "numeric_ids.csv", [{"id": "007", "i1_mse": "1"}]))[0] == \
        {"id": "007", "i1_mse": 1.0}
    b = write_csv(tmp_path / "b.csv", [{"id": f"i{k}", "direction_correct": 0.0} for k in range(8)])
    assert read_per_sample(b)[0] == {"id": "i0", "direction_correct": 0.0}
    out = tmp_path / "cmp" / "table.md"
    proc = subprocess.run([sys.executable, "research/compare_runs.py", str(a_dir), str(b), "--names", "full", "no_ma",
                           "--out", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert out.read_text() in proc.stdout and "| direction_correct | 8 | 0.5 | 0 | -0.5 |" in out.read_text()
    proc = subprocess.run([sys.executable, "research/compare_runs.py", str(a_dir), str(tmp_path / "missing")],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0 and "missing: expected evaluate.py's per_sample.csv" in proc.stderr
