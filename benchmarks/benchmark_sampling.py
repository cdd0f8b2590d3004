"""Sampling time per video: FollowYourClickPipeline vs diffusers' AnimateDiffPipeline, same backbone, same run.

Both pipelines share one random UNet2DConditionModel + MotionAdapter (no download), one AutoencoderKL, one CLIP
text encoder and the same DDIM scheduler config, steps, guidance, frames and initial latents. The reference UNet
is ``UNetMotionModel.from_unet2d(unet2d, adapter)``; ours is ``FollowYourClickUNet.from_unet2d(unet2d, adapter,
motion_augmented_attention=True)`` fed a region mask, the first-frame latent, the motion prompt and a strength.
A second configuration times two regions with their own prompts and one strength (3 UNet batch entries per
step instead of 2; a region with its own, different strength adds one more unconditional entry).
Time = median over ``--repeats`` alternating runs after one warm-up run each (includes prompt encoding, the
first-frame encode for ours, all UNet steps and VAE decoding). Target: ratio <= 1.10 for one region.

Prints one JSON line per configuration:
  {"config", "device", "dtype", "resolution", "frames", "steps", "guidance", "regions", "fyc_s", "animatediff_s",
   "ratio"}

Examples:
    python benchmarks/benchmark_sampling.py --threads 1            # tiny, CPU
    python benchmarks/benchmark_sampling.py --config sd15 --device cuda --resolution 512 --frames 16
"""
from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
import warnings

import numpy as np
import torch
from diffusers import AnimateDiffPipeline, AutoencoderKL, MotionAdapter, UNet2DConditionModel, UNetMotionModel
from transformers import CLIPTextConfig, CLIPTextModel

from fyc.models import FollowYourClickUNet, make_sampling_scheduler
from fyc.pipelines import FollowYourClickPipeline, Region
from fyc.toy.tokenizer import build_word_tokenizer

WORDS = ["a", "dog", "cat", "wag", "tail", "turn", "head", "move", "left", "right", "blurry"]

CONFIGS = {
    "tiny": dict(
        unet=dict(block_out_channels=(32, 64), layers_per_block=1, sample_size=16,
                  down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                  up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), cross_attention_dim=32, attention_head_dim=8,
                  norm_num_groups=8),
        adapter=dict(block_out_channels=(32, 64), motion_layers_per_block=1, motion_norm_num_groups=8,
                      motion_num_attention_heads=2, motion_max_seq_length=32, use_motion_mid_block=False),
        vae=dict(block_out_channels=(8, 16), down_block_types=("DownEncoderBlock2D",) * 2,
                 up_block_types=("UpDecoderBlock2D",) * 2, norm_num_groups=8, layers_per_block=1),
        text=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2),
        ma_heads=2, defaults=dict(resolution=32, frames=8, steps=10),
    ),
    # SD-1.5 UNet / VAE / CLIP ViT-L text encoder + AnimateDiff v1-5-2 adapter layout, random weights.
    "sd15": dict(
        unet=dict(block_out_channels=(320, 640, 1280, 1280), layers_per_block=2, sample_size=64,
                  down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
                  up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3, cross_attention_dim=768,
                  attention_head_dim=8, norm_num_groups=32),
        adapter=dict(block_out_channels=(320, 640, 1280, 1280), motion_layers_per_block=2,
                     motion_mid_block_layers_per_block=1, motion_num_attention_heads=8, motion_norm_num_groups=32,
                     motion_max_seq_length=32, use_motion_mid_block=True),
        vae=dict(block_out_channels=(128, 256, 512, 512), down_block_types=("DownEncoderBlock2D",) * 4,
                 up_block_types=("UpDecoderBlock2D",) * 4, norm_num_groups=32, layers_per_block=2),
        text=dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12),
        ma_heads=8, defaults=dict(resolution=512, frames=16, steps=25),
    ),
}


def build(config_name: str, device: torch.device, dtype: torch.dtype, seed: int = 0):
    """→ (FollowYourClickPipeline, AnimateDiffPipeline) sharing every weight they have in common."""
    config = CONFIGS[config_name]
    torch.manual_seed(seed)
    unet2d = UNet2DConditionModel(in_channels=4, out_channels=4, **config["unet"])
    adapter = MotionAdapter(**config["adapter"])
    vae = AutoencoderKL(in_channels=3, out_channels=3, latent_channels=4, **config["vae"])
    tokenizer = build_word_tokenizer(WORDS, tempfile.mkdtemp(prefix="fyc_tok_"))
    text_encoder = CLIPTextModel(CLIPTextConfig(
        vocab_size=len(tokenizer), max_position_embeddings=77, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, **config["text"]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference_unet = UNetMotionModel.from_unet2d(unet2d, adapter)
        fyc_unet = FollowYourClickUNet.from_unet2d(unet2d, adapter, motion_augmented_attention=True,
                                                   ma_num_attention_heads=config["ma_heads"])
    # Wake the zero-initialised additions so nothing could be skipped as a no-op.
    with torch.no_grad():
        for name, param in fyc_unet.named_parameters():
            if "strength" in name or name.startswith("conv_in") or "ma_" in name:
                param.add_(torch.randn_like(param) * 1e-3)
    for module in (vae, text_encoder, reference_unet, fyc_unet, adapter):
        module.to(device=device).eval()
        if dtype != torch.float32:
            module.to(dtype=dtype)
    del unet2d
    fyc = FollowYourClickPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=fyc_unet,
                                  scheduler=make_sampling_scheduler())
    reference = AnimateDiffPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=reference_unet,
                                    motion_adapter=adapter,
                                    scheduler=make_sampling_scheduler())
    for pipe in (fyc, reference):
        pipe.set_progress_bar_config(disable=True)
    return fyc, reference


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", choices=sorted(CONFIGS), default="tiny")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", choices=["float32", "float16", "bfloat16"], default=None,
                        help="default: float16 on CUDA, float32 on CPU")
    parser.add_argument("--resolution", type=int, default=None)
    parser.add_argument("--frames", type=int, default=None)
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--guidance", type=float, default=7.5)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--no-regions", action="store_true", help="skip the two-region configuration")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    defaults = CONFIGS[args.config]["defaults"]
    res = args.resolution or defaults["resolution"]
    frames = args.frames or defaults["frames"]
    steps = args.steps or defaults["steps"]
    device = torch.device(args.device)
    dtype = getattr(torch, args.dtype or ("float16" if device.type == "cuda" else "float32"))

    fyc, reference = build(args.config, device, dtype)
    scale = fyc.vae_scale_factor
    generator = torch.Generator().manual_seed(0)
    latents = torch.randn(1, 4, frames, res // scale, res // scale, generator=generator).to(device, dtype)
    image = np.random.default_rng(0).integers(0, 256, (res, res, 3), dtype=np.uint8)
    left = np.zeros((res, res), bool)
    left[res // 8:res // 2, res // 8:res // 2] = True
    right = np.zeros((res, res), bool)
    right[res // 2:-res // 8, res // 2:-res // 8] = True
    common = dict(num_frames=frames, num_inference_steps=steps, guidance_scale=args.guidance,
                  negative_prompt="blurry", output_type="np")

    def run_reference():
        return reference(prompt="a dog wag tail", height=res, width=res, latents=latents.clone(), **common)

    def run_fyc_one():
        return fyc(image, mask=left, prompt="a dog wag tail", strength=8.0, latents=latents.clone(), **common)

    def run_fyc_two():
        return fyc(image, regions=[Region("wag tail", mask=left), Region("turn head", mask=right)],
                   strength=8.0, latents=latents.clone(), **common)

    configurations = [("1 region", run_fyc_one, 1)] + ([] if args.no_regions else [("2 regions", run_fyc_two, 2)])
    for _, fn, _ in configurations:  # warm-up
        fn()
    run_reference()
    times = {name: [] for name, _, _ in configurations}
    times["reference"] = []
    for _ in range(args.repeats):
        for name, fn in [("reference", run_reference)] + [(n, f) for n, f, _ in configurations]:
            sync(device)
            start = time.perf_counter()
            with torch.inference_mode():
                fn()
            sync(device)
            times[name].append(time.perf_counter() - start)
    ref = statistics.median(times["reference"])
    for name, _, regions in configurations:
        ours = statistics.median(times[name])
        print(json.dumps(dict(config=args.config, device=str(device), dtype=str(dtype).replace("torch.", ""),
                              resolution=res, frames=frames, steps=steps, guidance=args.guidance, regions=regions,
                              threads=torch.get_num_threads(), fyc_s=round(ours, 4), animatediff_s=round(ref, 4),
                              ratio=round(ours / ref, 4))), flush=True)


if __name__ == "__main__":
    main()
