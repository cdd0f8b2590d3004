"""FollowYourClickUNet: shapes, exact no-op at init, each conditioning path, save/load, loading errors,
trainable groups, gradient checkpointing. Tiny random models saved to a tmp dir, never the hub."""

from __future__ import annotations

import copy
import itertools
import os

import pytest
import torch
from diffusers import MotionAdapter, UNet2DConditionModel, UNetMotionModel
from torch.utils._python_dispatch import TorchDispatchMode

from fyc.models import (
    PARAMETER_GROUPS,
    FollowYourClickUNet,
    MotionAugmentedCrossAttention,
    load_fyc_unet,
    load_fyc_unet_from_folder,
    parameter_group_of,
    parameter_groups,
    select_trainable_parameters,
)
from fyc.models.motion_attention import num_query_groups

os.environ.setdefault("HF_HUB_OFFLINE", "1")

B, F, H, W = 2, 4, 16, 16
TEXT_LEN, TEXT_DIM = 7, 16
ALL_ON = dict(motion_augmented_attention=True, motion_strength_embedding=True, frame_stride_embedding=True)


def tiny_unet2d(**overrides) -> UNet2DConditionModel:
    config = dict(
        block_out_channels=(16, 32),
        layers_per_block=1,
        sample_size=16,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=TEXT_DIM,
        norm_num_groups=8,
        attention_head_dim=4,
    )
    return UNet2DConditionModel(**{**config, **overrides})


def tiny_adapter(**overrides) -> MotionAdapter:
    config = dict(
        block_out_channels=(16, 32),
        motion_layers_per_block=1,
        motion_norm_num_groups=8,
        motion_num_attention_heads=2,
        motion_max_seq_length=32,
    )
    return MotionAdapter(**{**config, **overrides})


@pytest.fixture(scope="module", autouse=True)
def single_thread():
    """Tiny models gain nothing from intra-op threads, and on a busy 2-core machine OpenMP spin-waiting makes them
    tens of times slower; restore the setting for other test modules."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def pretrained_dir(tmp_path_factory):
    """An SD-style folder: <dir>/unet (UNet2DConditionModel) and <dir>/motion_adapter (MotionAdapter)."""
    root = tmp_path_factory.mktemp("tiny_sd")
    torch.manual_seed(0)
    tiny_unet2d().save_pretrained(root / "unet")
    tiny_adapter().save_pretrained(root / "motion_adapter")
    return root


@pytest.fixture(scope="module")
def pretrained_parts(pretrained_dir):
    unet = UNet2DConditionModel.from_pretrained(pretrained_dir / "unet")
    adapter = MotionAdapter.from_pretrained(pretrained_dir / "motion_adapter")
    return unet, adapter


@pytest.fixture
def make_fyc(pretrained_dir):
    def make(**options) -> FollowYourClickUNet:
        return load_fyc_unet(pretrained_dir, pretrained_dir / "motion_adapter", **options).eval()

    return make


def make_inputs(seed: int = 0, batch: int = B) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return dict(
        sample=torch.randn(batch, 4, F, H, W, generator=gen),
        timestep=torch.tensor([10, 500][:batch] + [10] * max(0, batch - 2)),
        encoder_hidden_states=torch.randn(batch, TEXT_LEN, TEXT_DIM, generator=gen),
        region_mask=(torch.rand(batch, 1, H, W, generator=gen) > 0.5).float(),
        first_frame_latent=torch.randn(batch, 4, H, W, generator=gen),
        motion_prompt_embeds=torch.randn(batch, 5, TEXT_DIM, generator=gen),
        motion_strength=torch.tensor([2.0, 8.0][:batch] + [4.0] * max(0, batch - 2)),
        frame_stride=torch.tensor([4.0] * batch),
    )


def perturb_(parameters, seed: int = 1, scale: float = 0.5) -> None:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in parameters:
            parameter.add_(torch.randn(parameter.shape, generator=gen) * scale)


def run(model, **inputs) -> torch.Tensor:
    return model(**inputs).sample


# ---------------------------------------------------------------------------------------------- shapes


@pytest.mark.parametrize(
    "placement,ma,strength,stride",
    list(itertools.product(["first", "repeat"], [False, True], [False, True], [False, True])),
)
def test_output_shape_for_every_option_combination(make_fyc, placement, ma, strength, stride):
    model = make_fyc(
        first_frame_placement=placement,
        motion_augmented_attention=ma,
        motion_strength_embedding=strength,
        frame_stride_embedding=stride,
    )
    assert model.config.in_channels == 9
    inputs = make_inputs()
    with torch.no_grad():
        out_4d_mask = run(model, **inputs)
        per_frame = dict(
            inputs,
            region_mask=inputs["region_mask"].unsqueeze(2).expand(B, 1, F, H, W),
            encoder_hidden_states=inputs["encoder_hidden_states"].repeat_interleave(F, dim=0),
        )
        out_5d_mask = run(model, **per_frame)
    assert out_4d_mask.shape == (B, 4, F, H, W)
    # (B,1,h,w) mask == its per-frame expansion; (B,L,D) text == its (B*F,L,D) repetition.
    torch.testing.assert_close(out_4d_mask, out_5d_mask)


def test_bad_input_shapes_raise_clear_errors(make_fyc):
    model = make_fyc()
    inputs = make_inputs()
    with pytest.raises(ValueError, match="channels"):
        run(model, **dict(inputs, sample=torch.randn(B, 9, F, H, W)))
    with pytest.raises(ValueError, match="region_mask"):
        run(model, **dict(inputs, region_mask=torch.ones(B, 1, H // 2, W // 2)))
    with pytest.raises(ValueError, match="encoder_hidden_states"):
        run(model, **dict(inputs, encoder_hidden_states=torch.randn(3, TEXT_LEN, TEXT_DIM)))
    with pytest.raises(ValueError, match="first_frame_latent"):
        run(model, **dict(inputs, first_frame_latent=torch.randn(B, 4, F, H, W)))
    with pytest.raises(ValueError, match="motion_strength"):
        run(model, **dict(inputs, motion_strength=torch.ones(3)))


# ---------------------------------------------------------------------------------------------- no-op at init


@pytest.mark.parametrize("placement", ["first", "repeat"])
def test_fresh_model_equals_diffusers_unet_motion_model(pretrained_parts, make_fyc, placement):
    unet, adapter = pretrained_parts
    plain = UNetMotionModel.from_unet2d(unet, adapter).eval()
    model = make_fyc(first_frame_placement=placement, **ALL_ON)
    inputs = make_inputs()
    with torch.no_grad():
        reference = plain(
            inputs["sample"],
            inputs["timestep"],
            inputs["encoder_hidden_states"].repeat_interleave(F, dim=0),
        ).sample
        ours = run(model, **inputs)
        ours_without_conditions = run(model, sample=inputs["sample"], timestep=inputs["timestep"],
                                      encoder_hidden_states=inputs["encoder_hidden_states"])
    torch.testing.assert_close(ours, reference, atol=1e-5, rtol=0)
    torch.testing.assert_close(ours_without_conditions, reference, atol=1e-5, rtol=0)


def test_from_unet2d_copies_pretrained_weights_and_zero_inits_new_channels(pretrained_parts, make_fyc):
    unet, adapter = pretrained_parts
    model = make_fyc(**ALL_ON)
    assert torch.equal(model.conv_in.weight[:, :4], unet.conv_in.weight)
    assert torch.count_nonzero(model.conv_in.weight[:, 4:]) == 0
    assert torch.equal(model.conv_in.bias, unet.conv_in.bias)
    state = model.state_dict()
    for key, value in unet.state_dict().items():
        if key != "conv_in.weight":
            assert torch.equal(state[key], value), key
    for key, value in adapter.state_dict().items():
        assert torch.equal(state[key], value), key


def test_pia_style_adapter_conv_in_is_ignored(pretrained_parts):
    unet, _ = pretrained_parts
    torch.manual_seed(3)
    pia_adapter = tiny_adapter(conv_in_channels=9)
    assert pia_adapter.conv_in.weight.abs().sum() > 0
    model = FollowYourClickUNet.from_unet2d(unet, pia_adapter)
    assert torch.count_nonzero(model.conv_in.weight[:, 4:]) == 0
    assert torch.equal(model.conv_in.weight[:, :4], unet.conv_in.weight)


# ---------------------------------------------------------------------------------------------- each addition


def _changes_output_and_gets_grads(model, params, inputs, without):
    """Perturbed ``params`` must make the output depend on the inputs named in ``without`` and get gradients."""
    perturb_(params)
    with torch.no_grad():
        out_without = run(model, **{k: v for k, v in inputs.items() if k not in without})
    out = run(model, **inputs)
    assert (out.detach() - out_without).abs().max() > 1e-3
    model.zero_grad()
    out.square().mean().backward()
    for parameter in params:
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0


def test_conv_in_conditioning_channels_change_output_and_get_grads(make_fyc):
    model = make_fyc()
    # Perturb only the 5 new input channels (keep the pretrained 4 as they are).
    with torch.no_grad():
        model.conv_in.weight[:, 4:] = torch.randn_like(model.conv_in.weight[:, 4:]) * 0.5
    inputs = make_inputs()
    with torch.no_grad():
        no_cond = run(model, **{k: v for k, v in inputs.items() if k not in ("region_mask", "first_frame_latent")})
        mask_only = run(model, **{k: v for k, v in inputs.items() if k != "first_frame_latent"})
    assert (mask_only - no_cond).abs().max() > 1e-3
    out = run(model, **inputs)
    assert (out.detach() - mask_only).abs().max() > 1e-3
    out.square().mean().backward()
    assert model.conv_in.weight.grad[:, 4:].abs().sum(dim=(0, 2, 3)).min() > 0


def test_motion_augmented_attention_changes_output_and_gets_grads(make_fyc):
    model = make_fyc(motion_augmented_attention=True)
    ma_params = [p for n, p in model.named_parameters() if parameter_group_of(n) == "motion_augmented_attention"]
    assert ma_params
    _changes_output_and_gets_grads(model, ma_params, make_inputs(), without={"motion_prompt_embeds"})


def test_strength_embedding_changes_output_and_gets_grads(make_fyc):
    model = make_fyc(motion_strength_embedding=True)
    params = list(model.strength_embedding.parameters())
    _changes_output_and_gets_grads(model, params, make_inputs(), without={"motion_strength"})


def test_frame_stride_embedding_changes_output_and_gets_grads(make_fyc):
    model = make_fyc(motion_strength_embedding=False, frame_stride_embedding=True)
    params = list(model.stride_embedding.parameters())
    _changes_output_and_gets_grads(model, params, make_inputs(), without={"frame_stride"})


@pytest.mark.parametrize("condition", ["motion_strength", "motion_prompt_embeds", "frame_stride"])
def test_conditions_are_honoured_per_sample(make_fyc, condition):
    model = make_fyc(**ALL_ON)
    perturb_([p for n, p in model.named_parameters() if parameter_group_of(n) != "spatial"], scale=0.2)
    inputs = make_inputs()
    changed = inputs[condition].clone()
    changed[1] = changed[1] * 3 + 1
    with torch.no_grad():
        out = run(model, **inputs)
        out_changed = run(model, **dict(inputs, **{condition: changed}))
    torch.testing.assert_close(out_changed[0], out[0], atol=1e-6, rtol=0)
    assert (out_changed[1] - out[1]).abs().max() > 1e-3


def test_first_frame_placement_first_vs_repeat(make_fyc):
    first = make_fyc(first_frame_placement="first")
    repeat = make_fyc(first_frame_placement="repeat")
    repeat.load_state_dict(first.state_dict())
    inputs = make_inputs()
    with torch.no_grad():
        assert torch.equal(run(first, **inputs), run(repeat, **inputs))  # zero-init: placement is invisible
        perturb_([first.conv_in.weight])
        repeat.conv_in.weight.copy_(first.conv_in.weight)
        assert (run(first, **inputs) - run(repeat, **inputs)).abs().max() > 1e-3
    built = first.build_model_input(inputs["sample"], None, inputs["first_frame_latent"])
    assert torch.equal(built[:, 5:, 0], inputs["first_frame_latent"])
    assert torch.count_nonzero(built[:, 5:, 1:]) == 0
    built = repeat.build_model_input(inputs["sample"], None, inputs["first_frame_latent"])
    assert torch.equal(built[:, 5:, -1], inputs["first_frame_latent"])


def test_inputs_of_disabled_conditions_are_ignored(make_fyc):
    model = make_fyc(motion_augmented_attention=False, motion_strength_embedding=False)
    inputs = make_inputs()
    with torch.no_grad():
        a = run(model, **inputs)
        b = run(model, **dict(inputs, motion_strength=inputs["motion_strength"] * 5, motion_prompt_embeds=None))
    assert torch.equal(a, b)


def test_without_region_mask_channel_the_mask_is_ignored(make_fyc):
    with_mask, without_mask = make_fyc(), make_fyc(region_mask_channel=False)
    for model in (with_mask, without_mask):
        perturb_([model.conv_in.weight])  # the mask channel's zero-init weights would hide any difference
    inputs = make_inputs()
    other_mask = dict(inputs, region_mask=1 - inputs["region_mask"])
    with torch.no_grad():
        assert not torch.allclose(run(with_mask, **inputs), run(with_mask, **other_mask))
        assert torch.equal(run(without_mask, **inputs), run(without_mask, **other_mask))
        assert torch.equal(run(without_mask, **inputs), run(without_mask, **dict(inputs, region_mask=None)))


# ---------------------------------------------------------------------------------------------- MA details


def test_ma_batched_cross_attention_equals_per_pixel_cross_attention():
    torch.manual_seed(0)
    layer = MotionAugmentedCrossAttention(dim=16, cross_attention_dim=12, num_attention_heads=4)
    perturb_(layer.parameters())
    batch, pixels, frames = 2, 6, 5
    tokens = torch.randn(batch * pixels, frames, 16)
    prompt = torch.randn(batch, 7, 12)
    fast = layer(tokens, prompt)
    # Naive version: repeat the prompt for every pixel and attend per temporal sequence, through diffusers' processor.
    naive = tokens + layer.attn(layer.norm(tokens), encoder_hidden_states=prompt.repeat_interleave(pixels, dim=0))
    torch.testing.assert_close(fast, naive, atol=1e-5, rtol=1e-5)
    layer.query_group_size = 10  # 3 groups of 2 pixels x 5 frames per sample
    torch.testing.assert_close(layer(tokens, prompt), naive, atol=1e-5, rtol=1e-5)


def test_ma_zero_init_is_a_no_op_and_its_opt_out_reads_the_prompt_from_construction(make_fyc):
    inputs = make_inputs()
    other_prompt = dict(inputs, motion_prompt_embeds=inputs["motion_prompt_embeds"].flip(1) * 2)
    zero, live = make_fyc(motion_augmented_attention=True), make_fyc(motion_augmented_attention=True, ma_zero_init=False)
    ma_out = [n for n, _ in live.named_parameters() if ".ma_blocks." in n and ".to_out.0." in n]
    assert ma_out
    assert all(torch.count_nonzero(zero.get_parameter(n)) == 0 for n in ma_out)
    assert all(torch.count_nonzero(live.get_parameter(n)) > 0 for n in ma_out)
    with torch.no_grad():
        assert torch.equal(run(zero, **inputs), run(zero, **other_prompt))
        assert (run(live, **inputs) - run(live, **other_prompt)).abs().max() > 1e-4
    assert live.config.ma_zero_init is False


def test_ma_uses_sdpa_processor_and_keeps_adapter_parameter_names(make_fyc, pretrained_parts):
    model = make_fyc(motion_augmented_attention=True)
    ma_processors = {k: type(v).__name__ for k, v in model.attn_processors.items() if ".ma_blocks." in k}
    assert ma_processors and set(ma_processors.values()) == {"AttnProcessor2_0"}
    names = set(model.state_dict())
    assert set(pretrained_parts[1].state_dict()) <= names
    assert all(".ma_blocks." in n for n in names if parameter_group_of(n) == "motion_augmented_attention")


# ---------------------------------------------------------------------------------------------- save / load


def test_save_load_round_trip_is_bit_exact(make_fyc, tmp_path):
    model = make_fyc(first_frame_placement="repeat", strength_embedding_scale=100.0, ma_num_attention_heads=4, **ALL_ON)
    perturb_([p for n, p in model.named_parameters() if parameter_group_of(n) != "spatial"], scale=0.2)
    model.save_pretrained(tmp_path / "fyc")
    assert (tmp_path / "fyc" / "diffusion_pytorch_model.safetensors").is_file()
    loaded = load_fyc_unet_from_folder(tmp_path / "fyc").eval()
    for key in ("first_frame_placement", "strength_embedding_scale", "ma_num_attention_heads",
                "motion_augmented_attention", "frame_stride_embedding", "latent_channels", "in_channels"):
        assert loaded.config[key] == model.config[key], key
    inputs = make_inputs()
    with torch.no_grad():
        assert torch.equal(run(loaded, **inputs), run(model, **inputs))


def test_load_fyc_unet_from_folder_rejects_other_models(pretrained_dir, tmp_path):
    with pytest.raises(ValueError, match="UNet2DConditionModel"):
        load_fyc_unet_from_folder(pretrained_dir / "unet")
    with pytest.raises(OSError, match="no FollowYourClickUNet config"):
        load_fyc_unet_from_folder(tmp_path / "does-not-exist")


def test_load_fyc_unet_accepts_bare_unet_folder_and_names_missing_paths(pretrained_dir, tmp_path):
    model = load_fyc_unet(pretrained_dir / "unet", pretrained_dir / "motion_adapter")
    assert isinstance(model, FollowYourClickUNet)
    with pytest.raises(OSError, match="does-not-exist"):
        load_fyc_unet(tmp_path / "does-not-exist", None)
    with pytest.raises(OSError, match="MotionAdapter"):
        load_fyc_unet(pretrained_dir, tmp_path / "no-adapter")


@pytest.mark.parametrize(
    "adapter_overrides,message",
    [
        (dict(block_out_channels=(8, 16)), "block_out_channels"),
        (dict(block_out_channels=(16, 32, 32)), "block_out_channels"),
        (dict(motion_layers_per_block=2), "layers per block"),
    ],
)
def test_incompatible_adapter_error_names_the_problem(pretrained_parts, adapter_overrides, message):
    unet, _ = pretrained_parts
    with pytest.raises(ValueError, match=message):
        FollowYourClickUNet.from_unet2d(unet, tiny_adapter(**adapter_overrides))


def test_mismatched_adapter_weights_are_named(pretrained_parts):
    unet, _ = pretrained_parts
    adapter = tiny_adapter()
    adapter.down_blocks[0].motion_modules[0].proj_in = torch.nn.Linear(16, 8)
    with pytest.raises(ValueError, match=r"down_blocks\.0\.motion_modules\.0\.proj_in\.weight.*\(8, 16\)"):
        FollowYourClickUNet.from_unet2d(unet, adapter)


def test_unknown_option_is_rejected(pretrained_parts):
    with pytest.raises(TypeError, match="motion_strenght"):
        FollowYourClickUNet.from_unet2d(pretrained_parts[0], None, motion_strenght=True)


# ---------------------------------------------------------------------------------------------- trainable groups


def test_trainable_group_counts_and_errors(make_fyc):
    model = make_fyc(**ALL_ON)
    counts = select_trainable_parameters(model, list(PARAMETER_GROUPS))
    assert sum(counts.values()) == sum(p.numel() for p in model.parameters())
    assert counts["conv_in"] == model.conv_in.weight.numel() + model.conv_in.bias.numel()
    embeddings = list(model.strength_embedding.parameters()) + list(model.stride_embedding.parameters())
    assert counts["condition_embeddings"] == sum(p.numel() for p in embeddings)
    assert all(count > 0 for count in counts.values())

    with pytest.raises(ValueError, match="motion_augmented_attention"):
        select_trainable_parameters(make_fyc(motion_augmented_attention=False), ["motion_augmented_attention"])
    with pytest.raises(ValueError, match="unet_everything"):
        parameter_groups(model, ["motion_modules", "unet_everything"])


def test_only_selected_groups_get_gradients(make_fyc):
    model = make_fyc(**ALL_ON).train()
    perturb_([p for n, p in model.named_parameters() if parameter_group_of(n) != "spatial"], scale=0.2)
    chosen = ["motion_modules", "motion_augmented_attention", "condition_embeddings"]
    select_trainable_parameters(model, chosen)
    run(model, **make_inputs()).square().mean().backward()
    for name, parameter in model.named_parameters():
        group = parameter_group_of(name)
        if group in chosen:
            assert parameter.requires_grad and parameter.grad is not None, name
        else:
            assert not parameter.requires_grad and parameter.grad is None, name
    assert any(p.grad.abs().sum() > 0 for p in parameter_groups(model, ["motion_augmented_attention"])[
        "motion_augmented_attention"])


# ---------------------------------------------------------------------------------------------- speed switches


def test_speed_switches_give_same_loss_and_grads(make_fyc):
    model = make_fyc(**ALL_ON).train()
    perturb_([p for n, p in model.named_parameters() if parameter_group_of(n) != "spatial"], scale=0.2)
    inputs = make_inputs()

    def loss_and_grads():
        model.zero_grad()
        loss = run(model, **inputs).square().mean()
        loss.backward()
        return loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}

    model.set_ma_checkpointing(False)
    model.set_ma_query_group_size(0)  # one MA attention call per sample
    loss_plain, grads_plain = loss_and_grads()
    model.set_ma_checkpointing(True)  # the default: MA sub-layers recomputed in backward
    results = {"ma_checkpointing": loss_and_grads()}
    model.set_ma_query_group_size(4)  # many small query groups, each attending to its own sample's prompt
    results["ma_query_groups"] = loss_and_grads()
    model.enable_gradient_checkpointing()
    assert model.mid_block.gradient_checkpointing  # mid block re-runs its (MA) motion module in backward
    results["ma_and_diffusers_checkpointing"] = loss_and_grads()
    for setting, (loss, grads) in results.items():
        torch.testing.assert_close(loss, loss_plain, msg=setting)
        assert grads.keys() == grads_plain.keys(), setting
        for name in grads_plain:
            torch.testing.assert_close(grads[name], grads_plain[name], atol=1e-5, rtol=1e-4, msg=f"{setting} {name}")


def test_num_query_groups():
    assert num_query_groups(4096, 16, 1024) == 64  # SD-1.5 top level at 512x512x16: 64 groups of 1024 queries
    assert num_query_groups(64, 16, 1024) == 1  # 8x8 latents: one group
    assert num_query_groups(4096, 16, 0) == 1  # disabled
    assert num_query_groups(6, 1, 2) == 3  # largest divisor of 6 with >= 2 queries per group
    assert num_query_groups(7, 1, 2) == 1  # prime: no even split, one group


class _NoFloat64(TorchDispatchMode):
    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for tensor in out if isinstance(out, (tuple, list)) else [out]:
            if isinstance(tensor, torch.Tensor) and tensor.dtype == torch.float64:
                raise AssertionError(f"{func} produced float64")
        return out


def test_forward_has_no_float64_and_runs_under_bf16_autocast(make_fyc):
    model = make_fyc(**ALL_ON)
    inputs = dict(make_inputs(), timestep=37.0, motion_strength=4.0, frame_stride=2)
    with torch.no_grad(), _NoFloat64():
        run(model, **inputs)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        out = run(model, **inputs)
    assert torch.isfinite(out).all()


def test_deepcopy_keeps_ma_context_and_hook_with_the_copy(make_fyc):
    """EMA-style copies must read their own per-forward conditions and use their own embeddings."""
    model = make_fyc(**ALL_ON)
    perturb_([p for n, p in model.named_parameters() if parameter_group_of(n) != "spatial"], scale=0.2)
    clone = copy.deepcopy(model)
    motion_module = clone.down_blocks[0].motion_modules[0]
    assert motion_module.ma_context is clone.fyc_conditions is not model.fyc_conditions
    inputs = make_inputs()
    with torch.no_grad():
        reference = run(clone, **inputs)
        model.strength_embedding.mlp.linear_2.weight.mul_(3)  # must not leak into the copy
        model.down_blocks[0].motion_modules[0].ma_blocks[0].attn.to_out[0].weight.mul_(3)
        run(model, **dict(inputs, motion_prompt_embeds=None))  # sets the original's context only
        assert torch.equal(run(clone, **inputs), reference)
        assert (run(model, **inputs) - reference).abs().max() > 1e-4


@pytest.mark.slow
def test_torch_compile_captures_fyc_parts_without_graph_breaks(make_fyc):
    """Smoke test of the FYC-specific parts (the whole UNet takes ~15 s to trace on CPU; it also has no graph
    break): an MA motion module reading the shared context, and the time embedding with the strength hook."""
    model = make_fyc(**ALL_ON)
    inputs = make_inputs()
    with torch.no_grad():
        run(model, **inputs)  # fills model.fyc_conditions
        hidden = torch.randn(B * F, 16, H, W)
        motion_module = model.down_blocks[0].motion_modules[0]
        time_input = model.time_proj(inputs["timestep"])
        try:
            compiled_module = torch.compile(motion_module, backend="eager", fullgraph=True)
            torch.testing.assert_close(compiled_module(hidden, num_frames=F), motion_module(hidden, num_frames=F))
            compiled_embedding = torch.compile(model.time_embedding, backend="eager", fullgraph=True)
            torch.testing.assert_close(compiled_embedding(time_input), model.time_embedding(time_input))
        finally:
            torch._dynamo.reset()  # leave no compiled state behind for other tests
