"""Build everything a training config names, fit, and export the pipeline. ``train.py`` is a thin wrapper."""
from __future__ import annotations

import logging
from pathlib import Path

import hydra
import lightning as L
from omegaconf import DictConfig, OmegaConf

from fyc.training.export import export_pipeline

log = logging.getLogger(__name__)


def _instantiate_dict(cfg: DictConfig | None) -> list:
    """Instantiate every ``_target_`` entry of a config dict (callbacks, loggers); None/empty → []."""
    if not cfg:
        return []
    return [hydra.utils.instantiate(node) for node in cfg.values() if node is not None and "_target_" in node]


def resolve_ckpt_path(ckpt_path: str | None, output_dir: str | Path) -> str | None:
    """``"last"`` → ``<output_dir>/checkpoints/last.ckpt`` (None when absent, i.e. a fresh start); else unchanged."""
    if ckpt_path != "last":
        return ckpt_path
    last = Path(output_dir) / "checkpoints" / "last.ckpt"
    return str(last) if last.is_file() else None


def train(cfg: DictConfig) -> dict:
    """Fit the model described by ``cfg``; returns metrics and paths (checkpoint dir, exported pipeline)."""
    L.seed_everything(cfg.seed, workers=True)
    output_dir = Path(cfg.paths.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    OmegaConf.save(cfg, output_dir / "config.yaml", resolve=True)

    log.info("instantiating data <%s>", cfg.data._target_)
    datamodule = hydra.utils.instantiate(cfg.data, _convert_="all")
    log.info("instantiating model <%s>", cfg.model._target_)
    model = hydra.utils.instantiate(cfg.model, _convert_="all")
    callbacks = _instantiate_dict(cfg.get("callbacks"))
    loggers = _instantiate_dict(cfg.get("logger"))
    trainer: L.Trainer = hydra.utils.instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)

    trainer.fit(model, datamodule=datamodule, ckpt_path=resolve_ckpt_path(cfg.get("ckpt_path"), output_dir))
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    result = {"metrics": metrics, "output_dir": str(output_dir)}
    if cfg.get("export_pipeline") and trainer.is_global_zero:
        result["pipeline_dir"] = str(export_pipeline(model, output_dir / "pipeline"))
        log.info("exported pipeline to %s", result["pipeline_dir"])
    return result
