"""LightningModule: v-prediction training of FollowYourClickUNet with frozen VAE and text encoder."""
from __future__ import annotations

import contextlib
import logging
import os
import resource
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F

from fyc.models.first_frame_masking import mask_first_frame_latent
from fyc.models.trainable import parameter_group_of, parameter_groups, select_trainable_parameters
from fyc.training.checkpoint_io import load_checkpoint
from fyc.training.conditioning import ConditionDropout, encode_text, encode_video, mask_to_latent
from fyc.training.ema import EMAWeights

log = logging.getLogger(__name__)

TEXT_SOURCES = ("caption", "short_prompt")
#: constructor arguments that are built objects (models, tokenizer, scheduler, optimizer factories)
COMPONENT_ARGS = ("unet", "vae", "text_encoder", "tokenizer", "noise_scheduler", "optimizer", "lr_scheduler")
#: values of each training-contract statistic kept (a uniform sample of everything seen, per process)
TRAINING_STATS_SIZE = 4096


def _instantiate_if_config(value):
    """A Hydra node (mapping with ``_target_``, as stored in hyper_parameters) → the object; anything else as is."""
    from collections.abc import Mapping

    from omegaconf import DictConfig

    if isinstance(value, (Mapping, DictConfig)) and "_target_" in value:
        import hydra

        return hydra.utils.instantiate(value, _convert_="all")
    return value


class FollowYourClickModule(L.LightningModule):
    """Trains the FYC UNet on batches from :class:`fyc.data.WebVidDataset`.

    Batch keys used: ``pixel_values`` (B, 3, F, H, W) in [-1, 1]; ``motion_mask`` (B, 1, H, W) in {0, 1};
    ``motion_strength`` (B,) >= 0; ``frame_stride`` (B,) >= 1; ``caption`` / ``short_prompt`` lists of str.

    Args:
        unet, vae, text_encoder, tokenizer: instantiated components (Hydra builds them from config).
        noise_scheduler: a diffusers training scheduler (v-prediction, see ``fyc.models.schedulers``).
        optimizer: partial ``torch.optim`` constructor taking param groups.
        lr_scheduler: optional partial taking the optimizer (stepped every optimizer step).
        trainable_groups: named parameter groups that train (``fyc.models.trainable``); the rest is frozen.
            ``motion_augmented_attention`` / ``condition_embeddings`` are dropped (logged) when the UNet has none,
            so an ablation can switch MA or the embeddings off without repeating the list.
        first_frame_masking: kwargs of ``mask_first_frame_latent`` (ratio, patch_size, prob) or None to disable.
        condition_dropout: per-condition CFG dropout probabilities.
        spatial_text: text for the spatial cross-attention in training: "caption" (paper) or "short_prompt"
            (the "w/o MA" ablation).
        motion_text: text for the MA module: "short_prompt" (paper) or "caption" (the "w/o data" ablation).
        ema: None (off) or ``{"decay": float, "warmup": bool}``: EMA of the trainable weights, saved in checkpoints
            and used for validation, sampling and export.
        gradient_checkpointing: recompute UNet activations in backward (memory for compute).
        text_embedding_cache: keep up to this many prompt embeddings (the text encoder is frozen); 0 = off.
        save_frozen_weights: False (default) leaves frozen weights (VAE, text encoder, frozen UNet groups) out of
            checkpoints — they come from the pretrained paths on resume/export — which makes SD-1.5 checkpoints
            GBs smaller.
        init_from: weights to start from (stage 2 from stage 1): a Lightning ``.ckpt`` of this module (its EMA
            weights when present), a FollowYourClickUNet folder, or a pipeline folder (``unet/`` inside). UNet
            parameters the source lacks (e.g. new MA layers) keep their fresh initialisation and are logged.
        log_grad_norm_every: log ``train/grad_norm`` (before clipping) every this many steps; 0 = never.
        loss_snr_cap: None (plain v-prediction MSE, the paper's) or γ > 0: each sample's v-loss is scaled by
            ``min(1, γ / (SNR_t + 1))``. In x0 terms the v-loss weighs a timestep by SNR_t + 1; this caps that weight
            at γ, so low-noise steps count less and the high-noise steps, where the model must build the video
            from its conditioning, relatively more. Unlike diffusers' min-SNR for v-prediction
            (``min(SNR, γ) / (SNR + 1)``) it keeps full weight at zero terminal SNR, where that gives 0.
            Training only: ``val/loss`` stays the plain MSE, comparable across settings.
    """

    def __init__(self, unet: torch.nn.Module, vae: torch.nn.Module, text_encoder: torch.nn.Module, tokenizer: Any,
                 noise_scheduler: Any, optimizer: Callable, lr_scheduler: Callable | None = None,
                 trainable_groups: Sequence[str] = ("motion_modules", "conv_in", "condition_embeddings"),
                 first_frame_masking: dict | None = None, condition_dropout: dict | None = None,
                 spatial_text: str = "caption", motion_text: str = "short_prompt", seed: int = 0,
                 ema: dict | None = None, gradient_checkpointing: bool = False, text_embedding_cache: int = 0,
                 save_frozen_weights: bool = False, init_from: str | None = None, log_grad_norm_every: int = 10,
                 loss_snr_cap: float | None = None):
        super().__init__()
        # Scalars and option dicts go into the checkpoint's hyper_parameters; the components are not pickled: the run
        # config's recipes for them are added on save (on_save_checkpoint), so load_from_checkpoint rebuilds them.
        self.save_hyperparameters(ignore=list(COMPONENT_ARGS))
        unet, vae, text_encoder, tokenizer, noise_scheduler, optimizer, lr_scheduler = (
            _instantiate_if_config(value) for value in
            (unet, vae, text_encoder, tokenizer, noise_scheduler, optimizer, lr_scheduler))
        for name, value in (("spatial_text", spatial_text), ("motion_text", motion_text)):
            if value not in TEXT_SOURCES:
                raise ValueError(f"{name} must be one of {TEXT_SOURCES}, got {value!r}")
        self.unet, self.vae, self.text_encoder, self.tokenizer = unet, vae, text_encoder, tokenizer
        self.noise_scheduler = noise_scheduler
        self.optimizer_factory, self.lr_scheduler_factory = optimizer, lr_scheduler
        self.trainable_groups = self._available_groups(trainable_groups)
        self.first_frame_masking = dict(first_frame_masking) if first_frame_masking else None
        self.condition_dropout = ConditionDropout(**(condition_dropout or {}))
        self.spatial_text, self.motion_text = spatial_text, motion_text
        self.seed = seed
        self.ema_config = dict(ema) if ema else None
        self.text_embedding_cache = int(text_embedding_cache)
        self.save_frozen_weights = save_frozen_weights
        self.log_grad_norm_every = int(log_grad_norm_every)
        if loss_snr_cap is not None and not loss_snr_cap > 0:
            raise ValueError(f"loss_snr_cap must be null or > 0, got {loss_snr_cap!r}")
        self.loss_snr_cap = loss_snr_cap
        self.vae.requires_grad_(False).eval()
        self.text_encoder.requires_grad_(False).eval()
        self.trainable_counts = select_trainable_parameters(self.unet, self.trainable_groups)
        if gradient_checkpointing:
            self.unet.enable_gradient_checkpointing()
        if init_from:
            load_unet_weights(self.unet, init_from)
        # Frozen weights may be absent from checkpoints (save_frozen_weights=False): checked in on_load_checkpoint.
        self.strict_loading = save_frozen_weights
        self.ema: EMAWeights | None = None
        self._pending_ema_state: dict | None = None
        self._null_text: torch.Tensor | None = None
        self._text_cache: OrderedDict[str, torch.Tensor] = OrderedDict()
        self._step_start: float | None = None
        #: resolved run config (set by fyc.training.run.train), stored in checkpoints for scripts/export.py
        self.run_config: dict | None = None
        #: strengths / strides / fps of the training batches (a uniform sample), recorded in the training contract
        self.training_stats: dict[str, list[float]] = {"motion_strength": [], "frame_stride": [], "fps": []}
        self._stats_seen = 0
        self._stats_rng = np.random.default_rng(seed)

    def _available_groups(self, groups: Sequence[str]) -> list[str]:
        groups = list(groups)
        config = self.unet.config
        absent = set()
        if not getattr(config, "motion_augmented_attention", True):
            absent.add("motion_augmented_attention")
        if not (getattr(config, "motion_strength_embedding", True) or getattr(config, "frame_stride_embedding", True)):
            absent.add("condition_embeddings")
        dropped = [g for g in groups if g in absent]
        if dropped:
            log.info("trainable groups %s are absent from this UNet configuration; not training them", dropped)
        return [g for g in groups if g not in absent]

    # ------------------------------------------------------------------ helpers
    def trainable_named_parameters(self) -> dict[str, torch.nn.Parameter]:
        """``{name: parameter}`` of the UNet parameters that train (names as in ``unet.state_dict()``)."""
        return {n: p for n, p in self.unet.named_parameters() if p.requires_grad}

    def _text(self, prompts: list[str]) -> torch.Tensor:
        """Prompts → (B, L, D) text-encoder states, through the optional LRU cache."""
        if self.text_embedding_cache <= 0:
            return encode_text(self.tokenizer, self.text_encoder, list(prompts), self.device)
        missing = list(dict.fromkeys(p for p in prompts if p not in self._text_cache))
        if missing:
            for prompt, emb in zip(missing, encode_text(self.tokenizer, self.text_encoder, missing, self.device)):
                self._text_cache[prompt] = emb
        out = []
        for prompt in prompts:
            self._text_cache.move_to_end(prompt)
            out.append(self._text_cache[prompt].to(self.device))
        while len(self._text_cache) > self.text_embedding_cache:
            self._text_cache.popitem(last=False)
        return torch.stack(out)

    def _null(self, batch_size: int) -> torch.Tensor:
        if self._null_text is None or self._null_text.device != self.device:
            self._null_text = encode_text(self.tokenizer, self.text_encoder, [""], self.device)
        return self._null_text.expand(batch_size, -1, -1)

    def step_generator(self, batch_idx: int) -> torch.Generator:
        """CPU generator for one training batch, seeded by (seed, epoch, batch_idx, global rank): the randomness of a
        step does not depend on RNG state, so resumed runs draw exactly what uninterrupted runs draw."""
        rank = self.trainer.global_rank if self._trainer is not None else 0
        epoch = self.trainer.current_epoch if self._trainer is not None else 0
        state = np.random.SeedSequence([self.seed, epoch, batch_idx, rank]).generate_state(2, dtype=np.uint32)
        return torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))

    def diffusion_loss(self, batch: dict, generator: torch.Generator | None = None,
                       apply_dropout: bool = True, apply_weighting: bool = True) -> torch.Tensor:
        """v-prediction MSE (scalar float32) for one batch, per-sample weighted by ``loss_snr_cap`` when set and
        ``apply_weighting``. Noise, timesteps, first-frame masks and condition dropout come from ``generator`` (a CPU
        generator; None = global RNG)."""
        pixels = batch["pixel_values"]
        bsz = pixels.shape[0]
        latents = encode_video(self.vae, pixels)  # (B, 4, F, h, w)
        first_frame = latents[:, :, 0]
        if self.unet.config.first_frame_residual:  # the clean image, as the sampler adds back (not the masked one)
            latents = latents - first_frame[:, :, None]
        if self.first_frame_masking is not None:
            first_frame = mask_first_frame_latent(first_frame, generator=generator, **self.first_frame_masking)
        # A text-to-video base (no mask channel) trains on data without motion labels, hence no motion_mask.
        region_mask = (mask_to_latent(batch["motion_mask"].to(latents.dtype), latents.shape[-2:])
                       if self.unet.config.region_mask_channel else None)

        spatial_text = self._text(batch[self.spatial_text])
        motion_text = self._text(batch[self.motion_text]) if self.unet.config.motion_augmented_attention else None
        if apply_dropout:
            drop = self.condition_dropout.draw(bsz, generator=generator, device=self.device)
            null = self._null(bsz)
            spatial_text = torch.where(drop["caption"][:, None, None], null, spatial_text)
            if motion_text is not None:
                motion_text = torch.where(drop["short_prompt"][:, None, None], null, motion_text)
            first_frame = first_frame * (~drop["first_frame"]).to(first_frame.dtype)[:, None, None, None]

        noise = torch.randn(latents.shape, generator=generator, device="cpu").to(latents)
        timesteps = torch.randint(0, self.noise_scheduler.config.num_train_timesteps, (bsz,), generator=generator)
        timesteps = timesteps.to(self.device)
        noisy = self.noise_scheduler.add_noise(latents, noise, timesteps)
        target = self.noise_scheduler.get_velocity(latents, noise, timesteps)
        pred = self.unet(
            noisy, timesteps, encoder_hidden_states=spatial_text, region_mask=region_mask,
            first_frame_latent=first_frame, motion_prompt_embeds=motion_text,
            motion_strength=batch["motion_strength"].to(latents.dtype) if self.unet.config.motion_strength_embedding
            else None,
            frame_stride=batch["frame_stride"].to(latents.dtype) if self.unet.config.frame_stride_embedding else None,
        ).sample
        if self.loss_snr_cap is None or not apply_weighting:
            return F.mse_loss(pred.float(), target.float())
        per_sample = F.mse_loss(pred.float(), target.float(), reduction="none").flatten(1).mean(1)
        alpha_bar = self.noise_scheduler.alphas_cumprod.to(per_sample.device)[timesteps]
        weight = (self.loss_snr_cap * (1 - alpha_bar)).clamp(max=1.0)  # γ / (SNR + 1), as SNR + 1 = 1 / (1 - ᾱ)
        return (per_sample * weight).mean()

    @contextlib.contextmanager
    def ema_weights(self) -> Iterator[None]:
        """Context in which the UNet holds its EMA weights (no-op when EMA is off)."""
        if self.ema is None:
            yield
            return
        with self.ema.swapped_in(self.trainable_named_parameters()):
            yield

    # ------------------------------------------------------------------ lightning hooks
    def train(self, mode: bool = True):
        # Lightning switches every submodule to train mode each epoch; the frozen encoders stay in eval mode.
        super().train(mode)
        self.vae.eval()
        self.text_encoder.eval()
        return self

    def on_fit_start(self) -> None:
        for name, count in self.trainable_counts.items():
            self.print(f"trainable group {name}: {count:,} parameters")
        if self.ema_config is not None and self.ema is None:
            strategy = type(self.trainer.strategy).__name__
            if "FSDP" in strategy or "DeepSpeed" in strategy:
                raise ValueError(f"model.ema needs the full weights on every rank; not supported with {strategy}")
            self.ema = EMAWeights(self.trainable_named_parameters(), **self.ema_config)
            if self._pending_ema_state is not None:
                self.ema.load_state_dict(self._pending_ema_state)
                self._pending_ema_state = None
        if torch.cuda.is_available() and self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        self._step_start = time.perf_counter()

    def record_training_stats(self, batch: dict) -> None:
        """Add the batch's strengths, strides and fps to :attr:`training_stats` (reservoir sampling)."""
        columns = {k: batch[k].detach().float().cpu().tolist() for k in self.training_stats if k in batch}
        if not columns:
            return
        for row in range(len(next(iter(columns.values())))):
            self._stats_seen += 1
            if self._stats_seen <= TRAINING_STATS_SIZE:
                for k, values in columns.items():
                    self.training_stats[k].append(float(values[row]))
                continue
            slot = int(self._stats_rng.integers(0, self._stats_seen))
            if slot < TRAINING_STATS_SIZE:
                for k, values in columns.items():
                    if len(self.training_stats[k]) > slot:
                        self.training_stats[k][slot] = float(values[row])

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        self.record_training_stats(batch)
        loss = self.diffusion_loss(batch, generator=self.step_generator(batch_idx))
        self.log("train/loss", loss, prog_bar=True, batch_size=batch["pixel_values"].shape[0])
        return loss

    def on_before_optimizer_step(self, optimizer) -> None:
        # Called after AMP unscaling and before gradient clipping: the raw gradient norm.
        every = self.log_grad_norm_every
        if every > 0 and self.trainer.global_step % every == 0:
            grads = [p.grad for p in self.unet.parameters() if p.grad is not None]
            if grads:
                norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g.float()) for g in grads]))
                self.log("train/grad_norm", norm)
        self.log("train/lr", optimizer.param_groups[0]["lr"])

    def optimizer_step(self, *args, **kwargs) -> None:
        super().optimizer_step(*args, **kwargs)
        # Here, not in on_train_batch_end: checkpoint callbacks run before the module's on_train_batch_end, so an EMA
        # update there would be missing from the checkpoint of that step.
        if self.ema is not None:
            self.ema.update(self.trainable_named_parameters())

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        if self._step_start is not None:
            elapsed = time.perf_counter() - self._step_start
            samples = batch["pixel_values"].shape[0] * self.trainer.world_size
            self.log("train/samples_per_s", samples / max(elapsed, 1e-9))
            self.log("train/peak_mem_gb", peak_memory_gb(self.device))

    def on_validation_epoch_start(self) -> None:
        self._ema_context = self.ema_weights()
        self._ema_context.__enter__()

    def on_validation_epoch_end(self) -> None:
        context, self._ema_context = getattr(self, "_ema_context", None), None
        if context is not None:
            context.__exit__(None, None, None)

    def validation_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        # Fixed noise per batch index so validation losses are comparable across epochs.
        generator = torch.Generator().manual_seed(self.seed * 100_003 + batch_idx)
        loss = self.diffusion_loss(batch, generator=generator, apply_dropout=False, apply_weighting=False)
        self.log("val/loss", loss, prog_bar=True, sync_dist=True, batch_size=batch["pixel_values"].shape[0])
        return loss

    def configure_optimizers(self):
        groups = [{"params": params, "name": name} for name, params in parameter_groups(self.unet, self.trainable_groups).items()]
        optimizer = self.optimizer_factory(groups)
        if self.lr_scheduler_factory is None:
            return optimizer
        scheduler = self.lr_scheduler_factory(optimizer)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    # ------------------------------------------------------------------ checkpoints
    def frozen_state_keys(self, state_dict: dict) -> list[str]:
        """Keys of ``state_dict`` (this module's) that hold frozen weights."""
        trainable = {f"unet.{n}" for n in self.trainable_named_parameters()}
        return [k for k in state_dict if k not in trainable and k.split(".")[0] in ("unet", "vae", "text_encoder")]

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        if not self.save_frozen_weights and "state_dict" in checkpoint:
            state = checkpoint["state_dict"]
            for key in self.frozen_state_keys(state):
                del state[key]
            checkpoint["fyc_frozen_weights_saved"] = False
        if self.ema is not None:
            checkpoint["ema"] = self.ema.state_dict()
        if self.run_config is not None:
            checkpoint["fyc_config"] = self.run_config
            model_cfg = self.run_config.get("model") or {}
            hparams = dict(checkpoint.get("hyper_parameters") or {})
            hparams.update({k: model_cfg[k] for k in COMPONENT_ARGS if model_cfg.get(k) is not None})
            # The checkpoint's weights supersede the initial ones: rebuilding must not need the init source.
            hparams["init_from"] = None
            checkpoint["hyper_parameters"] = hparams
        checkpoint["fyc_training_stats"] = {"seen": self._stats_seen, **self.training_stats}

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        stats = checkpoint.get("fyc_training_stats")
        if stats:
            self._stats_seen = int(stats.get("seen", 0))
            self.training_stats = {k: list(stats.get(k, [])) for k in self.training_stats}
        if "fyc_config" in checkpoint and self.run_config is None:
            self.run_config = checkpoint["fyc_config"]
        state = checkpoint.get("state_dict", {})
        missing = sorted(f"unet.{n}" for n in self.trainable_named_parameters() if f"unet.{n}" not in state)
        if state and missing:
            raise KeyError(f"checkpoint lacks {len(missing)} trainable weights, e.g. {missing[:3]}: it was written "
                           f"with other trainable_groups / model options than this config")
        if "ema" in checkpoint:
            if self.ema is not None:
                self.ema.load_state_dict(checkpoint["ema"])
            else:
                self._pending_ema_state = checkpoint["ema"]


def peak_memory_gb(device: torch.device) -> float:
    """Peak memory of this process in GiB: CUDA max allocated on a GPU, else the peak resident set size."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux


def unet_state_from_checkpoint(checkpoint: dict, prefer_ema: bool = True) -> dict[str, torch.Tensor]:
    """UNet weights from a loaded Lightning checkpoint of this module, EMA weights overlaid when present and
    ``prefer_ema``."""
    state = {k[len("unet."):]: v for k, v in checkpoint["state_dict"].items() if k.startswith("unet.")}
    if prefer_ema and "ema" in checkpoint:
        state.update(checkpoint["ema"]["shadow"])
    return state


def read_unet_state_dict(source: str | os.PathLike, prefer_ema: bool = True) -> dict[str, torch.Tensor]:
    """UNet weights from a Lightning checkpoint of this module (EMA weights overlaid when present and
    ``prefer_ema``), a FollowYourClickUNet folder, or a pipeline folder with ``unet/``."""
    source = Path(source)
    if source.is_file():
        # weights_only: a crafted checkpoint cannot run code
        return unet_state_from_checkpoint(load_checkpoint(source), prefer_ema)
    folder = source / "unet" if (source / "unet").is_dir() else source
    files = sorted(folder.glob("*.safetensors")) or sorted(folder.glob("*.bin"))
    if not files:
        raise FileNotFoundError(f"no UNet weights (*.safetensors / *.bin) in {folder}")
    state = {}
    for file in files:
        if file.suffix == ".safetensors":
            from safetensors.torch import load_file

            state.update(load_file(str(file)))
        else:
            state.update(torch.load(file, map_location="cpu", weights_only=True))
    return state


def load_unet_weights(unet: torch.nn.Module, source: str | os.PathLike, prefer_ema: bool = True) -> dict[str, list]:
    """Load ``source``'s weights (see :func:`read_unet_state_dict`) into ``unet``; returns ``{"missing": [...]}``
    grouped by parameter group. Raises ValueError on keys ``unet`` does not have or on shape mismatches."""
    state = read_unet_state_dict(source, prefer_ema)
    own = unet.state_dict()
    unexpected = sorted(k for k in state if k not in own)
    mismatched = sorted(k for k in state if k in own and tuple(state[k].shape) != tuple(own[k].shape))
    if unexpected or mismatched:
        raise ValueError(f"weights in {source} do not fit this UNet: unexpected {unexpected[:5]} ({len(unexpected)}), "
                         f"shape-mismatched {mismatched[:5]} ({len(mismatched)})")
    unet.load_state_dict(state, strict=False)
    missing: dict[str, list] = {}
    for key in own:
        if key not in state:
            missing.setdefault(parameter_group_of(key), []).append(key)
    log.info("initialised the UNet from %s (%d tensors); kept fresh: %s", source, len(state),
             {group: len(keys) for group, keys in missing.items()})
    return {"missing": missing}
