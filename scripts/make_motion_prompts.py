"""Short motion prompts (WebVid-Motion style) for a WebVid CSV: caption → objects + short motion phrases.

    # offline, rule-based (motion-verb lexicon + light parsing):
    python scripts/make_motion_prompts.py --csv results_10M_train.csv --out prompts.jsonl --out-csv train_motion.csv
    # an instruction-tuned LLM through transformers (hub id or local folder), ~50 in-context examples:
    python scripts/make_motion_prompts.py --csv results_10M_train.csv --out prompts.jsonl --llm Qwen/Qwen2.5-1.5B-Instruct \
        --device cuda --dtype bfloat16 --batch-size 32
    # accuracy of the rule-based extractor on the hand-labelled captions in data/motion_prompts/:
    python scripts/make_motion_prompts.py --evaluate

Resumable: rerunning with the same --out skips the videoids already written. --out-csv writes the CSV with a
``short_prompt`` column for ``WebVidDataset(require_short_prompt=True)`` (stage-2 training with the MA module).
"""
from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from fyc.data.motion_prompts import (EXAMPLES_PATH, LABELLED_PATH, LLMExtractor, RuleBasedExtractor,
                                     evaluate_extractor, load_labelled, make_motion_prompts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--csv", type=Path, help="WebVid CSV (videoid, name)")
    parser.add_argument("--caption-column", default="name")
    parser.add_argument("--out", type=Path, help="output JSONL (appended; resumable)")
    parser.add_argument("--out-csv", type=Path, default=None, help="also write the CSV with a short_prompt column")
    parser.add_argument("--llm", default=None, help="causal LM: hub id or local folder (default: rule-based)")
    parser.add_argument("--examples", type=Path, default=EXAMPLES_PATH, help="in-context examples (JSON)")
    parser.add_argument("--max-examples", type=int, default=50)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default=None, help="e.g. bfloat16 (LLM only)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--evaluate", nargs="?", const=str(LABELLED_PATH), default=None, metavar="JSONL",
                        help="report the extractor's accuracy on a labelled JSONL (default: the shipped set)")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    if args.llm:
        extractor = LLMExtractor(args.llm, examples_path=args.examples, max_examples=args.max_examples,
                                 max_new_tokens=args.max_new_tokens, batch_size=args.batch_size, device=args.device,
                                 dtype=args.dtype)
    else:
        extractor = RuleBasedExtractor()
    if args.evaluate:
        report = evaluate_extractor(extractor, load_labelled(args.evaluate))
        print(json.dumps({k: v for k, v in report.items() if k != "errors"}, indent=2))
        for error in report["errors"]:
            print(f"  wrong: {error['caption']!r}: gold {error['gold']!r}, got {error['predicted']!r}")
        return 0
    if args.csv is None or args.out is None:
        parser.error("--csv and --out are required (or use --evaluate)")
    result = make_motion_prompts(args.csv, args.out, extractor, caption_column=args.caption_column,
                                 batch_size=args.batch_size, out_csv=args.out_csv, limit=args.limit,
                                 progress=not args.no_progress)
    print(f"{result.processed} captions done now ({result.sources}), {result.done} already done, "
          f"{result.bad_rows} bad rows -> {args.out}" + (f", {args.out_csv}" if args.out_csv else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
