"""FollowYourClickPipeline against diffusers' AnimateDiffPipeline, several regions, clicks via SAM, bad input.

Everything is tiny and built in code: a 2-level UNet2DConditionModel + MotionAdapter, a real (random) tiny
AutoencoderKL, a tiny CLIP text encoder with an offline word tokenizer, a tiny random SamModel saved locally.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from diffusers import AnimateDiffPipeline, AutoencoderKL, MotionAdapter, UNet2DConditionModel, UNetMotionModel
from PIL import Image
from transformers import CLIPTextConfig, CLIPTextModel

from fyc.models import FollowYourClickUNet, make_sampling_scheduler
from fyc.pipelines import FollowYourClickPipeline, Region, RegionGrowSegmenter, SamSegmenter, load_segmenter
from fyc.toy.tokenizer import build_word_tokenizer

WORDS = ["move", "left", "right", "up", "down", "spin", "wag", "tail", "jump", "a", "red", "ball"]
SIZE, FRAMES = 32, 4


@pytest.fixture(scope="module")
def parts(tmp_path_factory):
    """Shared tiny components: (vae, text_encoder, tokenizer, unet2d, adapter)."""
    torch.manual_seed(0)
    unet2d = UNet2DConditionModel(
        sample_size=SIZE // 2, in_channels=4, out_channels=4, block_out_channels=(32, 64), layers_per_block=1,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=32, attention_head_dim=8, norm_num_groups=8)
    adapter = MotionAdapter(block_out_channels=(32, 64), motion_layers_per_block=1, motion_norm_num_groups=8,
                            motion_num_attention_heads=2, motion_max_seq_length=8, use_motion_mid_block=False)
    vae = AutoencoderKL(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 2,
                        up_block_types=("UpDecoderBlock2D",) * 2, block_out_channels=(8, 16), latent_channels=4,
                        norm_num_groups=8, sample_size=SIZE)
    tokenizer = build_word_tokenizer(WORDS, tmp_path_factory.mktemp("tok"))
    text_encoder = CLIPTextModel(CLIPTextConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
        max_position_embeddings=77, bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id))
    for module in (unet2d, adapter, vae, text_encoder):
        module.eval()
    return vae, text_encoder, tokenizer, unet2d, adapter


def _fyc(parts, **options) -> FollowYourClickPipeline:
    vae, text_encoder, tokenizer, unet2d, adapter = parts
    unet = FollowYourClickUNet.from_unet2d(unet2d, adapter, motion_augmented_attention=True,
                                           ma_num_attention_heads=2, **options).eval()
    pipe = FollowYourClickPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
                                   scheduler=make_sampling_scheduler())
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _wake(pipe: FollowYourClickPipeline, seed: int = 0, scale: float = 0.05) -> FollowYourClickPipeline:
    """Perturb the zero-initialised FYC additions so that mask, first frame, strength and prompt matter."""
    torch.manual_seed(seed)
    with torch.no_grad():
        for name, param in pipe.unet.named_parameters():
            if "strength" in name or name.startswith("conv_in") or "ma_" in name:
                param.add_(torch.randn_like(param) * scale)
    return pipe


@pytest.fixture(scope="module")
def woken(parts):
    return _wake(_fyc(parts))


@pytest.fixture(scope="module")
def scene():
    """uint8 (32, 32, 3) image with two flat objects; their bool masks."""
    image = np.full((SIZE, SIZE, 3), 40, np.uint8)
    image[2:12, 2:12] = (220, 30, 30)
    image[18:30, 18:30] = (30, 30, 220)
    left = np.zeros((SIZE, SIZE), bool)
    left[2:12, 2:12] = True
    right = np.zeros((SIZE, SIZE), bool)
    right[18:30, 18:30] = True
    return image, left, right


def _noise(seed: int = 0) -> torch.Tensor:
    return torch.randn((1, 4, FRAMES, SIZE // 2, SIZE // 2), generator=torch.Generator().manual_seed(seed))


# ---------------------------------------------------------------------------------------------- equivalence


@pytest.mark.parametrize("guidance_scale", [7.5, 1.0])
def test_zero_init_equals_animatediff_pipeline(parts, scene, guidance_scale):
    """FYC additions at zero init → exactly AnimateDiff's sampler: same frames for the same components, prompt,
    scheduler and latents, whatever mask / first frame / strength / motion prompt we feed."""
    vae, text_encoder, tokenizer, unet2d, adapter = parts
    reference_unet = UNetMotionModel.from_unet2d(unet2d, adapter).eval()
    reference = AnimateDiffPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=reference_unet,
                                    motion_adapter=adapter, scheduler=make_sampling_scheduler())
    reference.set_progress_bar_config(disable=True)
    ours = _fyc(parts)
    image, left, _ = scene
    common = dict(prompt="a red ball move left", num_frames=FRAMES, num_inference_steps=3,
                  guidance_scale=guidance_scale, negative_prompt="jump", output_type="np")
    expected = reference(height=SIZE, width=SIZE, latents=_noise(), **common).frames
    got = ours(image, mask=left, strength=6.0, latents=_noise(), **common).frames
    assert got.shape == expected.shape == (1, FRAMES, SIZE, SIZE, 3)
    assert np.abs(expected - 0.5).max() > 0.01  # the reference produced something non-trivial
    np.testing.assert_allclose(got, expected, atol=2e-5, rtol=0)
    # The same with clicks instead of a mask, and in latent space.
    got_latent = ours(image, clicks=[(5, 5)], strength=2.0, latents=_noise(), **{**common, "output_type": "latent"})
    ref_latent = reference(height=SIZE, width=SIZE, latents=_noise(), **{**common, "output_type": "latent"}).frames
    torch.testing.assert_close(got_latent.frames, ref_latent, atol=2e-5, rtol=0)
    assert got_latent.segmenter == "region-growing fallback"


def test_seed_strength_prompt_and_image_guidance(woken, scene):
    """With the additions awake: same seed → same video, other seed / strength / prompt / image guidance → other."""
    image, left, _ = scene
    args = dict(mask=left, prompt="move left", strength=4.0, num_frames=FRAMES, num_inference_steps=2,
                guidance_scale=3.0)

    def run(seed=0, **kw):
        return woken(image, generator=torch.Generator().manual_seed(seed), **{**args, **kw}).frames

    base = run()
    np.testing.assert_array_equal(base, run())
    for other in (run(seed=1), run(strength=12.0), run(prompt="spin"), run(image_guidance_scale=2.0)):
        assert np.abs(other - base).max() > 1e-4


def test_callback_and_progress(woken, scene):
    """callback_on_step_end sees every step and can replace the latents (zeroing them changes the result)."""
    image, left, _ = scene
    seen = []

    def callback(pipe, step, t, tensors):
        seen.append((step, int(t), tuple(tensors["noise_pred"].shape)))
        return {"latents": torch.zeros_like(tensors["latents"])}

    out = woken(image, mask=left, prompt="move left", strength=4.0, num_frames=FRAMES, num_inference_steps=3,
                latents=_noise(), output_type="latent", callback_on_step_end=callback,
                callback_on_step_end_tensor_inputs=["latents", "noise_pred"]).frames
    assert [s for s, _, _ in seen] == [0, 1, 2] and seen[0][2] == (1, 4, FRAMES, SIZE // 2, SIZE // 2)
    assert torch.count_nonzero(out) == 0


# ---------------------------------------------------------------------------------------------- several regions


def _latent_mask(mask: np.ndarray) -> torch.Tensor:
    """bool (32, 32) → bool (1, 1, 1, 16, 16) latent mask (max-pool), broadcastable over (B, C, F, h, w)."""
    m = torch.nn.functional.adaptive_max_pool2d(torch.from_numpy(mask)[None, None].float(), SIZE // 2) > 0
    return m[:, :, None]


def test_each_region_prompt_acts_only_inside_its_mask(woken, scene):
    """Two regions with their own prompts: changing one region's prompt (or strength) changes the denoised
    latents inside that region's mask and nowhere else (one step: the composition is exact there). The mask
    channel the UNet sees is the union of both masks."""
    image, left, right = scene
    seen_masks = []
    hook = woken.unet.register_forward_pre_hook(
        lambda m, a, kw: seen_masks.append(kw["region_mask"].clone()), with_kwargs=True)

    def run(prompt_left="move left", prompt_right="spin", strength_right=None):
        regions = [Region(prompt_left, mask=left), Region(prompt_right, mask=right, strength=strength_right)]
        return woken(image, regions=regions, strength=4.0, num_frames=FRAMES, num_inference_steps=1,
                     guidance_scale=5.0, latents=_noise(), output_type="latent").frames

    try:
        base = run()
        changed_left = run(prompt_left="jump")
        changed_right = run(prompt_right="wag tail", strength_right=10.0)
    finally:
        hook.remove()
    inside_left, inside_right = _latent_mask(left), _latent_mask(right)
    for changed, inside in ((changed_left, inside_left), (changed_right, inside_right)):
        diff = (changed - base).abs()
        outside_max = diff[~inside.expand_as(diff)].max()
        inside_min = diff[inside.expand_as(diff)].min()
        print(float(outside_max), float(inside_min), float(diff[inside.expand_as(diff)].median()))
        # Outside: float round-off only (the batch differs between runs); inside: every latent pixel changes.
        assert outside_max < 1e-5, "a prompt leaked outside its region"
        assert inside_min > 5 * outside_max, "a region's prompt did not act everywhere inside it"
        assert diff[inside.expand_as(diff)].median() > 1000 * outside_max
    union = (inside_left | inside_right)[:, :, 0].float()
    assert all(torch.equal(m, union.expand_as(m)) for m in seen_masks)
    # 2 regions + shared unconditional = 3 batch entries per step (CFG over 1 region is 2).
    assert seen_masks[0].shape[0] == 3


def test_regions_from_clicks_return_their_masks(woken, scene):
    """Two regions via clicks (fallback segmenter) give the masks back, and several steps run end to end."""
    image, left, right = scene
    out = woken(image, regions=[{"prompt": "move left", "clicks": [(5, 5)]},
                                {"prompt": "spin", "clicks": [(20, 20)], "negative_clicks": [(0, 0)]}],
                strength=4.0, num_frames=FRAMES, num_inference_steps=2, guidance_scale=5.0,
                generator=torch.Generator().manual_seed(0))
    assert out.frames.shape == (1, FRAMES, SIZE, SIZE, 3) and out.segmenter == "region-growing fallback"
    np.testing.assert_array_equal(out.masks[0, 0], left)
    np.testing.assert_array_equal(out.masks[0, 1], right)


# ---------------------------------------------------------------------------------------------- SAM


@pytest.fixture(scope="module")
def tiny_sam_dir(tmp_path_factory):
    """A random tiny SamModel + SamProcessor (256² input) saved to a local folder."""
    from transformers import (SamConfig, SamImageProcessor, SamMaskDecoderConfig, SamModel, SamProcessor,
                              SamPromptEncoderConfig, SamVisionConfig)

    torch.manual_seed(0)
    config = SamConfig(
        vision_config=SamVisionConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, image_size=256,
                                      patch_size=16, output_channels=32, global_attn_indexes=[1], mlp_dim=64,
                                      window_size=4, num_pos_feats=16),
        prompt_encoder_config=SamPromptEncoderConfig(hidden_size=32, image_size=256, patch_size=16,
                                                     mask_input_channels=4),
        mask_decoder_config=SamMaskDecoderConfig(hidden_size=32, num_attention_heads=2, mlp_dim=64,
                                                 iou_head_hidden_dim=32, num_hidden_layers=2))
    out = tmp_path_factory.mktemp("sam")
    SamModel(config).save_pretrained(out)
    SamProcessor(image_processor=SamImageProcessor(size={"longest_edge": 256},
                                                   pad_size={"height": 256, "width": 256})).save_pretrained(out)
    return out


def test_sam_segmenter_picks_best_iou_and_drives_the_pipeline(tiny_sam_dir, woken, scene):
    """SAM from a local folder: positive + negative points reach the model, 3 candidates come back at image size,
    the chosen one is the argmax of the predicted IoU, and the pipeline reports SAM as the segmenter."""
    image, _, _ = scene
    sam = load_segmenter(str(tiny_sam_dir))
    assert isinstance(sam, SamSegmenter) and not sam.is_fallback
    calls = []
    hook = sam.model.register_forward_pre_hook(lambda m, a, kw: calls.append(kw), with_kwargs=True)
    masks, scores = sam.predict(image, [(5, 5), (8, 8)], [(25, 25)])
    hook.remove()
    assert masks.shape == (3, SIZE, SIZE) and masks.dtype == bool and scores.shape == (3,)
    assert calls[0]["input_labels"].tolist() == [[[1, 1, 0]]]
    assert tuple(calls[0]["input_points"].shape) == (1, 1, 3, 2)
    np.testing.assert_array_equal(sam(image, [(5, 5), (8, 8)], [(25, 25)]), masks[int(np.argmax(scores))])
    # A random SAM may return an empty mask; force a non-empty one to drive the pipeline through SAM.
    sam.predict = lambda img, c, n=(): (np.ones((3, SIZE, SIZE), bool), np.array([0.1, 0.9, 0.2]))
    out = woken(image, clicks=[(5, 5)], prompt="move left", strength=4.0, num_frames=FRAMES, num_inference_steps=1,
                segmenter=sam)
    assert out.segmenter.startswith("SAM") and out.masks.all()
    assert isinstance(load_segmenter(None), RegionGrowSegmenter) and load_segmenter(None).is_fallback
    with pytest.raises(OSError, match="sam: could not load"):
        load_segmenter(str(tiny_sam_dir / "missing"))


# ---------------------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("kwargs, message", [
    (dict(clicks=[(40, 3)]), r"clicks: \(40, 3\) is outside the image \(32x32\); x must be in \[0, 31\]"),
    (dict(clicks=[(3, 3)], negative_clicks=[(3, -1)]), r"negative_clicks: .* y in \[0, 31\]"),
    (dict(mask=np.zeros((SIZE, SIZE), bool)), r"mask: the region is empty .* at least one pixel"),
    (dict(mask=np.ones((16, 16), bool)), r"mask: size \(16, 16\) .* does not match image size \(32, 32\)"),
    (dict(mask="left", num_frames=9), r"num_frames must be in \[1, 8\]"),
    (dict(mask="left", num_frames=0), r"num_frames must be in \[1, 8\]"),
    (dict(mask="left", image=Image.new("CMYK", (SIZE, SIZE))),
     r"image: unsupported image mode 'CMYK'; supported modes are RGB, RGBA, L"),
    (dict(mask="left", image=np.zeros((SIZE, SIZE, 3), np.float32)), r"image: expected a uint8 \(H, W, 3\)"),
    (dict(mask="left", image=np.zeros((SIZE + 2, SIZE, 3), np.uint8)),
     r"image: height and width must be multiples of 4"),
    (dict(mask="left", strength=-1.0), r"strength must be a finite number >= 0"),
    (dict(mask="left", latents=torch.zeros(1, 4, 2, 16, 16)), r"latents: expected shape \(1, 4, 4, 16, 16\)"),
    (dict(mask="left", clicks=[(1, 1)]), r"clicks and mask: pass either"),
    (dict(), r"clicks / mask: one of them is needed"),
    (dict(regions=[Region("a", mask=np.zeros((SIZE, SIZE), bool))]), r"mask: the region is empty"),
    (dict(regions=[Region("a", mask="left"), Region("b", clicks=[(99, 0)])]), r"clicks: \(99, 0\) is outside"),
    (dict(mask="left", output_type="gif"), r"output_type must be one of"),
])
def test_bad_inputs_raise_value_errors_naming_the_argument(woken, scene, kwargs, message):
    image, left, _ = scene
    kwargs = dict(kwargs)
    if isinstance(kwargs.get("mask"), str):
        kwargs["mask"] = left
    if "regions" in kwargs:
        kwargs["regions"] = [Region(r.prompt, r.clicks, r.negative_clicks,
                                    left if isinstance(r.mask, str) else r.mask) for r in kwargs["regions"]]
    kwargs.setdefault("image", image)
    kwargs.setdefault("num_frames", FRAMES)
    with pytest.raises(ValueError, match=message):
        woken(prompt="move left", num_inference_steps=1, **kwargs)
