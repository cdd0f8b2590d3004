"""First-frame latent masking statistics and noise-schedule facts."""

from __future__ import annotations

import pytest
import torch

from fyc.models import (
    FirstFrameMasking,
    first_frame_keep_mask,
    make_sampling_scheduler,
    make_training_scheduler,
    mask_first_frame_latent,
)


def _latent(batch=8, height=32, width=32, seed=0):
    # Strictly nonzero so zeros in the output are exactly the masked positions.
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(batch, 4, height, width, generator=gen) + 0.5


# ---------------------------------------------------------------------------------------------- masking


def test_masked_fraction_equals_ratio_and_is_shared_over_channels():
    latent = _latent()
    out = mask_first_frame_latent(latent, 0.7, generator=torch.Generator().manual_seed(0))
    zeros = out == 0
    assert torch.equal(zeros, zeros[:, :1].expand_as(zeros))  # same positions in all 4 channels
    per_sample = zeros[:, 0].float().mean(dim=(1, 2))
    assert torch.allclose(per_sample, torch.full((8,), round(0.7 * 1024) / 1024))
    kept = ~zeros
    assert torch.equal(out[kept], latent[kept])


def test_masked_positions_are_uniform_over_the_image():
    keep = first_frame_keep_mask(2000, 8, 8, 0.7, generator=torch.Generator().manual_seed(1))
    per_position = keep.mean(dim=0)
    assert (per_position - 0.3).abs().max() < 0.05


def test_patches_are_masked_whole_and_cropped_at_edges():
    keep = first_frame_keep_mask(16, 10, 10, 0.5, patch_size=4, generator=torch.Generator().manual_seed(2))
    assert keep.shape == (16, 1, 10, 10)
    grid = keep[:, 0]
    for row in range(3):
        for col in range(3):
            block = grid[:, row * 4 : (row + 1) * 4, col * 4 : (col + 1) * 4]
            assert torch.equal(block.amax(dim=(1, 2)), block.amin(dim=(1, 2)))  # constant within a patch
    patch_keep = grid[:, ::4, ::4]  # one value per patch of the 3x3 grid
    assert torch.equal((1 - patch_keep).sum(dim=(1, 2)), torch.full((16,), float(round(0.5 * 9))))


def test_prob_controls_how_many_samples_are_masked():
    keep = first_frame_keep_mask(4000, 4, 4, 0.5, prob=0.3, generator=torch.Generator().manual_seed(3))
    masked_samples = (keep.mean(dim=(1, 2, 3)) < 1).float().mean()
    assert abs(masked_samples.item() - 0.3) < 0.03


def test_ratio_list_is_drawn_per_sample():
    keep = first_frame_keep_mask(2000, 4, 5, [0.0, 0.5, 1.0], generator=torch.Generator().manual_seed(4))
    fractions = 1 - keep.mean(dim=(1, 2, 3))
    values, counts = torch.unique(fractions, return_counts=True)
    assert torch.allclose(values, torch.tensor([0.0, 0.5, 1.0]))
    assert ((counts.float() / 2000) - 1 / 3).abs().max() < 0.05


def test_masking_is_reproducible_with_a_seed():
    latent = _latent()
    a = mask_first_frame_latent(latent, [0.3, 0.7], 2, 0.8, torch.Generator().manual_seed(5))
    b = mask_first_frame_latent(latent, [0.3, 0.7], 2, 0.8, torch.Generator().manual_seed(5))
    c = mask_first_frame_latent(latent, [0.3, 0.7], 2, 0.8, torch.Generator().manual_seed(6))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    assert torch.equal(FirstFrameMasking((0.3, 0.7), 2, 0.8)(latent, torch.Generator().manual_seed(5)), a)


def test_masking_edge_cases_and_validation():
    latent = _latent(batch=2)
    assert torch.equal(mask_first_frame_latent(latent, 0.0), latent)
    assert torch.count_nonzero(mask_first_frame_latent(latent, 1.0, patch_size=3)) == 0
    with pytest.raises(ValueError, match="ratio"):
        mask_first_frame_latent(latent, 1.5)
    with pytest.raises(ValueError, match="patch_size"):
        mask_first_frame_latent(latent, 0.5, patch_size=0)
    with pytest.raises(ValueError, match="prob"):
        mask_first_frame_latent(latent, 0.5, prob=-0.1)


# ---------------------------------------------------------------------------------------------- schedulers


def test_training_scheduler_is_v_prediction_with_zero_terminal_snr():
    scheduler = make_training_scheduler()
    assert scheduler.config.prediction_type == "v_prediction"
    assert scheduler.config.beta_schedule == "linear"
    assert scheduler.alphas_cumprod[-1] == 0
    assert scheduler.alphas_cumprod[0] > 0.99
    assert make_training_scheduler(prediction_type="epsilon").config.prediction_type == "epsilon"


def test_sampling_scheduler_starts_at_the_last_timestep_and_matches_training():
    training, sampling = make_training_scheduler(), make_sampling_scheduler()
    assert torch.equal(sampling.alphas_cumprod, training.alphas_cumprod)
    assert sampling.alphas_cumprod[-1] == 0
    sampling.set_timesteps(25)
    assert sampling.timesteps[0] == 999
    assert len(sampling.timesteps) == 25
    assert sampling.config.prediction_type == "v_prediction"
    # The last step returns the clean estimate (no leftover noise): prev_sample == pred_original_sample.
    assert sampling.config.set_alpha_to_one
    x_t, v = torch.randn(1, 4, 2, 4, 4), torch.randn(1, 4, 2, 4, 4)
    last = sampling.step(v, sampling.timesteps[-1], x_t)
    torch.testing.assert_close(last.prev_sample, last.pred_original_sample)
    sd_like = make_sampling_scheduler(set_alpha_to_one=False)
    sd_like.set_timesteps(25)
    last = sd_like.step(v, sd_like.timesteps[-1], x_t)
    assert not torch.allclose(last.prev_sample, last.pred_original_sample, atol=1e-3)
