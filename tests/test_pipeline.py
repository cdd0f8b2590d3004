"""FollowYourClickPipeline on tiny components: reproducibility, conditioning reaches the output, bad input."""
import numpy as np
import pytest
import torch
from PIL import Image

from fyc.pipelines import FollowYourClickPipeline, region_grow_mask


@pytest.fixture(scope="module")
def pipe(toy_pipeline_dir):
    pipe = FollowYourClickPipeline.from_pretrained(toy_pipeline_dir)
    pipe.set_progress_bar_config(disable=True)
    # Wake the zero-initialised FYC additions so that mask, strength and prompt visibly matter.
    torch.manual_seed(0)
    with torch.no_grad():
        for name, param in pipe.unet.named_parameters():
            if "strength" in name or name.startswith("conv_in") or "ma_" in name:
                param.add_(torch.randn_like(param) * 0.05)
    return pipe


@pytest.fixture(scope="module")
def image_and_mask():
    image = np.full((32, 32, 3), 40, np.uint8)
    image[8:18, 10:20] = (220, 30, 30)
    return image, region_grow_mask(image, [(14, 12)])


def _run(pipe, image, mask, seed=0, **kwargs):
    args = dict(prompt="move left", strength=2.0, num_frames=4, num_inference_steps=2, guidance_scale=3.0)
    args.update(kwargs)
    return pipe(image, mask=mask, generator=torch.Generator().manual_seed(seed), **args).frames


def test_output_shape_range_and_seed(pipe, image_and_mask):
    image, mask = image_and_mask
    a, b = _run(pipe, image, mask), _run(pipe, image, mask)
    assert a.shape == (1, 4, 32, 32, 3) and a.min() >= 0 and a.max() <= 1
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, _run(pipe, image, mask, seed=1))


def test_strength_and_prompt_change_the_video(pipe, image_and_mask):
    image, mask = image_and_mask
    base = _run(pipe, image, mask)
    assert not np.allclose(base, _run(pipe, image, mask, strength=8.0))
    assert not np.allclose(base, _run(pipe, image, mask, prompt="spin"))


def test_accepts_pil_and_tensor_images(pipe, image_and_mask):
    image, mask = image_and_mask
    base = _run(pipe, image, mask)
    np.testing.assert_allclose(_run(pipe, Image.fromarray(image), Image.fromarray(mask.astype(np.uint8) * 255)),
                               base, atol=1e-5)


def test_bad_inputs_raise(pipe, image_and_mask):
    image, mask = image_and_mask
    with pytest.raises(ValueError, match="mask: the region is empty"):
        _run(pipe, image, np.zeros_like(mask))
    with pytest.raises(ValueError, match="does not match image size"):
        _run(pipe, image, np.ones((16, 16), bool))
    with pytest.raises(ValueError, match="num_frames must be in"):
        _run(pipe, image, mask, num_frames=1000)
    with pytest.raises(ValueError, match="unsupported image mode"):
        _run(pipe, Image.new("CMYK", (32, 32)), mask)
    with pytest.raises(ValueError, match="outside the image"):
        region_grow_mask(image, [(40, 3)])


def test_region_grow_selects_the_clicked_object(image_and_mask):
    image, mask = image_and_mask
    assert mask.sum() == 100 and mask[8:18, 10:20].all()
    both = region_grow_mask(image, [(14, 12)], negative_clicks=[(15, 15)])
    assert both.sum() == 0  # the negative click lies on the same object and removes it


def test_first_frame_residual_adds_the_image_latent_back(pipe, image_and_mask):
    """A first_frame_residual UNet denoises video - image latent: the pipeline's latents are the plain sampler's
    (same UNet, same noise) plus the encoded image repeated over frames, so frame 0 is the image when the residual
    is zero."""
    image, mask = image_and_mask
    internal = pipe.unet._internal_dict
    try:
        pipe.unet.register_to_config(first_frame_residual=False)
        plain = _run(pipe, image, mask, output_type="latent")
        pipe.unet.register_to_config(first_frame_residual=True)
        residual = _run(pipe, image, mask, output_type="latent")
    finally:
        pipe.unet._internal_dict = internal
    image_latent = pipe.encode_first_frame(torch.from_numpy(image).permute(2, 0, 1)[None].float() / 127.5 - 1)
    assert image_latent.abs().mean() > 0.05
    torch.testing.assert_close(residual - plain, image_latent[:, :, None].expand_as(plain), atol=1e-5, rtol=0)


def test_guidance_interval(pipe, image_and_mask):
    """Guidance only at the steps whose timestep lies in the interval: all steps → the default call bit for bit, no
    step → the unguided call, some steps → neither; with image guidance and several regions alike."""
    image, mask = image_and_mask
    steps = dict(num_inference_steps=3)  # timesteps 999, 666, 333
    for extra in ({}, {"image_guidance_scale": 1.5}):
        guided = _run(pipe, image, mask, **steps, **extra)
        np.testing.assert_array_equal(_run(pipe, image, mask, guidance_interval=(0, 1000), **steps, **extra), guided)
        never = _run(pipe, image, mask, guidance_interval=(1000, 1000), **steps, **extra)
        plain = _run(pipe, image, mask, guidance_scale=1.0, **steps)
        np.testing.assert_allclose(never, plain, atol=1e-5)
        early = _run(pipe, image, mask, guidance_interval=(500, 1000), **steps, **extra)
        assert not np.allclose(early, guided, atol=1e-4) and not np.allclose(early, plain, atol=1e-4)
    other = np.zeros_like(mask)
    other[22:30, 2:10] = True
    regions = [dict(mask=mask, prompt="move left"), dict(mask=other, prompt="move up")]
    np.testing.assert_array_equal(_run(pipe, image, None, regions=regions, guidance_interval=(0, 1000), **steps),
                                  _run(pipe, image, None, regions=regions, **steps))
    for bad in ((600, 500), (0, 2000), (5,)):
        with pytest.raises(ValueError, match=r"guidance_interval must be \(t_min, t_max\)"):
            _run(pipe, image, mask, guidance_interval=bad)
