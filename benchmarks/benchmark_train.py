"""Training throughput (samples/s) and peak memory of one FollowYourClickModule training step, no weights needed.

A full step as train.py runs it: frozen VAE encode of the clip, frozen CLIP text encode (caption + short prompt),
first-frame masking, condition dropout, v-prediction loss through FollowYourClickUNet (MA on), backward, gradient
clipping, AdamW step — on random-init components and random clips (no data loading). Prints one JSON line per
configuration.

FLOPs: one extra step after the timed ones runs under ``torch.utils.flop_counter.FlopCounterMode`` (matmuls,
convolutions, attention; no elementwise ops), giving ``tflop_per_step``; ``mfu`` = those FLOPs per second over the
GPU's dense bf16 peak (``--peak-tflops``, or a table of known cards; null when unknown or on the CPU). Under
``--grad-ckpt`` the count includes the recomputed forward, so ``mfu`` is then a hardware-FLOPs utilisation, above the
model-FLOPs one.

Configs:
* ``tiny``: the toy components (fyc.toy.components, ~1.2 M UNet parameters, 2x pixel "VAE") at 32^2 x 8 frames, all
  groups trainable as in experiment=toy; for the CPU.
* ``sd15``: SD-1.5-size UNet2DConditionModel + AnimateDiff-v2-size MotionAdapter (mid block) + CLIP ViT-L/14-size
  text encoder + SD AutoencoderKL architecture, random-init; trainable groups as paper stage 2 (motion modules, MA,
  conv_in, strength embedding; spatial frozen).

Examples:
    OMP_NUM_THREADS=1 python benchmarks/benchmark_train.py --config tiny --device cpu --threads 1
    python benchmarks/benchmark_train.py --config sd15 --resolution 256 512 --frames 16 --device cuda --bf16 --grad-ckpt
"""
from __future__ import annotations

import argparse
import functools
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# Dense bf16 tensor-core peak in TFLOP/s by a substring of torch.cuda.get_device_name (first match wins).
PEAK_BF16_TFLOPS = (("H100 PCIe", 756.0), ("H100", 989.0), ("H200", 989.0), ("A100", 312.0), ("L40S", 362.0))

STAGE2_GROUPS = ["motion_modules", "motion_augmented_attention", "conv_in", "condition_embeddings"]
TOY_GROUPS = ["spatial", *STAGE2_GROUPS]


def build_tiny(tmp: Path):
    """Toy components written and loaded the way train.py loads them (experiment=toy)."""
    from transformers import CLIPTextModel, CLIPTokenizer

    from fyc.toy.world import TOY_VOCABULARY
    from fyc.models.loading import load_fyc_unet
    from fyc.toy.pixel_autoencoder import PixelAutoencoder
    from fyc.toy.components import build_toy_components

    root = build_toy_components(tmp / "components", TOY_VOCABULARY)
    unet = load_fyc_unet(str(root), str(root / "motion_adapter"), motion_augmented_attention=True,
                         ma_num_attention_heads=2)
    return (unet, PixelAutoencoder.from_pretrained(root, subfolder="vae"),
            CLIPTextModel.from_pretrained(root, subfolder="text_encoder"),
            CLIPTokenizer.from_pretrained(root, subfolder="tokenizer"), TOY_GROUPS)


def build_sd15(tmp: Path):
    """SD-1.5 / AnimateDiff-v2 / CLIP-L architectures with random weights (configs written out here)."""
    from diffusers import AutoencoderKL, MotionAdapter, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    from fyc.toy.world import TOY_VOCABULARY
    from fyc.models.unet import FollowYourClickUNet
    from fyc.toy.tokenizer import build_word_tokenizer

    torch.manual_seed(0)
    unet2d = UNet2DConditionModel(
        sample_size=64, in_channels=4, out_channels=4, block_out_channels=(320, 640, 1280, 1280), layers_per_block=2,
        down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
        up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3, cross_attention_dim=768, attention_head_dim=8,
        norm_num_groups=32)
    adapter = MotionAdapter(block_out_channels=(320, 640, 1280, 1280), motion_layers_per_block=2,
                            motion_mid_block_layers_per_block=1, motion_num_attention_heads=8,
                            motion_norm_num_groups=32, motion_max_seq_length=32, use_motion_mid_block=True)
    unet = FollowYourClickUNet.from_unet2d(unet2d, adapter, motion_augmented_attention=True, ma_num_attention_heads=8,
                                           motion_strength_embedding=True)
    del unet2d, adapter
    vae = AutoencoderKL(in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(128, 256, 512, 512),
                        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
                        layers_per_block=2, norm_num_groups=32, sample_size=512, scaling_factor=0.18215)
    text_encoder = CLIPTextModel(CLIPTextConfig(vocab_size=49408, hidden_size=768, intermediate_size=3072,
                                                num_hidden_layers=12, num_attention_heads=12,
                                                max_position_embeddings=77, hidden_act="quick_gelu"))
    # A word-level CLIP tokenizer (offline); ids < 49408, 77 tokens as with the real one.
    tokenizer = build_word_tokenizer(TOY_VOCABULARY, tmp / "tokenizer", model_max_length=77)
    return unet, vae, text_encoder, tokenizer, STAGE2_GROUPS


def make_batch(batch: int, frames: int, size: int, seed: int) -> dict:
    """Random clip batch with the dataset's keys: pixel_values (B, 3, F, H, W) in [-1, 1], masks in {0, 1}."""
    g = torch.Generator().manual_seed(seed)
    return {"pixel_values": torch.rand(batch, 3, frames, size, size, generator=g) * 2 - 1,
            "motion_mask": (torch.rand(batch, 1, size, size, generator=g) > 0.5).float(),
            "motion_strength": torch.rand(batch, generator=g) * 8, "frame_stride": torch.full((batch,), 4.0),
            "caption": ["a dog runs on the grass"] * batch, "short_prompt": ["run"] * batch}


def peak_memory_gb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # process peak RSS (KiB on Linux)


def peak_tflops(args, device: torch.device) -> float | None:
    if args.peak_tflops:
        return args.peak_tflops
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((peak for key, peak in PEAK_BF16_TFLOPS if key in name), None)


def run(args, resolution: int, components) -> dict:
    from fyc.models.schedulers import make_training_scheduler
    from fyc.training.module import FollowYourClickModule

    device = torch.device(args.device)
    unet, vae, text_encoder, tokenizer, groups = components
    module = FollowYourClickModule(
        unet, vae, text_encoder, tokenizer, noise_scheduler=make_training_scheduler(),
        optimizer=functools.partial(torch.optim.AdamW, lr=1e-4, weight_decay=0.01), trainable_groups=groups,
        first_frame_masking={"ratio": 0.7, "patch_size": 1, "prob": 1.0}, gradient_checkpointing=args.grad_ckpt,
        text_embedding_cache=16).to(device)
    module.train()
    optimizer = module.configure_optimizers()
    params = [p for p in module.unet.parameters() if p.requires_grad]
    batch = {k: v.to(device) if torch.is_tensor(v) else v
             for k, v in make_batch(args.batch_size, args.frames, resolution, args.seed).items()}
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.bf16)
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)

    def step(i: int) -> None:
        with autocast:
            loss = module.diffusion_loss(batch, generator=torch.Generator().manual_seed(i))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    for i in range(args.warmup):
        step(i)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    for i in range(args.steps):
        step(args.warmup + i)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = (time.perf_counter() - start) / args.steps
    peak_mem = peak_memory_gb(device)
    with FlopCounterMode(display=False) as counter:
        step(args.warmup + args.steps)
    tflop = counter.get_total_flops() / 1e12
    peak = peak_tflops(args, device)
    return {"config": args.config, "device": device.type, "resolution": resolution, "frames": args.frames,
            "batch_size": args.batch_size, "bf16": args.bf16, "grad_ckpt": args.grad_ckpt,
            "threads": torch.get_num_threads(), "steps": args.steps, "s_per_step": round(seconds, 4),
            "samples_per_s": round(args.batch_size / seconds, 3), "peak_mem_gb": round(peak_mem, 3),
            "peak_mem_kind": "cuda_max_allocated" if device.type == "cuda" else "process_max_rss",
            "trainable_params": sum(p.numel() for p in params),
            "total_params": sum(p.numel() for p in module.parameters()),
            "tflop_per_step": round(tflop, 6), "flops_include_recompute": args.grad_ckpt,
            "peak_tflops": peak, "mfu": None if peak is None else round(tflop / seconds / peak, 4),
            "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None}


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", choices=("tiny", "sd15"), default="tiny")
    parser.add_argument("--resolution", type=int, nargs="+", default=None, help="square sizes (default 32 / 512)")
    parser.add_argument("--frames", type=int, default=None, help="default 8 (tiny) / 16 (sd15)")
    parser.add_argument("--batch-size", type=int, default=4, help="per-device batch (paper: 32 / 8 GPUs = 4)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--bf16", action="store_true", help="bf16 autocast (trainer precision=bf16-mixed)")
    parser.add_argument("--grad-ckpt", action="store_true", help="gradient checkpointing of the UNet")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--peak-tflops", type=float, default=None,
                        help="the GPU's dense bf16 peak for mfu (default: known cards, see PEAK_BF16_TFLOPS)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    args.resolution = args.resolution or ([32] if args.config == "tiny" else [512])
    args.frames = args.frames or (8 if args.config == "tiny" else 16)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device available")

    results = []
    with tempfile.TemporaryDirectory() as tmp:
        components = (build_tiny if args.config == "tiny" else build_sd15)(Path(tmp))
        for resolution in args.resolution:
            try:
                result = run(args, resolution, components)
            except torch.OutOfMemoryError as error:
                result = {"config": args.config, "resolution": resolution, "frames": args.frames,
                          "batch_size": args.batch_size, "bf16": args.bf16, "grad_ckpt": args.grad_ckpt,
                          "error": f"out of memory: {str(error).splitlines()[0]}"}
                torch.cuda.empty_cache()
            print(json.dumps(result), flush=True)
            results.append(result)
    return results


if __name__ == "__main__":
    main()
