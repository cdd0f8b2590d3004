"""The toy study's evaluation pieces (research/toy_study.py runs them; docs/toy_study.md reports them).

- :func:`strength_sweep_items`: each held-out toy item at several requested strengths (multiples of its true label);
- :func:`oracle_items`: the true toy videos at the generated size, scored like generated ones — the floor every
  metric can reach on this benchmark (e.g. the leakage a perfect model still gets from flow noise);
- :func:`per_item_spearman`: strength controllability within each item (same image, object and prompt, only the
  requested strength changes), averaged over items; cleaner than the pooled Spearman across different objects;
- :func:`study_table`: the markdown table of all variants;
- :func:`load_ablations` / :func:`ablation_table`: each ``configs/ablation/*.yaml``'s ``ablation_meta`` block (what
  it changes, the metric it should hurt), the one source of the study's variants, verdicts and docs table.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Sequence

import numpy as np
import yaml

from fyc.data.video_io import read_video, write_video
from fyc.eval.manifest import ManifestItem
from fyc.eval.paired import PER_ITEM_SPEARMAN, SWEEP_KEY, per_unit_values


def strength_sweep_items(items: Sequence[ManifestItem], factors: Sequence[float]) -> list[ManifestItem]:
    """Each item once per factor, strength = factor x its label, id ``<id>@x<factor>``, ``sweep_of`` = the id.

    Items without a strength are an error (the toy benchmark always has one)."""
    if len(set(factors)) < 2:
        raise ValueError(f"a strength sweep needs at least 2 distinct factors, got {list(factors)}")
    swept = []
    for item in items:
        if item.strength is None:
            raise ValueError(f"{item.id}: a strength sweep needs the item's strength")
        for factor in factors:
            extra = {**item.extra, SWEEP_KEY: item.id, "strength_factor": float(factor)}
            swept.append(replace(item, id=f"{item.id}@x{factor:g}", strength=round(item.strength * factor, 4),
                                 video=None, extra=extra))
    return swept


def oracle_items(items: Sequence[ManifestItem], out_dir: str | Path, num_frames: int,
                 size: tuple[int, int]) -> list[ManifestItem]:
    """The items' ``reference_video`` (the true toy video) cut to ``num_frames`` and resized to ``size`` (H, W),
    written near-losslessly to ``out_dir`` and set as each item's ``video``."""
    out_dir = Path(out_dir)
    oracle = []
    for item in items:
        if item.reference_video is None:
            raise ValueError(f"{item.id}: the oracle needs 'reference_video'")
        frames = read_video(item.reference_video, range(num_frames), size=size)
        path = write_video(out_dir / f"{item.id}.mp4", frames, pixel_format="yuv444p")
        oracle.append(replace(item, video=str(path)))
    return oracle


def per_item_spearman(rows: Sequence[dict]) -> float:
    """Mean over sweep groups (rows sharing ``sweep_of``) of Spearman(requested, realised strength);
    NaN when no group has 2 or more distinct strengths."""
    values = per_unit_values(rows, PER_ITEM_SPEARMAN)
    return float(np.mean(list(values.values()))) if values else math.nan


# (summary key, column title, better direction) of the study table.
STUDY_COLUMNS = (
    ("motion_leakage", "leakage ↓", "low"),
    ("strength_spearman_per_item", "strength ρ per item ↑", "high"),
    ("strength_spearman", "strength ρ pooled ↑", "high"),
    ("direction_accuracy", "direction acc. ↑", "high"),
    ("direction_accuracy_translate", "direction acc., translate set ↑", "high"),  # research/toy_study.py
    ("motion_kind_accuracy", "motion-kind acc. ↑", "high"),
    ("realised_strength", "realised strength", None),
    ("object_speed", "object px/pair", None),
    ("out_region_magnitude", "out-region px/pair ↓", "low"),
    ("i1_mse", "I1-MSE ↓", "low"),
)


def study_table(results: dict[str, dict]) -> str:
    """Markdown table, one row per variant (``results[name] = summary``), columns :data:`STUDY_COLUMNS`."""
    lines = ["| variant | " + " | ".join(title for _, title, _ in STUDY_COLUMNS) + " |",
             "|---|" + "---:|" * len(STUDY_COLUMNS)]
    for name, summary in results.items():
        cells = []
        for key, _, _ in STUDY_COLUMNS:
            value = summary.get(key)
            cells.append("–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.3f}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


ABLATION_DIR = Path(__file__).resolve().parents[2] / "configs" / "ablation"
TOY_STUDY_SETS = ("default", "opt-in")


@dataclass(frozen=True)
class Ablation:
    """One ``configs/ablation/<name>.yaml``'s ``ablation_meta``: what it changes, the toy-study summary metric it
    should hurt (``hurts``; None: no claim), that metric's better direction, where its per-sample values live for the
    paired verdict (``verdict_source`` = (evaluation folder under the study's out dir, per_sample.csv column)) and
    whether it is in the toy study's default variant set (``toy_study`` = "default") or run by ``--variants``."""

    name: str
    changes: str
    hurts: str | None
    better: str | None
    verdict_source: tuple[str, str] | None
    toy_study: str

    @property
    def overrides(self) -> list[str]:
        return [f"ablation={self.name}"]


def load_ablations(directory: str | Path = ABLATION_DIR) -> dict[str, Ablation]:
    """``name -> Ablation`` for every ``*.yaml`` in ``directory``, sorted with ``full`` first; a missing or
    inconsistent ``ablation_meta`` is an error naming the file and field."""
    ablations = {}
    for path in sorted(Path(directory).glob("*.yaml"), key=lambda p: (p.stem != "full", p.stem)):
        meta = (yaml.safe_load(path.read_text()) or {}).get("ablation_meta")
        if not isinstance(meta, dict):
            raise ValueError(f"{path}: no 'ablation_meta' block (changes, hurts, better, verdict_source, toy_study)")
        missing = {"changes", "hurts", "better", "verdict_source", "toy_study"} - set(meta)
        if missing:
            raise ValueError(f"{path}: ablation_meta lacks {sorted(missing)}")
        hurts, better, source = meta["hurts"], meta["better"], meta["verdict_source"]
        if (hurts is None) != (better is None) or (hurts is None) != (source is None):
            raise ValueError(f"{path}: ablation_meta.hurts={hurts!r}, better={better!r}, verdict_source={source!r}: "
                             "set all three or none")
        if better not in (None, "low", "high"):
            raise ValueError(f"{path}: ablation_meta.better={better!r}, expected low or high")
        if source is not None and set(source) != {"evaluation", "column"}:
            raise ValueError(f"{path}: ablation_meta.verdict_source={source!r}, "
                             "expected {evaluation: <folder>, column: <per_sample.csv column>}")
        if meta["toy_study"] not in TOY_STUDY_SETS:
            raise ValueError(f"{path}: ablation_meta.toy_study={meta['toy_study']!r}, expected one of {TOY_STUDY_SETS}")
        ablations[path.stem] = Ablation(
            name=path.stem, changes=str(meta["changes"]), hurts=hurts, better=better,
            verdict_source=None if source is None else (source["evaluation"], source["column"]),
            toy_study=meta["toy_study"])
    return ablations


def verdict_sources(ablations: dict[str, Ablation]) -> dict[str, tuple[str, str]]:
    """Metric -> (evaluation folder, per_sample.csv column); one source per metric across all ablations."""
    sources: dict[str, tuple[str, str]] = {}
    for ablation in ablations.values():
        if ablation.hurts is None:
            continue
        if sources.setdefault(ablation.hurts, ablation.verdict_source) != ablation.verdict_source:
            raise ValueError(f"ablation {ablation.name}: verdict_source {ablation.verdict_source} for {ablation.hurts} "
                             f"differs from another ablation's {sources[ablation.hurts]}")
    return sources


def ablation_table(ablations: dict[str, Ablation]) -> str:
    """Markdown table of the ablations (``python research/toy_study.py --list-ablations`` prints it)."""
    lines = ["| `ablation=` | changes | should hurt | toy study |", "|---|---|---|---|"]
    for a in ablations.values():
        hurts = "–" if a.hurts is None else f"`{a.hurts}` ({'lower' if a.better == 'low' else 'higher'} is better)"
        lines.append(f"| `{a.name}` | {a.changes} | {hurts} | {a.toy_study} |")
    return "\n".join(lines) + "\n"
