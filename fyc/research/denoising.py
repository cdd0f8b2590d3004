"""One-step denoising error by noise level: does a trained model recover clean clips, and does it beat copying
its own conditioning?

A sampled video is only as clean as the model's x0 estimates along the trajectory. This probe noises real clips to
fixed timesteps, predicts v once, converts to x0 (``x0 = sqrt(a_t) x_t - sqrt(1 - a_t) v``) and reports the latent
MSE against the clean clip, next to two references that need no model:

- ``copy_mse``: the first-frame latent repeated over all frames — what an image-to-video model conditioned on that
  latent (and the mask) should beat at every noise level; above it, the model does not even copy its input.
- ``rescaled_input_mse``: ``x_t / sqrt(a_t)`` — the noisy input itself; below it, the model denoises at all
  (undefined at the zero-terminal-SNR last step, reported as None).

Errors are split into frame 0 (the conditioning frame) and the later frames. Everything is computed with the
pipeline's own components (VAE, text encoder, UNet, scheduler), so the probe runs on any exported pipeline folder.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

DEFAULT_TIMESTEPS = (999, 900, 750, 500, 250, 100, 25)


@torch.no_grad()
def encode_clip(pipeline, pixel_values: torch.Tensor) -> torch.Tensor:
    """Pixels ``(B, 3, F, H, W)`` in [-1, 1] → scaled latents ``(B, 4, F, h, w)`` with the pipeline's VAE."""
    b, _, f, h, w = pixel_values.shape
    frames = pixel_values.permute(0, 2, 1, 3, 4).reshape(b * f, 3, h, w)
    latents = pipeline.encode_first_frame(frames)  # deterministic encoding × scaling_factor, any batch of images
    return latents.reshape(b, f, *latents.shape[1:]).permute(0, 2, 1, 3, 4)


def _split_mse(estimate: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
    """Latent MSE over all frames, frame 0 and frames 1.. of ``(B, C, F, h, w)`` tensors."""
    err = (estimate.float() - target.float()) ** 2
    return {"all": err.mean().item(), "frame0": err[:, :, :1].mean().item(), "later": err[:, :, 1:].mean().item()}


@torch.no_grad()
def denoising_errors(pipeline, batch: dict, timesteps: Sequence[int] = DEFAULT_TIMESTEPS, seed: int = 0,
                     prompt_key: str = "short_prompt") -> list[dict]:
    """One-step x0 errors of ``pipeline.unet`` on one batch at each of ``timesteps``.

    Args:
        pipeline: a :class:`fyc.pipelines.FollowYourClickPipeline` (v-prediction scheduler).
        batch: ``pixel_values`` (B, 3, F, H, W) in [-1, 1], ``motion_mask`` (B, 1, H, W) in {0, 1},
            ``motion_strength`` (B,), ``frame_stride`` (B,), and ``batch[prompt_key]`` (list of B str): the text
            the pipeline gives both cross-attentions at inference (the short motion prompt).
        timesteps: training timesteps in [0, num_train_timesteps).
        seed: the noise (the same for every timestep, so rows differ only by noise level).

    Returns: one dict per timestep: ``timestep``, ``alpha_bar``, ``v_mse`` (the training loss at that t, without
    dropout or first-frame masking), ``x0_mse`` / ``copy_mse`` / ``rescaled_input_mse`` (dicts over ``all`` /
    ``frame0`` / ``later``; the last None where ``alpha_bar`` < 1e-6).
    """
    unet, scheduler = pipeline.unet, pipeline.scheduler
    if scheduler.config.prediction_type != "v_prediction":
        raise ValueError(f"the pipeline's scheduler predicts {scheduler.config.prediction_type!r}; "
                         "this probe converts v-predictions (fyc.models.schedulers)")
    n_train = scheduler.config.num_train_timesteps
    bad = [t for t in timesteps if not 0 <= int(t) < n_train]
    if bad:
        raise ValueError(f"timesteps {bad} are outside [0, {n_train})")
    device, dtype = unet.device, unet.dtype
    latents = encode_clip(pipeline, batch["pixel_values"].to(device)).to(dtype)
    bsz, _, _, h, w = latents.shape
    first_frame = latents[:, :, 0]
    region_mask = (F.adaptive_max_pool2d(batch["motion_mask"].float().to(device), (h, w)) > 0.5).to(dtype)
    text = pipeline.encode_prompt(list(batch[prompt_key]), device).to(dtype)
    copy = first_frame[:, :, None].expand_as(latents)
    # A first_frame_residual UNet denoises latents - copy; its x0 estimates get the copy added back.
    base = copy if unet.config.first_frame_residual else torch.zeros_like(latents)
    generator = torch.Generator().manual_seed(seed)
    noise = torch.randn(latents.shape, generator=generator).to(device=device, dtype=dtype)
    alphas_cumprod = scheduler.alphas_cumprod.to(device=device, dtype=torch.float32)

    rows = []
    for t in timesteps:
        t_batch = torch.full((bsz,), int(t), device=device, dtype=torch.long)
        alpha_bar = alphas_cumprod[int(t)]
        a, s = alpha_bar.sqrt().to(dtype), (1 - alpha_bar).sqrt().to(dtype)
        noisy = scheduler.add_noise(latents - base, noise, t_batch)
        target_v = scheduler.get_velocity(latents - base, noise, t_batch)
        v = unet(noisy, t_batch, encoder_hidden_states=text, region_mask=region_mask, first_frame_latent=first_frame,
                 motion_prompt_embeds=text if unet.config.motion_augmented_attention else None,
                 motion_strength=batch["motion_strength"].to(device, dtype)
                 if unet.config.motion_strength_embedding else None,
                 frame_stride=batch["frame_stride"].to(device, dtype) if unet.config.frame_stride_embedding else None,
                 ).sample
        x0 = a * noisy - s * v + base
        rows.append({
            "timestep": int(t), "alpha_bar": alpha_bar.item(),
            "v_mse": F.mse_loss(v.float(), target_v.float()).item(),
            "x0_mse": _split_mse(x0, latents), "copy_mse": _split_mse(copy, latents),
            "rescaled_input_mse": _split_mse(noisy / a + base, latents) if alpha_bar.item() >= 1e-6 else None,
        })
    return rows


_OPPOSITE = {"left": "right", "right": "left", "up": "down", "down": "up"}


def prompt_variant(prompts: Sequence[str], variant: str) -> list[str]:
    """The probe's text: ``"given"`` (as is), ``"opposite"`` (left/right/up/down swapped: "move left" → "move right")
    or ``"empty"``. If the model reads the direction from the text, its x0 error with the opposite prompt is above the
    given prompt's at the noise levels where the motion is decided."""
    if variant == "given":
        return list(prompts)
    if variant == "empty":
        return ["" for _ in prompts]
    if variant == "opposite":
        return [" ".join(_OPPOSITE.get(word, word) for word in prompt.split(" ")) for prompt in prompts]
    raise ValueError(f"prompt variant must be 'given', 'opposite' or 'empty', got {variant!r}")


def merge_rows(per_batch: list[list[dict]], weights: Sequence[int]) -> list[dict]:
    """Average :func:`denoising_errors` outputs of several batches (weighted by batch size) into one list."""
    total = float(sum(weights))

    def avg(values):
        if values[0] is None:
            return None
        if isinstance(values[0], dict):
            return {k: avg([v[k] for v in values]) for k in values[0]}
        return sum(v * wt for v, wt in zip(values, weights)) / total

    return [{k: (rows[0][k] if k in ("timestep", "alpha_bar") else avg([r[k] for r in rows]))
             for k in rows[0]} for rows in zip(*per_batch)]


def denoising_table(rows: list[dict]) -> str:
    """Markdown table of :func:`denoising_errors` / :func:`merge_rows` rows."""
    def fmt(x):
        return "–" if x is None else f"{x:.4f}"

    lines = ["| t | ᾱ_t | v MSE | x0 MSE all | x0 frame 0 | x0 later | copy later | x_t/√ᾱ later |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        rescaled = r["rescaled_input_mse"]
        lines.append(f"| {r['timestep']} | {r['alpha_bar']:.4f} | {fmt(r['v_mse'])} | {fmt(r['x0_mse']['all'])} | "
                     f"{fmt(r['x0_mse']['frame0'])} | {fmt(r['x0_mse']['later'])} | {fmt(r['copy_mse']['later'])} | "
                     f"{fmt(None if rescaled is None else rescaled['later'])} |")
    return "\n".join(lines)
