"""Noise schedules: v-prediction, AnimateDiff's linear betas, zero terminal SNR.

Follow-Your-Click trains with v-prediction (paper §4.2) and, in the official code, linear betas
0.00085 -> 0.012 rescaled to zero terminal SNR (Lin et al. 2023, arXiv 2305.08891). With zero terminal SNR the
last training timestep is pure noise, so sampling must start there: ``timestep_spacing="trailing"`` makes the
first DDIM step t=999 (the official code's "leading" spacing never sampled t=999, a train/test mismatch the
paper of Lin et al. warns about).
"""

from __future__ import annotations

from typing import Any

from diffusers import DDIMScheduler, DDPMScheduler

# Shared by training and sampling so the two can never disagree on the noise levels.
NOISE_SCHEDULE: dict[str, Any] = {
    "num_train_timesteps": 1000,
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "linear",
    "prediction_type": "v_prediction",
    "rescale_betas_zero_snr": True,
    "clip_sample": False,
    "timestep_spacing": "trailing",
}


def make_training_scheduler(**overrides: Any) -> DDPMScheduler:
    """DDPM scheduler for training (``add_noise`` / ``get_velocity``); ``overrides`` replace any config key."""
    return DDPMScheduler(**{**NOISE_SCHEDULE, **overrides})


def make_sampling_scheduler(**overrides: Any) -> DDIMScheduler:
    """DDIM scheduler for sampling; ``overrides`` replace any config key.

    ``set_alpha_to_one=True`` (diffusers' DDIM default): the last step lands on alpha 1, i.e. returns the model's
    clean estimate. SD's config has False: the last step (t=39 of 25 trailing steps) lands on ``alphas_cumprod[0]``
    and puts back ``sqrt(1 - alphas_cumprod[0])`` x the predicted noise, different in every frame, which shows up
    as background flicker (measured: docs/results.md). A pipeline whose saved scheduler config has False samples
    that way; ``evaluate.py +scheduler_overrides.set_alpha_to_one=true`` overrides it.
    """
    return DDIMScheduler(**{**NOISE_SCHEDULE, "set_alpha_to_one": True, "steps_offset": 0, **overrides})
