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
    expected = cfg.get("expected_num_items")
    if expected is not None and len(items) != int(expected):
        raise ValueError(f"protocol {cfg.get('eval_protocol_name')!r} needs {expected} manifest items, "
                         f"{cfg.manifest} has {len(items)}")
    written: dict[str, Path] = {}
    if cfg.mode in ("generate", "all"):
        if not cfg.pipeline_dir:
            raise ValueError("pipeline_dir is required for mode=generate/all (a folder exported by train.py)")
        from fyc.pipelines.generate import generate_videos
        from fyc.pipelines.pipeline_fyc import FollowYourClickPipeline

        pipeline = FollowYourClickPipeline.from_pretrained(cfg.pipeline_dir).to(cfg.get("device", "cpu"))
        overrides = scheduler_overrides(cfg)
        if overrides:  # e.g. set_alpha_to_one on a pipeline exported before it became the default
            unknown = sorted(set(overrides) - set(pipeline.scheduler.config))
            if unknown:
                raise ValueError(f"scheduler_overrides: {unknown} are not config keys of the pipeline's "
                                 f"{type(pipeline.scheduler).__name__} ({sorted(pipeline.scheduler.config)})")
            pipeline.scheduler = type(pipeline.scheduler).from_config(pipeline.scheduler.config, **overrides)
        items = generate_videos(pipeline, items, out_dir / "videos", **cfg.generation)
        written["generated_manifest"] = write_manifest(out_dir / "generated.jsonl", items)
    if cfg.mode in ("score", "all"):
        metrics_cfg = OmegaConf.to_container(cfg.metrics, resolve=True)
        rows, summary, metric_protocol = score_items(items, **metrics_cfg, device=cfg.get("device", "cpu"))
        protocol = {"method": cfg.method_name, "manifest": str(cfg.manifest),
                    "pipeline_dir": cfg.pipeline_dir, "num_samples": len(items),
                    "eval_protocol": cfg.get("eval_protocol_name"),
                    "generation": OmegaConf.to_container(cfg.generation, resolve=True),
                    "scheduler_overrides": scheduler_overrides(cfg),
                    "metrics": metrics_cfg, **metric_protocol}
        written.update(write_reports(out_dir, rows, summary, protocol))
        log.info("metrics: %s", summary)
    return written


def scheduler_overrides(cfg: DictConfig) -> dict:
    """``cfg.scheduler_overrides`` as a plain dict (empty when unset)."""
    overrides = cfg.get("scheduler_overrides")
    return OmegaConf.to_container(overrides, resolve=True) if overrides else {}
