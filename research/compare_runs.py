"""Paired comparison of two evaluations of the same manifest (``evaluate.py``'s per_sample.csv): per metric, the
mean difference B − A over the shared items ± its standard error, and whether it is beyond noise
(``fyc/eval/paired.py``; docs/toy_study.md uses it for every ablation verdict).

    python research/compare_runs.py outputs/study/eval/full outputs/study/eval/no_ma --names full no_ma
    python research/compare_runs.py A/per_sample.csv B/per_sample.csv --metrics motion_leakage i1_mse --out cmp.md

A directory stands for its per_sample.csv. ``strength_spearman_per_item`` is computed per sweep group (rows sharing
``sweep_of``, as written by research/toy_study.py's strength sweep).
"""
from __future__ import annotations

import argparse
from pathlib import Path

from fyc.eval.paired import DEFAULT_METRICS, comparison_table, read_per_sample


def per_sample_path(path: str) -> Path:
    resolved = Path(path)
    if resolved.is_dir():
        resolved = resolved / "per_sample.csv"
    if not resolved.is_file():
        raise SystemExit(f"{path}: expected evaluate.py's per_sample.csv or the directory holding it")
    return resolved


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("a", help="baseline evaluation: per_sample.csv or its directory")
    parser.add_argument("b", help="compared evaluation (the table shows B − A)")
    parser.add_argument("--names", nargs=2, default=["A", "B"], metavar=("NAME_A", "NAME_B"))
    known = dict(DEFAULT_METRICS)
    parser.add_argument("--metrics", nargs="+", default=list(known),
                        help=f"per_sample.csv columns or strength_spearman_per_item (default: {', '.join(known)})")
    parser.add_argument("--num-se", type=float, default=2.0, help="a difference beyond this many SE is resolved")
    parser.add_argument("--out", type=Path, help="also write the table here (markdown)")
    args = parser.parse_args()

    rows_a, rows_b = read_per_sample(per_sample_path(args.a)), read_per_sample(per_sample_path(args.b))
    metrics = [(name, known.get(name)) for name in args.metrics]
    try:
        table = comparison_table(rows_a, rows_b, *args.names, metrics=metrics, num_se=args.num_se)
    except ValueError as error:
        raise SystemExit(f"{args.a} vs {args.b}: {error}") from None
    print(table)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(table)


if __name__ == "__main__":
    main()
