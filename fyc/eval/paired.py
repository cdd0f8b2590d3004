"""Paired comparison of two evaluations of the same items: mean difference ± its standard error, paired t-test.

Two variants evaluated on the same manifest sample each item with the same seed, so most of an item's noise (its
scene, object and starting latent) is shared. The per-item difference B − A then resolves far smaller effects than
comparing the two aggregates does (docs/toy_study.md has examples). Rows are ``per_sample.csv`` rows of ``evaluate.py`` (``fyc.eval.score``).
"""
from __future__ import annotations

import csv
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import scipy.stats

from fyc.eval.regional import strength_spearman

SWEEP_KEY = "sweep_of"  # the item id a swept row belongs to (fyc.research.toy_study.strength_sweep_items)
PER_ITEM_SPEARMAN = "strength_spearman_per_item"  # not a column: Spearman within each sweep group
# What research/compare_runs.py compares when not told (each only where both files have it); "low"/"high" is better.
DEFAULT_METRICS = (
    ("motion_leakage", "low"),
    (PER_ITEM_SPEARMAN, "high"),
    ("direction_correct", "high"),
    ("direction_cosine", "high"),
    ("kind_correct", "high"),
    ("realised_strength", None),
    ("object_speed", None),
    ("out_region_magnitude", "low"),
    ("background_stillness", "low"),
    ("i1_mse", "low"),
)


@dataclass(frozen=True)
class PairedDifference:
    """``diff`` = mean over the ``n`` shared units of (B − A); ``se`` = its standard error (NaN when n < 2);
    ``t`` / ``p`` = the paired t statistic (``n − 1`` degrees of freedom) and its two-sided p-value
    (``scipy.stats.ttest_rel``): ±inf / 0 when every unit differs by the same non-zero amount, NaN when B equals
    A on every unit (``identical``)."""

    metric: str
    n: int
    mean_a: float
    mean_b: float
    diff: float
    se: float
    t: float
    p: float

    @property
    def identical(self) -> bool:
        """B equals A on every shared unit."""
        return self.diff == 0 and (self.se == 0 or math.isnan(self.se))

    def resolved(self, num_se: float = 2.0) -> bool:
        """Whether the difference is more than ``num_se`` standard errors from zero (|t| > num_se)."""
        return not math.isnan(self.t) and abs(self.t) > num_se

    def as_dict(self) -> dict:
        return {**asdict(self), "identical": self.identical}


def read_per_sample(path: str | Path) -> list[dict]:
    """``per_sample.csv`` rows with numbers as floats (empty cells → None, text kept as text; ``id`` and
    ``sweep_of`` always text, so ids like "007" and "7" stay apart)."""
    rows = []
    with Path(path).open(newline="") as f:
        for row in csv.DictReader(f):
            rows.append({key: value if key in ("id", SWEEP_KEY) else _number(value) for key, value in row.items()})
    if not rows:
        raise ValueError(f"{path}: no rows")
    return rows


def _number(value: str | None):
    if value is None or value == "":
        return None
    try:
        return float(value)
    except ValueError:
        return value


def per_unit_values(rows: Sequence[dict], metric: str) -> dict[str, float]:
    """``{unit: value}``: per row id for a column; for :data:`PER_ITEM_SPEARMAN` per sweep group (rows sharing
    ``sweep_of``) the Spearman of requested vs realised strength (``object_speed`` where that is absent). Missing / NaN values are left out."""
    if metric == PER_ITEM_SPEARMAN:
        groups: dict[str, list[dict]] = {}
        for row in rows:
            if row.get(SWEEP_KEY) is not None:
                groups.setdefault(str(row[SWEEP_KEY]), []).append(row)
        values = {}
        for unit, group in groups.items():
            measured = "realised_strength" if group[0].get("realised_strength") is not None else "object_speed"
            group = [r for r in group if r.get(measured) is not None and not r.get("error")]
            strengths = [float(r["strength"]) for r in group]
            if len(group) >= 2 and np.ptp(strengths) > 0:
                values[unit] = strength_spearman(strengths, [float(r[measured]) for r in group])
    else:
        values = {str(r["id"]): _number(r[metric]) if isinstance(r.get(metric), str) else r.get(metric)
                  for r in rows}
    return {unit: float(v) for unit, v in values.items()
            if isinstance(v, (int, float)) and not math.isnan(float(v))}


def paired_difference(rows_a: Sequence[dict], rows_b: Sequence[dict], metric: str) -> PairedDifference:
    """B − A on ``metric`` over the units both have (row ids, or sweep groups for :data:`PER_ITEM_SPEARMAN`).

    Raises ValueError naming the metric when the two share no unit with a value (different manifests, or a
    column neither has)."""
    a, b = per_unit_values(rows_a, metric), per_unit_values(rows_b, metric)
    shared = sorted(set(a) & set(b))
    if not shared:
        raise ValueError(f"metric {metric!r}: no item has a value in both evaluations "
                         f"({len(a)} in A, {len(b)} in B); were they run on the same manifest?")
    values_a = np.array([a[u] for u in shared])
    values_b = np.array([b[u] for u in shared])
    diffs = values_b - values_a
    se = float(diffs.std(ddof=1) / math.sqrt(len(diffs))) if len(diffs) >= 2 else math.nan
    t, p = math.nan, math.nan
    if len(diffs) >= 2 and np.any(diffs != 0):
        if se > 0:
            test = scipy.stats.ttest_rel(values_b, values_a)
            t, p = float(test.statistic), float(test.pvalue)
        else:  # every unit differs by the same amount: no spread, an infinitely sure difference
            t, p = math.copysign(math.inf, float(diffs.mean())), 0.0
    return PairedDifference(metric=metric, n=len(shared), mean_a=float(values_a.mean()),
                            mean_b=float(values_b.mean()), diff=float(diffs.mean()), se=se, t=t, p=p)


def comparison_table(rows_a: Sequence[dict], rows_b: Sequence[dict], name_a: str = "A", name_b: str = "B",
                     metrics: Sequence[tuple[str, str | None]] = DEFAULT_METRICS, num_se: float = 2.0) -> str:
    """Markdown table, one row per metric both evaluations have: n, both means, B − A ± SE, the paired t (n − 1
    degrees of freedom) and its p-value, and the verdict (``identical`` when B equals A on every item;
    ``B better`` / ``B worse`` beyond ``num_se`` SE, else ``within noise``; ``differs`` for metrics without a
    better direction)."""
    lines = [f"| metric | n | {name_a} | {name_b} | {name_b} − {name_a} | ± SE | t (n−1 dof) | p | verdict |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for metric, better in metrics:
        try:
            d = paired_difference(rows_a, rows_b, metric)
        except ValueError:
            continue
        if d.identical:
            lines.append(f"| {metric} | {d.n} | {d.mean_a:.4g} | {d.mean_b:.4g} | 0 | – | – | – | identical |")
            continue
        if not d.resolved(num_se):
            verdict = "within noise"
        elif better is None:
            verdict = "differs"
        else:
            verdict = f"{name_b} {'better' if (d.diff < 0) == (better == 'low') else 'worse'}"
        lines.append(f"| {metric} | {d.n} | {d.mean_a:.4g} | {d.mean_b:.4g} | {d.diff:+.4g} | {d.se:.2g} | "
                     f"{d.t:+.1f} | {d.p:.2g} | {verdict} |")
    if len(lines) == 2:
        raise ValueError("the two evaluations share no metric with values on the same items")
    return "\n".join(lines) + "\n"
