"""Bad numbers and paths give a clear error naming the argument, before any sampling (pipeline, animate.py, app.py)."""
from __future__ import annotations

import sys

import numpy as np
import pytest
from PIL import Image

from conftest import ROOT

sys.path.insert(0, str(ROOT / "scripts"))
import animate  # noqa: E402


@pytest.fixture(scope="module")
def pipe(toy_pipeline_dir):
    from fyc.pipelines import FollowYourClickPipeline

    return FollowYourClickPipeline.from_pretrained(toy_pipeline_dir)


def _scene():
    image = np.full((32, 32, 3), 40, np.uint8)
    image[8:18, 10:20] = (220, 30, 30)
    return image


@pytest.mark.parametrize("kwargs, name", [
    (dict(strength=float("nan")), "strength"), (dict(strength=float("inf")), "strength"),
    (dict(strength=-1.0), "strength"), (dict(guidance_scale=float("nan")), "guidance_scale"),
    (dict(guidance_scale=-2.0), "guidance_scale"), (dict(image_guidance_scale=float("inf")), "image_guidance_scale"),
    (dict(frame_stride=-4), "frame_stride"), (dict(frame_stride=float("nan")), "frame_stride"),
    (dict(regions=[dict(prompt="a", clicks=[(14, 12)], strength=float("nan"))]), r"regions\[0\].strength"),
])
def test_pipeline_rejects_non_finite_and_negative_numbers(pipe, kwargs, name):
    kwargs = {"clicks": [(14, 12)], "strength": 1.0, **kwargs}
    if "regions" in kwargs:
        kwargs.pop("clicks")
    with pytest.raises(ValueError, match=rf"^{name} must be a finite number"):
        pipe(_scene(), prompt="move left", num_frames=2, num_inference_steps=1, **kwargs)


def test_fractional_click_stays_in_its_pixel_and_odd_sizes_are_rejected_clearly(pipe):
    from fyc.pipelines.click_to_mask import check_clicks

    assert check_clicks([(31.9, 0.2)], 32, 32) == [(31, 0)]
    with pytest.raises(ValueError, match=r"outside the image"):
        check_clicks([(32.0, 0)], 32, 32)
    # data/benchmarks/README.md: sizes must be multiples of the model's downsampling (no resizing)
    with pytest.raises(ValueError, match=r"image: height and width must be multiples of \d+ .*got 30x30"):
        pipe(np.zeros((30, 30, 3), np.uint8), clicks=[(3, 3)], strength=1.0, num_frames=2, num_inference_steps=1)


@pytest.fixture
def image_path(tmp_path):
    path = tmp_path / "image.png"
    Image.fromarray(_scene()).save(path)
    return path


@pytest.mark.parametrize("args, message", [
    (["--strength", "nan"], "--strength must be a finite number >= 0"),
    (["--strength", "-1"], "--strength must be a finite number >= 0"),
    (["--guidance", "inf"], "--guidance must be a finite number >= 0"),
    (["--frame-stride", "0"], "--frame-stride must be a finite number > 0"),
    (["--fps", "-8"], "--fps must be a finite number > 0"),
    (["--click", "-5,-3"], "click '-5,-3': X and Y must be finite and >= 0"),
    (["--out", "{tmp}/video.avi"], "--out {tmp}/video.avi: the file must end in .mp4 or .gif"),
    (["--model", None], "no --model given and the shipped toy model is missing"),
    (["--model", "{tmp}/no_such_pipeline"], "no such folder"),
    (["--image", "{tmp}/missing.png"], "--image {tmp}/missing.png: no such file"),
])
def test_animate_usage_errors_come_before_loading_or_sampling(monkeypatch, capsys, image_path, tmp_path, args,
                                                             message):
    from fyc.pipelines import FollowYourClickPipeline

    def refuse(*a, **k):
        raise AssertionError("the pipeline was loaded before the arguments were checked")

    monkeypatch.setattr(FollowYourClickPipeline, "from_pretrained", refuse)
    monkeypatch.setattr("fyc.toy.default_model.SHIPPED_MODEL", tmp_path / "no_shipped_model")  # without --model
    argv = {"--model": str(tmp_path), "--image": str(image_path), "--prompt": "move left",
            "--out": str(tmp_path / "v.mp4")}
    if "--click" not in args:
        argv["--click"] = "14,12"
    extra = []
    for key, value in zip(args[::2], args[1::2]):
        if key in argv:
            argv[key] = value
        else:
            extra += [key, value]
    flat = [x for k, v in argv.items() if v is not None for x in (k, v.format(tmp=tmp_path))] + \
        [x.format(tmp=tmp_path) for x in extra]
    with pytest.raises(SystemExit) as exit_info:
        animate.main(flat)
    assert exit_info.value.code == 2
    assert message.format(tmp=tmp_path) in capsys.readouterr().err


def test_app_temp_video_folder_is_removed_and_cli_checks_numbers(pipe, capsys, tmp_path):
    import app

    from fyc.pipelines import RegionGrowSegmenter

    blocks = app.build_app(pipe, RegionGrowSegmenter(), steps=1, frames=2)
    folder = blocks.fyc_out_dir
    assert folder.is_dir() and blocks.fyc_cleanup.atexit  # runs at interpreter exit
    blocks.fyc_cleanup()
    assert not folder.exists()
    kept = app.build_app(pipe, RegionGrowSegmenter(), out_dir=tmp_path / "kept")
    assert kept.fyc_cleanup is None and kept.fyc_out_dir.is_dir()
    with pytest.raises(SystemExit):
        app.main(["--model", "x", "--steps", "0"])
    assert "--steps must be >= 1" in capsys.readouterr().err
