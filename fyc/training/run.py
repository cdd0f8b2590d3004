"""Build everything a training config names, fit, and export the pipeline. ``train.py`` is a thin wrapper."""
from __future__ import annotations

import logging
import os
from pathlib import Path

import hydra
import lightning as L
from omegaconf import DictConfig, OmegaConf

from fyc.training.checkpoint_io import clean_stale_temp_files
from fyc.training.export import export_pipeline
from fyc.training.preflight import (Finding, PreflightError, PreflightReport, check_global_batch_size,  # noqa: F401
                                    check_strategy_available, run_preflight)
from fyc.training.resume import RNGStateCallback, make_train_loader_resumable
from fyc.training.run_guard import ResumeError, ResumePlan, plan_resume, resolve_ckpt_path  # noqa: F401

log = logging.getLogger(__name__)


def _instantiate_dict(cfg: DictConfig | None) -> list:
    """Instantiate every ``_target_`` entry of a config dict (callbacks, loggers); None/empty → []."""
    if not cfg:
        return []
    return [hydra.utils.instantiate(node) for node in cfg.values() if node is not None and "_target_" in node]


def _is_sharded(trainer: L.Trainer) -> bool:
    name = type(trainer.strategy).__name__
    return "FSDP" in name or "DeepSpeed" in name


def _local_rank() -> int:
    """This process's rank on its node (0 when not launched by DDP/torchrun/SLURM)."""
    for name in ("LOCAL_RANK", "SLURM_LOCALID"):
        if os.environ.get(name, "").isdigit():
            return int(os.environ[name])
    return 0


def _global_rank() -> int:
    for name in ("RANK", "SLURM_PROCID"):
        if os.environ.get(name, "").isdigit():
            return int(os.environ[name])
    return 0


def check_before_loading(cfg: DictConfig) -> PreflightReport:
    """The preflight report (``fyc.training.preflight``) on one process per node; the others only plan the resume.
    Raises :class:`PreflightError` listing every problem at once."""
    if cfg.get("preflight", {}).get("enabled", True) and _local_rank() == 0:
        report = run_preflight(cfg)
    else:
        report = PreflightReport()
        try:
            report.resume = plan_resume(cfg)
        except ResumeError as error:
            report.problems.append(Finding(error.key, error.problem, error.fix))
    if not report.ok:
        raise PreflightError(report, f"preflight of {cfg.get('task_name', 'train')}")
    return report


def train(cfg: DictConfig) -> dict:
    """Fit the model described by ``cfg``; returns metrics and paths (checkpoint dir, exported pipeline).

    With ``preflight.only`` only the checks run (nothing is loaded or written): returns
    ``{"metrics": {}, "preflight": report}``. Otherwise raises :class:`PreflightError` (every problem found, each
    with its fix) before anything loads."""
    if cfg.get("preflight", {}).get("only", False):
        return {"metrics": {}, "preflight": run_preflight(cfg)}
    output_dir = Path(cfg.paths.output_dir)
    if _global_rank() == 0:  # partial checkpoints of a crashed run would otherwise pile up
        clean_stale_temp_files(output_dir / "checkpoints")
    report = check_before_loading(cfg)
    for warning in report.warnings:
        log.warning(warning)
    plan: ResumePlan = report.resume
    for line in plan.describe():
        log.info(line)
    L.seed_everything(cfg.seed, workers=True)
    output_dir.mkdir(parents=True, exist_ok=True)
    OmegaConf.save(cfg, output_dir / "config.yaml", resolve=True)

    log.info("instantiating data <%s>", cfg.data._target_)
    datamodule = make_train_loader_resumable(hydra.utils.instantiate(cfg.data, _convert_="all"))
    log.info("instantiating model <%s>", cfg.model._target_)
    model = hydra.utils.instantiate(cfg.model, _convert_="all")
    model.run_config = OmegaConf.to_container(cfg, resolve=True)
    callbacks = _instantiate_dict(cfg.get("callbacks")) + [RNGStateCallback()]
    loggers = _instantiate_dict(cfg.get("logger"))
    trainer: L.Trainer = hydra.utils.instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False,
                                                 _convert_="all")

    trainer.fit(model, datamodule=datamodule, ckpt_path=plan.ckpt_path, weights_only=True)
    if plan.ckpt_path is not None:
        log.info("resumed from step %s; stopped at step %d", plan.step, trainer.global_step)
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    result = {"metrics": metrics, "output_dir": str(output_dir)}
    if cfg.get("export_pipeline") and _is_sharded(trainer):
        log.warning("pipeline export skipped under a sharded strategy: run scripts/export.py on the last checkpoint")
    elif cfg.get("export_pipeline") and trainer.is_global_zero:
        with model.ema_weights():
            result["pipeline_dir"] = str(export_pipeline(model, output_dir / "pipeline"))
        log.info("exported pipeline to %s", result["pipeline_dir"])
    return result
