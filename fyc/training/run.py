"""Build everything a training config names, fit, and export the pipeline. ``train.py`` is a thin wrapper."""
from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

import hydra
import lightning as L
from omegaconf import DictConfig, OmegaConf

from fyc.training.export import export_pipeline
from fyc.training.resume import RNGStateCallback, make_train_loader_resumable

log = logging.getLogger(__name__)


def _instantiate_dict(cfg: DictConfig | None) -> list:
    """Instantiate every ``_target_`` entry of a config dict (callbacks, loggers); None/empty → []."""
    if not cfg:
        return []
    return [hydra.utils.instantiate(node) for node in cfg.values() if node is not None and "_target_" in node]


def resolve_ckpt_path(ckpt_path: str | None, output_dir: str | Path) -> str | None:
    """``"last"`` → the newest of ``<output_dir>/checkpoints/last.ckpt`` and the SLURM requeue checkpoints
    ``<output_dir>/hpc_ckpt_<n>.ckpt`` (None when there is none, i.e. a fresh start); anything else unchanged."""
    if ckpt_path != "last":
        return ckpt_path
    output_dir = Path(output_dir)
    candidates = [p for p in [output_dir / "checkpoints" / "last.ckpt", *output_dir.glob("hpc_ckpt_*.ckpt")]
                  if p.is_file()]
    return str(max(candidates, key=lambda p: p.stat().st_mtime)) if candidates else None


def check_strategy_available(strategy) -> None:
    """Fail early, with the fix, when a config names a strategy whose optional dependency is missing."""
    if isinstance(strategy, (dict, DictConfig)):
        name = str(strategy.get("_target_", ""))
    else:
        name = strategy if isinstance(strategy, str) else type(strategy).__name__
    if "deepspeed" in name.lower() and importlib.util.find_spec("deepspeed") is None:
        raise ImportError("trainer=deepspeed_zero2 needs the optional dependency DeepSpeed, which is not installed: "
                          "`pip install deepspeed` (needs a CUDA toolkit), or use trainer=ddp / trainer=fsdp")


def check_global_batch_size(cfg: DictConfig) -> None:
    """``global_batch_size`` (when set) must equal batch_size x devices x num_nodes x accumulate_grad_batches."""
    expected = cfg.get("global_batch_size")
    devices = cfg.trainer.get("devices", 1)
    if expected is None or not isinstance(devices, int) or devices < 1:
        return
    actual = (cfg.data.batch_size * devices * cfg.trainer.get("num_nodes", 1)
              * cfg.trainer.get("accumulate_grad_batches", 1))
    if actual != expected:
        raise ValueError(
            f"global_batch_size={expected} but data.batch_size ({cfg.data.batch_size}) x trainer.devices ({devices}) x "
            f"trainer.num_nodes ({cfg.trainer.get('num_nodes', 1)}) x trainer.accumulate_grad_batches "
            f"({cfg.trainer.get('accumulate_grad_batches', 1)}) = {actual}; adjust one of them "
            f"(or set global_batch_size=null)")


def _is_sharded(trainer: L.Trainer) -> bool:
    name = type(trainer.strategy).__name__
    return "FSDP" in name or "DeepSpeed" in name


def train(cfg: DictConfig) -> dict:
    """Fit the model described by ``cfg``; returns metrics and paths (checkpoint dir, exported pipeline)."""
    L.seed_everything(cfg.seed, workers=True)
    output_dir = Path(cfg.paths.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    OmegaConf.save(cfg, output_dir / "config.yaml", resolve=True)
    check_strategy_available(cfg.trainer.get("strategy"))
    check_global_batch_size(cfg)

    log.info("instantiating data <%s>", cfg.data._target_)
    datamodule = make_train_loader_resumable(hydra.utils.instantiate(cfg.data, _convert_="all"))
    log.info("instantiating model <%s>", cfg.model._target_)
    model = hydra.utils.instantiate(cfg.model, _convert_="all")
    model.run_config = OmegaConf.to_container(cfg, resolve=True)
    callbacks = _instantiate_dict(cfg.get("callbacks")) + [RNGStateCallback()]
    loggers = _instantiate_dict(cfg.get("logger"))
    trainer: L.Trainer = hydra.utils.instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False,
                                                 _convert_="all")

    trainer.fit(model, datamodule=datamodule, ckpt_path=resolve_ckpt_path(cfg.get("ckpt_path"), output_dir))
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    result = {"metrics": metrics, "output_dir": str(output_dir)}
    if cfg.get("export_pipeline") and _is_sharded(trainer):
        log.warning("pipeline export skipped under a sharded strategy: run scripts/export.py on the last checkpoint")
    elif cfg.get("export_pipeline") and trainer.is_global_zero:
        with model.ema_weights():
            result["pipeline_dir"] = str(export_pipeline(model, output_dir / "pipeline"))
        log.info("exported pipeline to %s", result["pipeline_dir"])
    return result
