"""Training module / checkpoint → folders that inference loads (diffusers layout, safetensors).

* :func:`export_pipeline`: a module's UNet, VAE, text encoder, tokenizer + a DDIM scheduler built from its training
  scheduler (:func:`sampling_scheduler_for`) → FollowYourClickPipeline folder, with the training contract
  (``training_contract.json``, :mod:`fyc.pipelines.contract`).
* :func:`export_checkpoint`: a Lightning training checkpoint (``.ckpt``) → FollowYourClickUNet folder or full pipeline
  folder; the model is rebuilt from the run config stored in the checkpoint (``fyc_config``), frozen weights come from
  its pretrained paths, trained weights (EMA by default) from the checkpoint.
"""
from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path
from typing import Sequence

import torch

from fyc.models.schedulers import NOISE_SCHEDULE, make_sampling_scheduler
from fyc.pipelines.contract import TrainingContract, contract_from_run
from fyc.pipelines.pipeline_fyc import FollowYourClickPipeline
from fyc.training.checkpoint_io import load_checkpoint

log = logging.getLogger(__name__)


def _replace_dir(tmp: Path, out_dir: Path) -> Path:
    if out_dir.exists():
        shutil.rmtree(out_dir)
    os.replace(tmp, out_dir)
    return out_dir


def sampling_scheduler_for(training_scheduler):
    """The DDIM sampler of a training scheduler: every noise-schedule key of the training config (betas,
    prediction type, zero-terminal-SNR rescaling, timestep spacing, ...) carried over, so a schedule ablation
    (e.g. ``model.noise_scheduler.prediction_type=epsilon``) samples with the schedule it trained with."""
    config = dict(training_scheduler.config)
    return make_sampling_scheduler(**{k: config[k] for k in NOISE_SCHEDULE if k in config})


def training_contract(module) -> TrainingContract:
    """The contract of a training module: its run config, the training statistics it recorded, its scheduler."""
    return contract_from_run(getattr(module, "run_config", None), getattr(module, "training_stats", None),
                             dict(module.noise_scheduler.config), module.spatial_text, module.motion_text)


def pipeline_for(module) -> FollowYourClickPipeline:
    """A FollowYourClickPipeline sharing ``module``'s components, sampling as it trained (scheduler, contract)."""
    pipe = FollowYourClickPipeline(vae=module.vae, text_encoder=module.text_encoder, tokenizer=module.tokenizer,
                                   unet=module.unet, scheduler=sampling_scheduler_for(module.noise_scheduler))
    pipe.training_contract = training_contract(module)
    return pipe


def export_pipeline(module, out_dir: str | Path) -> Path:
    """Save ``module``'s UNet, VAE, text encoder and tokenizer with its sampler and training contract to
    ``out_dir``.

    Written to a temporary sibling folder first and renamed, so a crash never leaves a half-written pipeline.
    """
    out_dir = Path(out_dir)
    tmp = out_dir.with_name(out_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    pipe = pipeline_for(module)
    pipe.save_pretrained(tmp, safe_serialization=True)
    return _replace_dir(tmp, out_dir)


def export_unet(unet, out_dir: str | Path) -> Path:
    """Save a FollowYourClickUNet folder (config.json + diffusion_pytorch_model.safetensors), atomically."""
    out_dir = Path(out_dir)
    tmp = out_dir.with_name(out_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    unet.save_pretrained(tmp, safe_serialization=True)
    return _replace_dir(tmp, out_dir)


def module_from_checkpoint(ckpt_path: str | Path, overrides: Sequence[str] = (), config: str | Path | None = None,
                           weights: str = "ema"):
    """Rebuild the FollowYourClickModule of a training checkpoint with its trained weights loaded.

    Args:
        ckpt_path: Lightning checkpoint written by ``train.py``.
        overrides: OmegaConf dotlist applied to the run config, e.g. ``["pretrained.model=/new/path/sd15"]`` when the
            pretrained folders moved (the stored config is resolved: edit ``model.unet.pretrained_model_name_or_path``
            and friends directly).
        config: a run's ``config.yaml`` to use when the checkpoint has no stored config.
        weights: "ema" (EMA weights when the checkpoint has them, else the raw ones) or "raw".
    Raises:
        KeyError when neither the checkpoint nor ``config`` gives a config; ValueError for a bad ``weights``.
    """
    import hydra
    from omegaconf import OmegaConf

    if weights not in ("ema", "raw"):
        raise ValueError(f"weights must be 'ema' or 'raw', got {weights!r}")
    checkpoint = load_checkpoint(ckpt_path)  # weights_only: a crafted checkpoint cannot run code
    if config is not None:
        cfg = OmegaConf.load(config)
    elif "fyc_config" in checkpoint:
        cfg = OmegaConf.create(checkpoint["fyc_config"])
    else:
        raise KeyError(f"{ckpt_path} holds no run config (fyc_config); pass the run's config.yaml")
    if overrides:
        cfg = OmegaConf.merge(cfg, OmegaConf.from_dotlist(list(overrides)))
    model_cfg = OmegaConf.to_container(cfg.model, resolve=True)
    model_cfg["init_from"] = None  # the checkpoint supersedes the initial weights
    module = hydra.utils.instantiate(model_cfg, _convert_="all")
    state = checkpoint["state_dict"]
    missing, unexpected = module.load_state_dict(state, strict=False)
    trainable = {f"unet.{n}" for n in module.trainable_named_parameters()}
    lacking = sorted(trainable & set(missing))
    if lacking or unexpected:
        raise ValueError(f"{ckpt_path} does not match its config: missing trained weights {lacking[:5]} "
                         f"({len(lacking)}), unexpected {list(unexpected)[:5]} ({len(unexpected)})")
    if weights == "ema" and "ema" in checkpoint:
        named = dict(module.unet.named_parameters())
        with torch.no_grad():
            for name, value in checkpoint["ema"]["shadow"].items():
                named[name].copy_(value.to(named[name].dtype))
        log.info("using the EMA weights of %s", ckpt_path)
    module.run_config = OmegaConf.to_container(cfg, resolve=True)
    stats = checkpoint.get("fyc_training_stats") or {}
    module.training_stats = {k: list(stats.get(k, [])) for k in module.training_stats}
    module.eval()
    return module


def export_checkpoint(ckpt_path: str | Path, out_dir: str | Path, what: str = "unet", weights: str = "ema",
                      overrides: Sequence[str] = (), config: str | Path | None = None) -> Path:
    """Training checkpoint → ``what`` = "unet" (FollowYourClickUNet folder, loadable with
    ``fyc.models.loading.load_fyc_unet_from_folder``) or "pipeline" (``FollowYourClickPipeline.from_pretrained``)."""
    if what not in ("unet", "pipeline"):
        raise ValueError(f"what must be 'unet' or 'pipeline', got {what!r}")
    module = module_from_checkpoint(ckpt_path, overrides, config, weights)
    return export_unet(module.unet, out_dir) if what == "unet" else export_pipeline(module, out_dir)
