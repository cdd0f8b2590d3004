"""What ``evaluate.py`` does for each mode (generate / score / all), keeping finished work.

- Before any sampling every item's input files are checked; all missing ones are reported at once (an error
  with ``strict=true``, else a warning, and those items fail).
- ``generated.jsonl`` and ``per_sample.jsonl`` get a line as each item finishes; a rerun into the same
  ``output_dir`` with the same settings skips the items already generated / scored (different settings, recorded
  in ``run_settings.json``, start over).
- An item that fails (unreadable or missing image / video / mask) gets a row with its ``error`` and the run goes
  on; results.json counts them (``num_failed``). ``strict=true`` makes the run exit non-zero when any failed.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from fyc.eval.manifest import ManifestItem, load_manifest, write_manifest
from fyc.eval.score import resolve_label_flow_backend, score_items, write_reports

log = logging.getLogger(__name__)
MODES = ("generate", "score", "all")


def missing_inputs(items: list[ManifestItem], mode: str, need_reference: bool = False) -> dict[str, str]:
    """``{id: "missing image <path>; ..."}`` for every item whose input files for ``mode`` do not exist."""
    fields = ["image", "mask"] + (["video"] if mode == "score" else []) + (["reference_video"] if need_reference else [])
    problems = {}
    for item in items:
        missing = [f"missing {key} {getattr(item, key)}" for key in fields
                   if getattr(item, key) is not None and not Path(getattr(item, key)).is_file()]
        if missing:
            problems[item.id] = "; ".join(missing)
    return problems


def _read_jsonl(path: Path) -> list[dict]:
    """The complete JSON lines of ``path`` (a line cut short by a killed run is ignored)."""
    rows = []
    if path.is_file():
        for line in path.read_text().splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return rows


def _append_jsonl(path: Path, row: dict) -> None:
    with path.open("a") as f:
        f.write(json.dumps(row, default=float) + "\n")
        f.flush()


def _resume(out_dir: Path, stage: str, settings: dict) -> bool:
    """Whether ``stage``'s finished work in ``out_dir`` was made with ``settings`` (records them if not)."""
    path = out_dir / "run_settings.json"
    recorded = json.loads(path.read_text()) if path.is_file() else {}
    same = recorded.get(stage) == json.loads(json.dumps(settings, default=str))
    if not same:
        recorded[stage] = settings
        out_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(recorded, indent=2, default=str))
    return same


def evaluate(cfg: DictConfig) -> dict[str, Path]:
    """Run ``cfg.mode`` and return the paths written (manifest of generated videos, results, table...)."""
    if cfg.mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {cfg.mode!r}")
    out_dir = Path(cfg.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    items = load_manifest(cfg.manifest)
    strict = bool(cfg.get("strict", False))
    expected = cfg.get("expected_num_items")
    if expected is not None and len(items) != int(expected):
        raise ValueError(f"protocol {cfg.get('eval_protocol_name')!r} needs {expected} manifest items, "
                         f"{cfg.manifest} has {len(items)}")
    problems = missing_inputs(items, cfg.mode, need_reference=bool(cfg.metrics.get("fvd_detector")))
    if problems:
        message = f"{len(problems)} of {len(items)} items of {cfg.manifest} lack input files:\n" + "\n".join(
            f"  {item_id}: {problem}" for item_id, problem in problems.items())
        if strict:
            raise FileNotFoundError(message + "\n(strict=true: nothing was run)")
        log.warning("%s\nthese items are recorded as failed; the others run", message)
    failed = {item_id: {"id": item_id, "error": f"FileNotFoundError: {problem}"} for item_id, problem in problems.items()}
    written: dict[str, Path] = {}
    fresh: set[str] = set()
    if cfg.mode in ("generate", "all"):
        items, fresh = _generate(cfg, items, out_dir, failed)
        written["generated_manifest"] = out_dir / "generated.jsonl"
    contract = training_contract(cfg.pipeline_dir)
    if cfg.mode in ("score", "all"):
        metrics_cfg = OmegaConf.to_container(cfg.metrics, resolve=True)
        metrics_cfg["label_flow_backend"] = resolve_label_flow_backend(metrics_cfg.get("label_flow_backend"), contract)
        rows_path = out_dir / "per_sample.jsonl"
        if not _resume(out_dir, "score", {"metrics": metrics_cfg, "manifest": str(cfg.manifest)}):
            rows_path.unlink(missing_ok=True)
        done = {row["id"]: row for row in _read_jsonl(rows_path) if not row.get("error") and row["id"] not in fresh}
        for item in items:
            if item.id in failed:  # recorded in the log too: its row says why it has no metrics
                done[item.id] = {"id": item.id, "prompt": item.prompt, "strength": item.strength,
                                 **failed[item.id]}
                _append_jsonl(rows_path, done[item.id])
        if done:
            log.info("scoring: %d of %d items already scored or failed before scoring", len(done), len(items))
        rows, summary, metric_protocol = score_items(items, **metrics_cfg, device=cfg.get("device", "cpu"),
                                                     done=done, on_row=lambda row: _append_jsonl(rows_path, row))
        protocol = {"method": cfg.method_name, "manifest": str(cfg.manifest),
                    "pipeline_dir": cfg.pipeline_dir, "num_samples": len(items),
                    "eval_protocol": cfg.get("eval_protocol_name"),
                    "generation": OmegaConf.to_container(cfg.generation, resolve=True),
                    "scheduler_overrides": scheduler_overrides(cfg),
                    "metrics": metrics_cfg, "training_contract": contract, **metric_protocol}
        written.update(write_reports(out_dir, rows, summary, protocol))
        written["per_sample_log"] = rows_path
        log.info("metrics: %s", summary)
        failures = {row["id"]: row["error"] for row in rows if row.get("error")}
    else:
        failures = {item_id: row["error"] for item_id, row in failed.items()}
    if failures:
        log.warning("%d item(s) failed: %s", len(failures), failures)
        if strict:
            raise RuntimeError(f"strict=true and {len(failures)} item(s) failed (their rows say why): "
                               + "; ".join(f"{k}: {v}" for k, v in failures.items()))
    return written


def _generate(cfg: DictConfig, items: list[ManifestItem], out_dir: Path,
              failed: dict[str, dict]) -> tuple[list[ManifestItem], set[str]]:
    """Generate every item not generated before with the same settings; returns all items (``video`` set where
    generated) and the ids generated in this run. Adds failures to ``failed``."""
    if not cfg.pipeline_dir:
        raise ValueError("pipeline_dir is required for mode=generate/all (a folder exported by train.py)")
    import dataclasses

    from fyc.pipelines.generate import generate_videos, item_seeds

    generation = OmegaConf.to_container(cfg.generation, resolve=True)
    manifest_path = out_dir / "generated.jsonl"
    settings = {"generation": generation, "pipeline_dir": str(cfg.pipeline_dir),
                "scheduler_overrides": scheduler_overrides(cfg)}
    previous = {}
    if _resume(out_dir, "generate", settings) and manifest_path.is_file():
        for row in _read_jsonl(manifest_path):
            video = row.get("video")
            if video is not None and not Path(video).is_absolute():
                video = str(manifest_path.parent / video)
            if video is not None and Path(video).is_file():
                previous[str(row["id"])] = video
    todo = [item for item in items if item.id not in previous and item.id not in failed]
    log.info("generation: %d items to generate, %d already generated, %d failed before generation",
             len(todo), len(previous), len(failed))
    pipeline = _load_pipeline(cfg) if todo else None
    seeds = dict(zip([item.id for item in items], item_seeds(items, int(generation.get("seed", 0)))))
    done_items, fresh = [], set()
    kept = [item for item in items if item.id in previous]
    write_manifest(manifest_path, [dataclasses.replace(item, video=previous[item.id]) for item in kept])
    for item in items:
        if item.id in failed:
            done_items.append(item)
            continue
        if item.id in previous:
            done_items.append(dataclasses.replace(item, video=previous[item.id]))
            continue
        try:
            # one item at a time with its own seed (the same seeds as one call over the whole list)
            generated = generate_videos(pipeline, [item], out_dir / "videos", **{**generation, "seed": seeds[item.id]})[0]
        except Exception as err:  # an unreadable image, a bad mask...: recorded, the run goes on
            failed[item.id] = {"id": item.id, "error": f"{type(err).__name__}: {err}", "stage": "generate"}
            log.warning("%s: generation failed: %s", item.id, err)
            done_items.append(item)
            continue
        _append_jsonl(manifest_path, generated.to_json(relative_to=manifest_path.parent))
        done_items.append(generated)
        fresh.add(item.id)
    write_manifest(manifest_path, [item for item in done_items if item.video is not None and item.id not in failed])
    return done_items, fresh


def _load_pipeline(cfg: DictConfig):
    from fyc.pipelines.pipeline_fyc import FollowYourClickPipeline

    pipeline = FollowYourClickPipeline.from_pretrained(cfg.pipeline_dir).to(cfg.get("device", "cpu"))
    overrides = scheduler_overrides(cfg)
    if overrides:  # e.g. set_alpha_to_one on a pipeline exported before it became the default
        unknown = sorted(set(overrides) - set(pipeline.scheduler.config))
        if unknown:
            raise ValueError(f"scheduler_overrides: {unknown} are not config keys of the pipeline's "
                             f"{type(pipeline.scheduler).__name__} ({sorted(pipeline.scheduler.config)})")
        pipeline.scheduler = type(pipeline.scheduler).from_config(pipeline.scheduler.config, **overrides)
    return pipeline


def training_contract(pipeline_dir: str | None) -> dict | None:
    """The ``training_contract.json`` of a pipeline folder as a dict (None without a folder or a contract):
    what the model was trained with, recorded in results.json beside the metrics."""
    if not pipeline_dir:
        return None
    import dataclasses

    from fyc.pipelines.contract import TrainingContract  # plain dataclass + json, no model code

    contract = TrainingContract.load(pipeline_dir)
    return None if contract is None else dataclasses.asdict(contract)


def scheduler_overrides(cfg: DictConfig) -> dict:
    """``cfg.scheduler_overrides`` as a plain dict (empty when unset)."""
    overrides = cfg.get("scheduler_overrides")
    return OmegaConf.to_container(overrides, resolve=True) if overrides else {}
