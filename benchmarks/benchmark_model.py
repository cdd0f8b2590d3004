"""Forward+backward time and peak memory of FollowYourClickUNet vs diffusers' plain UNetMotionModel.

Both models are built in the same run from the SAME random UNet2DConditionModel + MotionAdapter (no download):
plain = ``UNetMotionModel.from_unet2d(unet2d, adapter)``, FYC = ``FollowYourClickUNet.from_unet2d(unet2d, adapter,
motion_augmented_attention=True, motion_strength_embedding=True)`` fed a region mask, first-frame latent, a
77-token motion prompt and a strength. Trainable: plain -> motion modules + conv_in; FYC -> the same + MA +
condition embeddings (spatial frozen in both), so the ratios isolate what FYC adds.
Targets: FYC/plain time <= 1.10, memory <= 1.05.

Measured mode (``--device cpu`` / ``cuda``):
* time: median of ``--steps`` train steps (zero_grad, forward, loss, backward; no optimizer) after ``--warmup``,
  in ``--rounds`` alternating rounds so drifting machine load hits both models alike;
* peak memory of one train step with only that model on the device (weights, inputs, activations, grads):
  CUDA ``torch.cuda.max_memory_allocated`` after ``reset_peak_memory_stats``; CPU the peak of the torch
  profiler's memory timeline (``profile_memory=True`` + ``export_memory_timeline``: live tensor bytes as torch's
  allocator sees them). tracemalloc does not see torch's allocations and ru_maxrss is a process-wide high-water
  mark that cannot be reset between the two models, so neither is used.

Analytic mode (``--device meta``): no GPU needed, any size. Models and inputs live on the meta device (no data,
no compute); reports forward+backward FLOPs (``torch.utils.flop_counter.FlopCounterMode``) and the bytes of
tensors autograd saves for backward (``saved_tensors_hooks``, de-duplicated by storage; includes weights that
matmuls keep) -- the activation memory that dominates peak memory at video sizes. Attention is accounted as a
flash kernel (saves q, k, v, out, log-sum-exp), as on a GPU; see ``_FlashAttentionModel``. ``--dtype`` casts
weights and inputs there (autocast does not apply to meta tensors). Time itself is not modelled: FLOPs are its
proxy, and small-op overheads (norms, copies, launches) are not counted.

Examples:
    python benchmarks/benchmark_model.py --config tiny --threads 1
    python benchmarks/benchmark_model.py --config sd15 --device meta --dtype bfloat16
    python benchmarks/benchmark_model.py --config sd15 --device cuda --dtype bfloat16 --gradient-checkpointing
    python benchmarks/benchmark_model.py --config sd15 --device cuda --dtype bfloat16 --compile reduce-overhead --rounds 1
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import tempfile
import time
import warnings
from pathlib import Path
from unittest import mock

import torch
from diffusers import MotionAdapter, UNet2DConditionModel, UNetMotionModel
from torch.profiler import ProfilerActivity, profile
from torch.utils.flop_counter import FlopCounterMode, sdpa_backward_flop_count, sdpa_flop_count

from fyc.models import FollowYourClickUNet, select_trainable_parameters

CONFIGS = {
    # For the CPU (most of its time is the profiled memory step).
    "tiny": dict(
        unet=dict(
            block_out_channels=(32, 64),
            layers_per_block=2,
            sample_size=16,
            down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
            up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
            cross_attention_dim=32,
            norm_num_groups=16,
            attention_head_dim=8,
        ),
        adapter=dict(
            block_out_channels=(32, 64),
            motion_layers_per_block=2,
            motion_norm_num_groups=16,
            motion_num_attention_heads=4,
            motion_max_seq_length=32,
        ),
        text_dim=32,
        ma_heads=4,  # head width 8/16, like the motion modules; 8 heads would mean width-4 heads
        defaults=dict(height=128, width=128, frames=8, batch=1),
    ),
    # Wide enough for representative CPU ratios (MA's fixed 77-key attention cost shrinks relative to the
    # C^2 projections as width C grows).
    "small": dict(
        unet=dict(
            block_out_channels=(128, 256),
            layers_per_block=2,
            sample_size=32,
            down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
            up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
            cross_attention_dim=128,
            norm_num_groups=32,
            attention_head_dim=8,
        ),
        adapter=dict(
            block_out_channels=(128, 256),
            motion_layers_per_block=2,
            motion_norm_num_groups=32,
            motion_num_attention_heads=8,
            motion_max_seq_length=32,
        ),
        text_dim=128,
        ma_heads=8,
        defaults=dict(height=256, width=256, frames=8, batch=1),
    ),
    # SD-1.5 UNet + AnimateDiff v2 (v1-5-2) adapter layout, random weights; for a GPU (or --device meta).
    "sd15": dict(
        unet=dict(
            block_out_channels=(320, 640, 1280, 1280),
            layers_per_block=2,
            sample_size=64,
            down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
            up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
            cross_attention_dim=768,
            attention_head_dim=8,
            norm_num_groups=32,
        ),
        adapter=dict(
            block_out_channels=(320, 640, 1280, 1280),
            motion_layers_per_block=2,
            motion_mid_block_layers_per_block=1,
            motion_num_attention_heads=8,
            motion_norm_num_groups=32,
            motion_max_seq_length=32,
            use_motion_mid_block=True,
        ),
        text_dim=768,
        ma_heads=8,  # head width 40/80/160, like AnimateDiff's temporal attention
        defaults=dict(height=512, width=512, frames=16, batch=1),
    ),
}
TEXT_TOKENS = 77  # CLIP context length, for both the caption and the short motion prompt


def build_models(config_name: str, seed: int) -> tuple[UNetMotionModel, FollowYourClickUNet]:
    """Both models from one random UNet2D + adapter (build under ``torch.device("meta")`` for analytic mode)."""
    config = CONFIGS[config_name]
    torch.manual_seed(seed)
    unet2d = UNet2DConditionModel(**config["unet"])
    adapter = MotionAdapter(**config["adapter"])
    plain = UNetMotionModel.from_unet2d(unet2d, adapter)
    fyc = FollowYourClickUNet.from_unet2d(
        unet2d,
        adapter,
        motion_augmented_attention=True,
        ma_num_attention_heads=config["ma_heads"],
        motion_strength_embedding=True,
    )
    # Same trainable base in both (motion modules + conv_in, as image-conditioned AnimateDiff training needs), so
    # the ratio isolates FYC's additions. Training conv_in at all costs extra memory in both: every frozen layer
    # between conv_in and the first motion module must then keep its activations for backward.
    select_trainable_parameters(plain, ["motion_modules", "conv_in"])
    select_trainable_parameters(
        fyc, ["motion_modules", "motion_augmented_attention", "conv_in", "condition_embeddings"]
    )
    return plain.train(), fyc.train()


def make_inputs(args, text_dim: int, device: torch.device, fyc: bool) -> dict:
    """Random train-step inputs; the text is pre-repeated per frame for the plain model, as diffusers wants."""
    gen = torch.Generator().manual_seed(args.seed)
    h, w = args.height // 8, args.width // 8
    inputs = dict(
        sample=torch.randn(args.batch, 4, args.frames, h, w, generator=gen),
        timestep=torch.randint(0, 1000, (args.batch,), generator=gen),
        encoder_hidden_states=torch.randn(args.batch, TEXT_TOKENS, text_dim, generator=gen),
    )
    if fyc:
        inputs.update(
            region_mask=(torch.rand(args.batch, 1, h, w, generator=gen) > 0.5).float(),
            first_frame_latent=torch.randn(args.batch, 4, h, w, generator=gen),
            motion_prompt_embeds=torch.randn(args.batch, TEXT_TOKENS, text_dim, generator=gen),
            motion_strength=torch.rand(args.batch, generator=gen) * 16,
        )
    else:  # diffusers' UNetMotionModel wants the text repeated per frame
        inputs["encoder_hidden_states"] = inputs["encoder_hidden_states"].repeat_interleave(args.frames, dim=0)
    return {key: value.to(device) for key, value in inputs.items()}


def train_step(model, inputs: dict, autocast_dtype: torch.dtype | None, device: torch.device) -> None:
    model.zero_grad(set_to_none=True)
    with torch.autocast(device.type, dtype=autocast_dtype or torch.float32, enabled=autocast_dtype is not None):
        loss = model(**inputs).sample.float().square().mean()
    loss.backward()


def print_profile(name: str, model, inputs, autocast_dtype, device, top: int) -> None:
    """The ``top`` ops of one train step by self time on the device (CPU time on a CPU), plus totals."""
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=activities) as prof:
        train_step(model, inputs, autocast_dtype, device)
        synchronize(device)
    sort = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
    events = prof.key_averages()
    print(f"--- profile: {name} ({len(prof.events())} events)")
    print(events.table(sort_by=sort, row_limit=top, max_name_column_width=60))


def report_syncs(name: str, model, inputs, autocast_dtype, device) -> None:
    """Count the host-device synchronisations of one train step (they stall the launch queue)."""
    torch.cuda.set_sync_debug_mode("warn")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            train_step(model, inputs, autocast_dtype, device)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    syncs = [str(w.message).splitlines()[0] for w in caught if "synchroniz" in str(w.message)]
    print(f"--- syncs: {name}: {len(syncs)}" + "".join(f"\n    {m}" for m in sorted(set(syncs))[:5]))


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_steps(model, inputs, autocast_dtype, device, steps: int) -> list[float]:
    times = []
    for _ in range(steps):
        synchronize(device)
        start = time.perf_counter()
        train_step(model, inputs, autocast_dtype, device)
        synchronize(device)
        times.append(time.perf_counter() - start)
    return times


def peak_step_memory(model, inputs, autocast_dtype, device) -> int:
    """Peak bytes held by torch during one train step (see module docstring for how)."""
    model.zero_grad(set_to_none=True)
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
        train_step(model, inputs, autocast_dtype, device)
        synchronize(device)
        return torch.cuda.max_memory_allocated(device)
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True, record_shapes=True, with_stack=True) as prof:
        train_step(model, inputs, autocast_dtype, device)
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # export_memory_timeline is deprecated but the only CPU view
        path = Path(tmp) / "timeline.json"
        prof.export_memory_timeline(str(path), device="cpu")
        _, sizes = json.loads(path.read_text())
    return int(max(sum(per_category) for per_category in sizes))


class _FlashAttentionModel(torch.autograd.Function):
    """Stand-in for ``F.scaled_dot_product_attention`` on meta tensors with flash-attention accounting.

    On the meta device torch falls back to the math kernel, which saves the full (Lq x Lk) attention matrix and
    would dwarf everything else; GPU training uses flash / memory-efficient kernels that save only q, k, v, the
    output and a float32 log-sum-exp. This keeps exactly that and tallies FLOPs with torch's own sdpa formulas.
    """

    flops = 0

    @staticmethod
    def forward(ctx, query, key, value):
        out = query.new_empty(query.shape[:-1] + value.shape[-1:])
        logsumexp = query.new_empty(query.shape[:-1], dtype=torch.float32)
        ctx.save_for_backward(query, key, value, out, logsumexp)
        _FlashAttentionModel.flops += sdpa_flop_count(query.shape, key.shape, value.shape)
        return out

    @staticmethod
    def backward(ctx, grad_out):
        query, key, value, _, _ = ctx.saved_tensors
        _FlashAttentionModel.flops += sdpa_backward_flop_count(grad_out.shape, query.shape, key.shape, value.shape)
        return torch.empty_like(query), torch.empty_like(key), torch.empty_like(value)


def _flash_sdpa(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, **kwargs):
    if attn_mask is not None or is_causal:
        raise ValueError("analytic mode models unmasked attention only")
    return _FlashAttentionModel.apply(query, key, value)


def analyse_step(model, inputs: dict, dtype: torch.dtype | None) -> tuple[float, int]:
    """Meta-device train step -> (forward+backward FLOPs, bytes autograd saves for backward)."""
    saved: dict[int, int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        saved[storage._cdata] = storage.nbytes()  # one entry per storage: views and re-saves count once
        return tensor

    if dtype is not None:
        inputs = {k: v.to(dtype) if v.is_floating_point() else v for k, v in inputs.items()}
    model.zero_grad(set_to_none=True)
    counter = FlopCounterMode(display=False)
    _FlashAttentionModel.flops = 0
    with (
        mock.patch.object(torch.nn.functional, "scaled_dot_product_attention", _flash_sdpa),
        torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor),
        counter,
    ):
        model(**inputs).sample.float().square().mean().backward()
    return counter.get_total_flops() + _FlashAttentionModel.flops, sum(saved.values())


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", choices=sorted(CONFIGS), default="tiny")
    parser.add_argument("--height", type=int, help="pixels (latent = /8); default per config")
    parser.add_argument("--width", type=int, help="pixels (latent = /8); default per config")
    parser.add_argument("--frames", type=int)
    parser.add_argument("--batch", type=int)
    parser.add_argument("--steps", type=int, default=5, help="timed steps per model and round")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--device", default="cuda" if torch.cuda.is_available() else "cpu", help="cpu, cuda[:i] or meta (analytic)"
    )
    parser.add_argument(
        "--dtype", choices=["float32", "bfloat16", "float16"], default="float32",
        help="autocast dtype (weights stay float32, as in mixed-precision training)",
    )
    parser.add_argument("--gradient-checkpointing", action="store_true", help="diffusers' switch, both models")
    parser.add_argument(
        "--no-ma-checkpointing", action="store_true", help="keep MA activations instead of recomputing them"
    )
    parser.add_argument("--ma-checkpointing", nargs="+", choices=["on", "off"],
                        help="MA recompute in backward; several values time the FYC model once per value (default on)")
    parser.add_argument("--ma-query-group-size", type=int, nargs="+", default=[1024], metavar="N",
                        help="queries per MA attention call (0 = one call per sample); "
                             "several values time the FYC model once per value, in the same run")
    parser.add_argument("--compile", default="none",
                        choices=["none", "default", "reduce-overhead", "max-autotune-no-cudagraphs"],
                        help="torch.compile both models with this mode (compiled during --warmup; reduce-overhead = "
                             "CUDA graphs, which removes the per-op launch cost that dominates batch 1 on big GPUs)")
    parser.add_argument("--compile-backend", default="inductor",
                        help="torch.compile backend (aot_eager: trace only, no code generation; for debugging)")
    parser.add_argument("--threads", type=int, help="CPU intra-op threads (default: torch's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--profile", type=int, default=0, metavar="N",
                        help="also print the N most expensive ops of one profiled train step per model")
    parser.add_argument("--json", metavar="PATH", help="also write the settings and results as JSON to PATH")
    parser.add_argument("--sync-debug", action="store_true",
                        help="CUDA: report host-device synchronisations in one train step per model")
    args = parser.parse_args()
    if args.compile != "none" and args.device == "meta":
        parser.error("--compile needs a real device (cpu or cuda), not meta")
    for key, value in CONFIGS[args.config]["defaults"].items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    return args


def print_header(args, device) -> None:
    print(
        f"config={args.config} device={device} dtype={args.dtype} batch={args.batch} frames={args.frames} "
        f"size={args.height}x{args.width} grad_ckpt={args.gradient_checkpointing} compile={args.compile} "
        + (f"steps={args.steps}x{args.rounds} threads={torch.get_num_threads()}" if device.type != "meta" else "")
    )


def print_table(models: dict, columns: dict[str, dict[str, float]], targets: dict[str, float]) -> dict:
    """columns: title -> {model name -> value}; ratios FYC/plain printed for the columns named in targets.

    Returns the same as data: {"models": {name: {"params_m", "trainable_m", <column>: value}},
    "ratios": {fyc name: {column: FYC/plain}}, "targets": targets}."""
    data = {"models": {}, "ratios": {}, "targets": targets}
    header = f"{'model':<24}{'params M':>10}{'trainable M':>13}" + "".join(f"{title:>16}" for title in columns)
    print(header)
    print("-" * len(header))
    for name, model in models.items():
        params = sum(p.numel() for p in model.parameters()) / 1e6
        trainable = sum(p.numel() for p in model.parameters() if p.requires_grad) / 1e6
        values = "".join(f"{column[name]:>16.1f}" for column in columns.values())
        print(f"{name:<24}{params:>10.2f}{trainable:>13.2f}{values}")
        data["models"][name] = {"params_m": round(params, 3), "trainable_m": round(trainable, 3),
                                **{title: round(column[name], 3) for title, column in columns.items()}}
    plain_name, *fyc_names = list(models)
    for fyc_name in fyc_names:
        for title, target in targets.items():
            ratio = columns[title][fyc_name] / columns[title][plain_name]
            verdict = "ok" if ratio <= target else "OVER"
            print(f"{fyc_name} / plain {title:<12} {ratio:.3f}  (target <= {target:.2f}: {verdict})")
            data["ratios"].setdefault(fyc_name, {})[title] = round(ratio, 4)
    return data


def write_json(path: str | None, args, device, data: dict, **extra) -> None:
    """``--json``: the run's settings and :func:`print_table`'s data, for benchmarks/run_all.py."""
    if path is None:
        return
    settings = {key: getattr(args, key) for key in ("config", "dtype", "batch", "frames", "height", "width",
                                                     "gradient_checkpointing", "compile", "steps", "rounds", "warmup")}
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else None
    Path(path).write_text(json.dumps({**settings, "device": device.type, "gpu": gpu,
                                      "threads": torch.get_num_threads(), **data, **extra}, indent=2))


def main() -> None:
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    dtype = None if args.dtype == "float32" else getattr(torch, args.dtype)
    with torch.device("meta") if device.type == "meta" else contextlib.nullcontext():
        plain, fyc = build_models(args.config, args.seed)
    # One FYC entry per (MA query group size, MA checkpointing) setting; they share the module and set the knobs
    # before each use.
    ma_ckpt = args.ma_checkpointing or (["off"] if args.no_ma_checkpointing else ["on"])
    settings = [(n, c) for n in args.ma_query_group_size for c in ma_ckpt]
    fyc_settings = {(f"FYC g{n} ckpt {c}" if len(settings) > 1 else "FollowYourClickUNet"): (n, c == "on")
                    for n, c in settings}
    models = {"plain UNetMotionModel": plain, **{name: fyc for name in fyc_settings}}

    def apply_setting(name: str, model) -> None:
        if name in fyc_settings:
            model.set_ma_query_group_size(fyc_settings[name][0])
            model.set_ma_checkpointing(fyc_settings[name][1])

    if args.gradient_checkpointing:
        for model in models.values():
            model.enable_gradient_checkpointing()
    if args.compile != "none":
        for model in (plain, fyc):  # in place: the modules keep their names, .to() and settings still work
            if args.compile_backend == "inductor":
                model.compile(mode=args.compile)
            else:  # modes are inductor's
                model.compile(backend=args.compile_backend)
    text_dim = CONFIGS[args.config]["text_dim"]
    inputs = {name: make_inputs(args, text_dim, device, fyc=model is fyc) for name, model in models.items()}
    print_header(args, device)

    if device.type == "meta":
        flops, saved = {}, {}
        for name, model in models.items():
            model = model if dtype is None else model.to(dtype)
            apply_setting(name, model)
            flops[name], saved[name] = analyse_step(model, inputs[name], dtype)
        columns = {
            "fwd+bwd GFLOP": {k: v / 1e9 for k, v in flops.items()},
            "saved act GiB": {k: v / 2**30 for k, v in saved.items()},
        }
        data = print_table(models, columns, {"fwd+bwd GFLOP": 1.10, "saved act GiB": 1.05})
        write_json(args.json, args, device, data)
        return

    times: dict[str, list[float]] = {name: [] for name in models}
    memory: dict[str, int] = {}
    for round_index in range(args.rounds):
        order = list(models) if round_index % 2 == 0 else list(reversed(models))
        for name in order:
            model = models[name].to(device)  # one model on the device at a time
            apply_setting(name, model)
            time_steps(model, inputs[name], dtype, device, args.warmup)
            times[name] += time_steps(model, inputs[name], dtype, device, args.steps)
            if name not in memory:
                memory[name] = peak_step_memory(model, inputs[name], dtype, device)
                if args.sync_debug and device.type == "cuda":
                    report_syncs(name, model, inputs[name], dtype, device)
                if args.profile:
                    print_profile(name, model, inputs[name], dtype, device, args.profile)
            model.zero_grad(set_to_none=True)
            models[name] = model.to("cpu")
            if device.type == "cuda":
                torch.cuda.empty_cache()
    columns = {
        "median ms": {name: statistics.median(values) * 1e3 for name, values in times.items()},
        "peak MiB": {name: value / 2**20 for name, value in memory.items()},
    }
    data = print_table(models, columns, {"median ms": 1.10, "peak MiB": 1.05})
    extra = {}
    if args.compile != "none":
        from torch._dynamo.utils import counters

        extra = {"compiled_graphs": counters["stats"]["unique_graphs"],
                 "graph_breaks": sum(counters["graph_break"].values())}
        print(f"compiled graphs: {extra['compiled_graphs']}, graph breaks: {extra['graph_breaks']}")
    write_json(args.json, args, device, data, **extra)


if __name__ == "__main__":
    main()
