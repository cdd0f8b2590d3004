"""LightningModule: v-prediction training of FollowYourClickUNet with frozen VAE and text encoder."""
from __future__ import annotations

import time
from typing import Any, Callable, Sequence

import lightning as L
import torch
import torch.nn.functional as F

from fyc.models.first_frame_masking import mask_first_frame_latent
from fyc.models.trainable import parameter_groups, select_trainable_parameters
from fyc.training.conditioning import ConditionDropout, encode_text, encode_video, mask_to_latent


class FollowYourClickModule(L.LightningModule):
    """Trains the FYC UNet on batches from :class:`fyc.data.WebVidDataset`.

    Batch keys used: ``pixel_values`` (B, 3, F, H, W) in [-1, 1]; ``motion_mask`` (B, 1, H, W) in {0, 1};
    ``motion_strength`` (B,); ``frame_stride`` (B,); ``caption`` / ``short_prompt`` lists of str.

    Args:
        unet, vae, text_encoder, tokenizer: instantiated components (Hydra builds them from config).
        noise_scheduler: a diffusers training scheduler (v-prediction, see ``fyc.models.schedulers``).
        optimizer: partial ``torch.optim`` constructor taking param groups.
        lr_scheduler: optional partial taking the optimizer (stepped every optimizer step).
        trainable_groups: named parameter groups that train (``fyc.models.trainable``); the rest is frozen.
        first_frame_masking: kwargs of ``mask_first_frame_latent`` (ratio, patch_size, prob) or None to disable.
        condition_dropout: per-condition CFG dropout probabilities.
        spatial_text: which text feeds the spatial cross-attention in training: "caption" (paper) or "short_prompt".
    """

    def __init__(self, unet: torch.nn.Module, vae: torch.nn.Module, text_encoder: torch.nn.Module, tokenizer: Any,
                 noise_scheduler: Any, optimizer: Callable, lr_scheduler: Callable | None = None,
                 trainable_groups: Sequence[str] = ("motion_modules", "conv_in", "condition_embeddings"),
                 first_frame_masking: dict | None = None, condition_dropout: dict | None = None,
                 spatial_text: str = "caption", seed: int = 0):
        super().__init__()
        if spatial_text not in ("caption", "short_prompt"):
            raise ValueError(f"spatial_text must be 'caption' or 'short_prompt', got {spatial_text!r}")
        self.unet, self.vae, self.text_encoder, self.tokenizer = unet, vae, text_encoder, tokenizer
        self.noise_scheduler = noise_scheduler
        self.optimizer_factory, self.lr_scheduler_factory = optimizer, lr_scheduler
        self.trainable_groups = list(trainable_groups)
        self.first_frame_masking = dict(first_frame_masking) if first_frame_masking else None
        self.condition_dropout = ConditionDropout(**(condition_dropout or {}))
        self.spatial_text = spatial_text
        self.seed = seed
        self.vae.requires_grad_(False).eval()
        self.text_encoder.requires_grad_(False).eval()
        self.trainable_counts = select_trainable_parameters(self.unet, self.trainable_groups)
        self._null_text: torch.Tensor | None = None
        self._step_start = None

    # ------------------------------------------------------------------ helpers
    def _text(self, prompts: list[str]) -> torch.Tensor:
        return encode_text(self.tokenizer, self.text_encoder, list(prompts), self.device)

    def _null(self, batch_size: int) -> torch.Tensor:
        if self._null_text is None or self._null_text.device != self.device:
            self._null_text = self._text([""])
        return self._null_text.expand(batch_size, -1, -1)

    def diffusion_loss(self, batch: dict, generator: torch.Generator | None = None,
                       apply_dropout: bool = True) -> torch.Tensor:
        """v-prediction MSE for one batch. ``generator`` makes noise/timesteps/masking reproducible (validation)."""
        pixels = batch["pixel_values"]
        bsz = pixels.shape[0]
        latents = encode_video(self.vae, pixels)  # (B, 4, F, h, w)
        first_frame = latents[:, :, 0]
        if self.first_frame_masking is not None:
            first_frame = mask_first_frame_latent(first_frame, generator=generator, **self.first_frame_masking)
        region_mask = mask_to_latent(batch["motion_mask"].to(latents.dtype), latents.shape[-2:])

        captions = batch["caption"] if self.spatial_text == "caption" else batch["short_prompt"]
        spatial_text = self._text(captions)
        motion_text = self._text(batch["short_prompt"])
        if apply_dropout:
            drop = self.condition_dropout.draw(bsz, generator=generator, device=self.device)
            null = self._null(bsz)
            spatial_text = torch.where(drop["caption"][:, None, None], null, spatial_text)
            motion_text = torch.where(drop["short_prompt"][:, None, None], null, motion_text)
            first_frame = first_frame * (~drop["first_frame"]).to(first_frame.dtype)[:, None, None, None]

        noise = torch.randn(latents.shape, generator=generator, device="cpu").to(latents)
        timesteps = torch.randint(0, self.noise_scheduler.config.num_train_timesteps, (bsz,), generator=generator)
        timesteps = timesteps.to(self.device)
        noisy = self.noise_scheduler.add_noise(latents, noise, timesteps)
        target = self.noise_scheduler.get_velocity(latents, noise, timesteps)
        pred = self.unet(
            noisy, timesteps, encoder_hidden_states=spatial_text, region_mask=region_mask,
            first_frame_latent=first_frame,
            motion_prompt_embeds=motion_text if self.unet.config.motion_augmented_attention else None,
            motion_strength=batch["motion_strength"].to(latents.dtype),
            frame_stride=batch["frame_stride"].to(latents.dtype) if self.unet.config.frame_stride_embedding else None,
        ).sample
        return F.mse_loss(pred.float(), target.float())

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

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        self._step_start = time.perf_counter()

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        loss = self.diffusion_loss(batch)
        self.log("train/loss", loss, prog_bar=True, batch_size=batch["pixel_values"].shape[0])
        return loss

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        if self._step_start is not None:
            elapsed = time.perf_counter() - self._step_start
            self.log("train/samples_per_s", batch["pixel_values"].shape[0] / max(elapsed, 1e-9))

    def validation_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        # Fixed noise per batch index so validation losses are comparable across epochs.
        generator = torch.Generator().manual_seed(self.seed * 100_003 + batch_idx)
        loss = self.diffusion_loss(batch, generator=generator, apply_dropout=False)
        self.log("val/loss", loss, prog_bar=True, sync_dist=True, batch_size=batch["pixel_values"].shape[0])
        return loss

    def configure_optimizers(self):
        groups = [{"params": params, "name": name} for name, params in parameter_groups(self.unet, self.trainable_groups).items()]
        optimizer = self.optimizer_factory(groups)
        if self.lr_scheduler_factory is None:
            return optimizer
        scheduler = self.lr_scheduler_factory(optimizer)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
