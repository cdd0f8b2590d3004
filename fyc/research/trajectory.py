"""The sampler's clean-video estimates along one sampling trajectory: where does a sampled video win or lose its motion?

At every sampling step the pipeline's guided v-prediction implies a clean-video estimate
``x0 = sqrt(a_t) x_t - sqrt(1 - a_t) v`` (``a_t`` = the scheduler's ``alphas_cumprod[t]``). Decoding these
estimates and scoring their motion (flow direction, in-region magnitude) step by step shows whether the direction
the prompt asks for is present early and lost later (a sampler / guidance problem) or never there (the model).
``research/probe_trajectory.py`` runs this over a benchmark manifest.
"""
from __future__ import annotations

import torch

from fyc.pipelines.pipeline_fyc import _image_to_tensor


@torch.no_grad()
def x0_trajectory(pipeline, image, mask, prompt: str, strength: float | None, num_frames: int = 8,
                  num_inference_steps: int = 25, guidance_scale: float = 7.5, guidance_interval=None,
                  eta: float = 0.0, generator: torch.Generator | None = None) -> tuple[list[dict], torch.Tensor]:
    """Sample one video and keep the decoded clean-video estimate of every step.

    Args:
        pipeline: a :class:`fyc.pipelines.FollowYourClickPipeline` whose scheduler predicts v.
        image, mask, prompt, strength, guidance_interval: as the pipeline's call (one image, one region).
        generator: seeds the initial noise (drawn here, with the pipeline's shape, so the run is reproducible).

    Returns:
        (steps, video): ``steps`` is one dict per sampling step with ``step`` (0-based), ``timestep`` and ``x0``,
        float ``(F, H, W, 3)`` in [0, 1] — the decoded estimate made at that step (before the scheduler moves
        on); ``video`` is the pipeline's own output, float ``(F, H, W, 3)`` in [0, 1].
    """
    scheduler = pipeline.scheduler
    if scheduler.config.prediction_type != "v_prediction":
        raise ValueError(f"the pipeline's scheduler predicts {scheduler.config.prediction_type!r}; this probe "
                         "converts v-predictions (fyc.models.schedulers)")
    pixels = _image_to_tensor(image)  # (1, 3, H, W) in [-1, 1]
    height, width = pixels.shape[-2:]
    factor = pipeline.vae_scale_factor
    shape = (1, pipeline.unet.config.latent_channels, num_frames, height // factor, width // factor)
    device = pipeline._execution_device
    latents = torch.randn(shape, generator=generator).to(device)
    alphas_cumprod = scheduler.alphas_cumprod.to(device=device, dtype=torch.float32)
    state = {"x_t": latents * scheduler.init_noise_sigma}
    estimates: list[tuple[int, int, torch.Tensor]] = []

    def record(pipe, step: int, t, tensors: dict) -> dict:
        alpha_bar = alphas_cumprod[int(t)]
        x0 = alpha_bar.sqrt() * state["x_t"].float() - (1 - alpha_bar).sqrt() * tensors["noise_pred"].float()
        estimates.append((step, int(t), x0))
        state["x_t"] = tensors["latents"]
        return {}

    out = pipeline(image, mask=mask, prompt=prompt, strength=strength, num_frames=num_frames,
                   num_inference_steps=num_inference_steps, guidance_scale=guidance_scale,
                   guidance_interval=guidance_interval, eta=eta,
                   latents=latents, output_type="pt", callback_on_step_end=record,
                   callback_on_step_end_tensor_inputs=["latents", "noise_pred"])
    first_frame = pipeline.encode_first_frame(pixels.to(device))[:, :, None]
    steps = []
    for step, t, x0 in estimates:
        if pipeline.unet.config.first_frame_residual:  # the UNet denoises video - image latent
            x0 = x0 + first_frame.float()
        frames = pipeline.decode_latents(x0.to(pipeline.vae.dtype))[0]
        steps.append({"step": step, "timestep": t, "x0": frames.permute(0, 2, 3, 1).cpu()})
    return steps, out.frames[0].permute(0, 2, 3, 1).cpu()

