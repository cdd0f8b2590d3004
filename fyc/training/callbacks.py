"""Training callbacks: validation sampling (mp4 + wandb videos)."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Sequence

import lightning as L
import numpy as np
import torch

log = logging.getLogger(__name__)


class ValidationSamples(L.Callback):
    """Every ``every_n_steps`` optimizer steps, animate a fixed set of (image, mask, short prompt, strength) with the
    current (EMA, when on) weights, write ``<out_dir>/step_<step>/<i>.mp4`` and log them to wandb as videos.

    The set is the first ``num_items`` clips of the validation set (fixed: the validation set has no random
    crops/starts across runs with the same seed): image = its first frame ``(1, 3, H, W)`` in [-1, 1], mask = its
    motion mask ``(1, 1, H, W)`` in {0, 1}, prompt = its short prompt, strength = its motion strength label (px per
    frame pair), frame stride = its stride. Runs on global rank 0 only; other loggers (CSV) get a
    ``val/samples_written`` count. Sharded strategies (FSDP, DeepSpeed) are skipped with a warning.

    Args:
        every_n_steps: period in optimizer steps (> 0). ``at_train_end``: also sample after the last step.
        num_items, num_inference_steps, guidance_scale: sampling settings; ``seed`` fixes the initial noise.
        fps: of the written mp4s; None (default) = each item's own effective fps (native fps / stride), the rate
            the model saw the clip at.
    The sampler is built from the module's training scheduler (:func:`fyc.training.export.pipeline_for`), as
    the export does.
        out_dir: folder of the mp4s (default ``<trainer.default_root_dir>/samples``).
    """

    def __init__(self, every_n_steps: int = 1000, num_items: int = 4, num_inference_steps: int = 25,
                 guidance_scale: float = 7.5, fps: float | None = None, seed: int = 0, out_dir: str | None = None,
                 at_train_end: bool = False):
        if every_n_steps <= 0:
            raise ValueError(f"every_n_steps must be > 0, got {every_n_steps}")
        self.every_n_steps, self.num_items = int(every_n_steps), int(num_items)
        self.num_inference_steps, self.guidance_scale = int(num_inference_steps), float(guidance_scale)
        self.fps, self.seed, self.at_train_end = None if fps is None else float(fps), int(seed), at_train_end
        self.out_dir = out_dir
        self._items: list[dict] | None = None
        self._last_step = -1
        self.written: list[Path] = []

    def _collect_items(self, trainer: L.Trainer) -> list[dict]:
        datamodule = trainer.datamodule
        dataset = getattr(datamodule, "val_set", None) if datamodule is not None else None
        if dataset is None and datamodule is not None:
            datamodule.setup("validate")
            dataset = getattr(datamodule, "val_set", None)
        if dataset is None:
            raise ValueError("ValidationSamples needs a datamodule with a validation set (data.val_dataset)")
        items = []
        for i in range(min(self.num_items, len(dataset))):
            sample = dataset[i]
            items.append({
                "image": sample["pixel_values"][:, 0][None],  # (1, 3, H, W) in [-1, 1]
                "mask": sample["motion_mask"][None],  # (1, 1, H, W) in {0, 1}
                "prompt": sample["short_prompt"] or sample["caption"],
                "strength": float(sample["motion_strength"]),
                "frame_stride": float(sample["frame_stride"]),
                "fps": float(sample["fps"]) if "fps" in sample else None,
                "num_frames": int(sample["pixel_values"].shape[1]),
            })
        return items

    def on_train_batch_end(self, trainer: L.Trainer, pl_module, outputs: Any, batch: Any, batch_idx: int) -> None:
        step = trainer.global_step
        if step > 0 and step % self.every_n_steps == 0 and step != self._last_step:
            self.sample(trainer, pl_module)

    def on_train_end(self, trainer: L.Trainer, pl_module) -> None:
        if self.at_train_end and trainer.global_step != self._last_step:
            self.sample(trainer, pl_module)

    @torch.no_grad()
    def sample(self, trainer: L.Trainer, pl_module) -> list[Path]:
        """Animate the fixed set now; returns the written mp4 paths (empty on ranks other than 0)."""
        from fyc.data.video_io import write_video
        from fyc.training.export import pipeline_for

        step = self._last_step = trainer.global_step
        strategy = type(trainer.strategy).__name__
        if "FSDP" in strategy or "DeepSpeed" in strategy:
            log.warning("ValidationSamples: skipped under %s (sharded weights); sample from an exported checkpoint",
                        strategy)
            return []
        if not trainer.is_global_zero:
            return []
        if self._items is None:
            self._items = self._collect_items(trainer)
        out_dir = Path(self.out_dir or Path(trainer.default_root_dir) / "samples") / f"step_{step:07d}"
        pipe = pipeline_for(pl_module)
        pipe.set_progress_bar_config(disable=True)
        unet_config = pl_module.unet.config
        was_training = pl_module.unet.training
        pl_module.unet.eval()
        paths, captions = [], []
        try:
            with pl_module.ema_weights():
                for i, item in enumerate(self._items):
                    generator = torch.Generator(pl_module.device).manual_seed(self.seed + i)
                    frames = pipe(
                        image=item["image"].to(pl_module.device), mask=item["mask"].to(pl_module.device),
                        prompt=item["prompt"], num_frames=item["num_frames"],
                        strength=item["strength"] if unet_config.motion_strength_embedding else None,
                        frame_stride=item["frame_stride"] if unet_config.frame_stride_embedding else None,
                        num_inference_steps=self.num_inference_steps, guidance_scale=self.guidance_scale,
                        generator=generator, output_type="np").frames[0]  # (F, H, W, 3) in [0, 1]
                    video = (np.clip(frames, 0, 1) * 255).round().astype(np.uint8)
                    fps = self.fps or item["fps"] or 8.0
                    paths.append(write_video(out_dir / f"{i:02d}.mp4", video, fps=fps))
                    captions.append(f"{item['prompt']} | strength {item['strength']:.2f}")
        finally:
            pl_module.unet.train(was_training)
        self.written.extend(paths)
        self._log(trainer, paths, captions, step)
        return paths

    def _log(self, trainer: L.Trainer, paths: Sequence[Path], captions: list[str], step: int) -> None:
        for logger in trainer.loggers:
            if hasattr(logger, "log_video"):  # WandbLogger
                logger.log_video("val/samples", videos=[str(p) for p in paths], step=step, caption=captions,
                                 format=["mp4"] * len(paths))
            else:
                logger.log_metrics({"val/samples_written": float(len(paths))}, step=step)
