"""What ``evaluate.py`` does for each mode (generate / score / all)."""
from __future__ import annotations

import logging
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from fyc.eval.manifest import load_manifest, write_manifest
from fyc.eval.score import score_items, write_reports

log = logging.getLogger(__name__)
MODES = ("generate", "score", "all")


def evaluate(cfg: DictConfig) -> dict[str, Path]:
    """Run ``cfg.mode`` and return the paths written (manifest of generated videos, results, table...)."""
    if cfg.mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {cfg.mode!r}")
    out_dir = Path(cfg.output_dir)
    items = load_manifest(cfg.manifest)
    written: dict[str, Path] = {}
    if cfg.mode in ("generate", "all"):
        if not cfg.pipeline_dir:
            raise ValueError("pipeline_dir is required for mode=generate/all (a folder exported by train.py)")
        from fyc.pipelines.generate import generate_videos
        from fyc.pipelines.pipeline_fyc import FollowYourClickPipeline

        pipeline = FollowYourClickPipeline.from_pretrained(cfg.pipeline_dir)
        items = generate_videos(pipeline, items, out_dir / "videos", **cfg.generation)
        written["generated_manifest"] = write_manifest(out_dir / "generated.jsonl", items)
    if cfg.mode in ("score", "all"):
        rows, summary = score_items(items, **cfg.metrics)
        protocol = {"method": cfg.method_name, "manifest": str(cfg.manifest),
                    "pipeline_dir": cfg.pipeline_dir, "num_samples": len(items),
                    "generation": OmegaConf.to_container(cfg.generation),
                    "metrics": OmegaConf.to_container(cfg.metrics)}
        written.update(write_reports(out_dir, rows, summary, protocol))
        log.info("metrics: %s", summary)
    return written
