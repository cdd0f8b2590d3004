"""fyc.eval: Fréchet distance, FVD (StyleGAN-V TorchScript protocol) and CLIP metrics against independent
computations, with a tiny TorchScript detector and a tiny CLIP built here and saved to disk (loaded the way users
load the real ones). The builders are reused by tests/test_eval_distributed.py and tests/test_evaluate.py.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.linalg
import torch
import torch.nn.functional as F

from fyc.eval.frechet import frechet_distance, gaussian_stats, gaussian_stats_from_sums

# ------------------------------------------------------------------------------------------- tiny models

TINY_DETECTOR_FEATURES = 6
CLIP_WORDS = ("move", "left", "right", "up", "down", "spin", "grow", "shrink", "shake", "wag", "tail", "a", "red",
              "disc")


class TinyVideoDetector(torch.nn.Module):
    """Stands in for StyleGAN-V's i3d_torchscript.pt: same call signature, uint8 (B, 3, T, H, W) in, float
    (B, num_features) out.

    ``rescale`` maps [0, 255] → [-1, 1] and ``resize`` resamples to 16x16 (the real one: 224x224), so calling it
    without the protocol's keyword arguments gives different features.
    """

    def __init__(self, num_features: int = TINY_DETECTOR_FEATURES):
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv3d(3, num_features, kernel_size=(2, 4, 4), stride=(1, 4, 4))

    def forward(self, x: torch.Tensor, rescale: bool = False, resize: bool = False,
                return_features: bool = False) -> torch.Tensor:
        x = x.float()
        if rescale:
            x = x / 127.5 - 1.0
        if resize:
            x = F.interpolate(x, size=(x.shape[2], 16, 16), mode="trilinear", align_corners=False)
        h = torch.tanh(self.conv(x))
        features = h.mean(dim=(2, 3, 4))
        if return_features:
            return features
        return features.softmax(dim=-1)


def build_tiny_detector(path: Path, num_features: int = TINY_DETECTOR_FEATURES) -> Path:
    """Script, save and return a TorchScript file with the StyleGAN-V detector signature."""
    torch.jit.script(TinyVideoDetector(num_features).eval()).save(str(path))
    return path


def build_tiny_clip(out_dir: Path) -> Path:
    """A random tiny CLIP (model + offline word tokenizer + image processor) in ``save_pretrained`` layout.

    The image processor does not resize (frames are fed at the model's 32x32), so a direct computation only needs
    the rescale and normalisation.
    """
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel

    from fyc.toy.tokenizer import build_word_tokenizer

    tokenizer = build_word_tokenizer(CLIP_WORDS, out_dir)
    text = dict(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=37, num_hidden_layers=1,
                num_attention_heads=2, max_position_embeddings=77, bos_token_id=tokenizer.bos_token_id,
                eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    vision = dict(image_size=32, patch_size=8, hidden_size=32, intermediate_size=37, num_hidden_layers=1,
                  num_attention_heads=2)
    torch.manual_seed(0)
    model = CLIPModel(CLIPConfig(text_config=text, vision_config=vision, projection_dim=16)).eval()
    model.save_pretrained(out_dir)
    CLIPImageProcessor(do_resize=False, do_center_crop=True, crop_size={"height": 32, "width": 32}).save_pretrained(
        out_dir)
    return out_dir


@pytest.fixture(scope="session")
def tiny_detector_path(tmp_path_factory) -> Path:
    return build_tiny_detector(tmp_path_factory.mktemp("detector") / "tiny_i3d_torchscript.pt")


@pytest.fixture(scope="session")
def tiny_clip_dir(tmp_path_factory) -> Path:
    return build_tiny_clip(tmp_path_factory.mktemp("tiny_clip"))


def random_videos(n: int, frames: int = 8, size: int = 24, seed: int = 0, brightness: float = 0.0) -> np.ndarray:
    """uint8 (n, F, H, W, 3): smooth random blobs (so features vary between clips), optionally brightened."""
    rng = np.random.default_rng(seed)
    base = rng.uniform(0, 1, size=(n, frames, size // 4, size // 4, 3))
    video = np.repeat(np.repeat(base, 4, axis=2), 4, axis=3) * 200 + 20 + brightness
    return np.clip(video, 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------------------------- Fréchet

def _random_spd(rng, d: int) -> np.ndarray:
    a = rng.normal(size=(d, d))
    return a @ a.T / d + 0.1 * np.eye(d)


@pytest.mark.parametrize("method", ["sqrtm", "eigen"])
def test_frechet_matches_closed_form_gaussians(method):
    # 1-D: (m1 - m2)² + (s1 - s2)²
    assert frechet_distance([1.0], [[4.0]], [3.0], [[9.0]], method=method) == pytest.approx(4.0 + 1.0, rel=1e-12)
    # Commuting (diagonal) covariances: Σ (m1-m2)² + Σ (sqrt(a) - sqrt(b))²
    rng = np.random.default_rng(0)
    mu1, mu2 = rng.normal(size=5), rng.normal(size=5)
    a, b = rng.uniform(0.1, 3, size=5), rng.uniform(0.1, 3, size=5)
    expected = ((mu1 - mu2) ** 2).sum() + ((np.sqrt(a) - np.sqrt(b)) ** 2).sum()
    assert frechet_distance(mu1, np.diag(a), mu2, np.diag(b), method=method) == pytest.approx(expected, rel=1e-10)
    # Same Gaussian → 0; a pure mean shift → |Δμ|²
    sigma = _random_spd(rng, 6)
    assert frechet_distance(mu1[:1].repeat(6), sigma, mu1[:1].repeat(6), sigma, method=method) == pytest.approx(
        0.0, abs=1e-9)
    shift = np.arange(6.0)
    assert frechet_distance(np.zeros(6), sigma, shift, sigma, method=method) == pytest.approx(shift @ shift, rel=1e-8)


def test_frechet_matches_an_independent_scipy_computation():
    rng = np.random.default_rng(1)
    for d in (3, 16, 64):
        mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
        s1, s2 = _random_spd(rng, d), _random_spd(rng, d)
        # Independent route: symmetric form Tr((√s1 s2 √s1)^½) with scipy's sqrtm for both roots.
        root1 = scipy.linalg.sqrtm(s1).real
        independent = float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2)
                            - 2 * np.trace(scipy.linalg.sqrtm(root1 @ s2 @ root1).real))
        for method in ("sqrtm", "eigen"):
            assert frechet_distance(mu1, s1, mu2, s2, method=method) == pytest.approx(independent, rel=1e-8)
        # torch float32 inputs are promoted to float64
        assert frechet_distance(torch.tensor(mu1, dtype=torch.float32), torch.tensor(s1, dtype=torch.float32),
                                mu2, s2) == pytest.approx(independent, rel=1e-4)


def test_gaussian_stats_and_running_sums_agree_with_numpy():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(50, 7)) * 3 + 10
    mu, sigma = gaussian_stats(x)
    np.testing.assert_allclose(mu, x.mean(0), rtol=1e-12)
    np.testing.assert_allclose(sigma, np.cov(x, rowvar=False), rtol=1e-10)
    mu2, sigma2 = gaussian_stats_from_sums(x.sum(0), x.T @ x, len(x))
    np.testing.assert_allclose(mu2, mu, rtol=1e-12)
    np.testing.assert_allclose(sigma2, sigma, rtol=1e-8, atol=1e-10)


def test_frechet_errors_name_the_problem():
    with pytest.raises(ValueError, match="at least 2 feature vectors"):
        gaussian_stats(np.zeros((1, 3)))
    with pytest.raises(ValueError, match="shape mismatch"):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(2), np.eye(2))
    with pytest.raises(ValueError, match="method must be one of"):
        frechet_distance(np.zeros(2), np.eye(2), np.zeros(2), np.eye(2), method="svd")


# ------------------------------------------------------------------------------------------------- FVD

def test_fvd_through_a_torchscript_file(tiny_detector_path):
    from fyc.eval.fvd import FrechetVideoDistance, videos_to_bcthw

    real, other = random_videos(12, seed=0), random_videos(12, seed=1, brightness=60)
    metric = FrechetVideoDistance(str(tiny_detector_path), num_features=TINY_DETECTOR_FEATURES, frame_stride=2)
    for batch in (real[:5], real[5:]):  # batching must not matter
        metric.update(videos_to_bcthw(batch), real=True)
        metric.update(videos_to_bcthw(batch), real=False)
    assert metric.compute() == pytest.approx(0.0, abs=1e-8)  # a set against itself

    metric.reset()
    metric.update(videos_to_bcthw(real), real=True)
    metric.update(videos_to_bcthw(other), real=False)
    value = metric.compute()
    # Direct computation: the detector called with the StyleGAN-V keyword arguments, stats in float64.
    detector = torch.jit.load(str(tiny_detector_path))
    with torch.no_grad():
        feats = [detector(videos_to_bcthw(v), rescale=True, resize=True, return_features=True).double().numpy()
                 for v in (real, other)]
    expected = frechet_distance(*gaussian_stats(feats[0]), *gaussian_stats(feats[1]))
    assert value == pytest.approx(expected, rel=1e-6) and value > 1e-3
    protocol = metric.protocol()
    assert protocol["num_real"] == protocol["num_fake"] == 12 and protocol["num_frames"] == 8
    assert protocol["frame_stride"] == 2 and protocol["resolution"] == {"real": ["24x24"], "fake": ["24x24"]}
    assert protocol["detector"]["kind"] == "torchscript" and len(protocol["detector"]["sha256"]) == 64
    assert protocol["detector_kwargs"] == {"rescale": True, "resize": True, "return_features": True}


def test_fvd_errors(tiny_detector_path, tmp_path):
    from fyc.eval.fvd import FrechetVideoDistance, fvd_clip, videos_to_bcthw

    with pytest.raises(FileNotFoundError, match="FVD detector file not found"):
        FrechetVideoDistance(tmp_path / "missing.pt")
    metric = FrechetVideoDistance(tiny_detector_path, num_features=TINY_DETECTOR_FEATURES)
    with pytest.raises(ValueError, match="must be uint8"):
        metric.update(torch.zeros(2, 3, 8, 16, 16), real=True)
    metric.update(videos_to_bcthw(random_videos(1)), real=True)
    with pytest.raises(ValueError, match="at least 2 real and 2 fake"):
        metric.compute()
    with pytest.raises(ValueError, match="same number of frames"):
        metric.update(videos_to_bcthw(random_videos(2, frames=4)), real=False)
    with pytest.raises(ValueError, match="num_features=400"):
        FrechetVideoDistance(tiny_detector_path).update(videos_to_bcthw(random_videos(2)), real=True)
    with pytest.raises(ValueError, match="ref.mp4: 8 frames, but the FVD protocol needs 16 frames at stride 4"):
        fvd_clip(random_videos(1)[0], 16, None, frame_stride=4, what="ref.mp4")
    clip = fvd_clip(random_videos(1, frames=12, size=24)[0], 4, 16, frame_stride=3)
    assert clip.shape == (4, 16, 16, 3) and clip.dtype == np.uint8


# ------------------------------------------------------------------------------------------------ CLIP

def _direct_clip_scores(clip_dir: Path, video: np.ndarray, prompt: str, image: np.ndarray) -> dict[str, float]:
    """CLIP scores computed by hand from the saved parts: our normalisation, projection and averaging."""
    from transformers import CLIPModel, CLIPTokenizer

    model = CLIPModel.from_pretrained(clip_dir).eval()
    tokenizer = CLIPTokenizer.from_pretrained(clip_dir)
    mean = torch.tensor([0.48145466, 0.4578275, 0.40821073]).view(1, 3, 1, 1)
    std = torch.tensor([0.26862954, 0.26130258, 0.27577711]).view(1, 3, 1, 1)

    def embed_images(x: np.ndarray) -> torch.Tensor:
        pixels = (torch.from_numpy(x).permute(0, 3, 1, 2).double() / 255 - mean) / std
        pooled = model.vision_model(pixel_values=pixels.float()).pooler_output
        e = model.visual_projection(pooled)
        return e / e.norm(dim=-1, keepdim=True)

    with torch.no_grad():
        frames = embed_images(video)
        ids = torch.tensor([tokenizer(prompt)["input_ids"]])
        t = model.text_projection(model.text_model(input_ids=ids).pooler_output)[0]
        t = t / t.norm()
        img = embed_images(image[None])[0]
    text_cos = frames @ t
    return {"tem_consis": float((frames[1:] * frames[:-1]).sum(-1).mean()),
            "text_align": float(text_cos.mean()), "text_align_clip_s": float((2.5 * text_cos.clamp(min=0)).mean()),
            "image_align": float((frames @ img).mean())}


def test_clip_metrics_match_a_direct_computation(tiny_clip_dir):
    from fyc.eval.clip_metrics import CLIPEncoder, CLIPVideoMetrics, clip_video_scores

    encoder = CLIPEncoder.from_pretrained(tiny_clip_dir, batch_size=3)  # batching over frames must not matter
    videos = random_videos(3, frames=5, size=32, seed=3)
    prompts = ["move left", "wag tail", "spin"]
    images = [v[0] for v in random_videos(3, frames=1, size=32, seed=4)]
    per_video = []
    for video, prompt, image in zip(videos, prompts, images):
        ours = clip_video_scores(encoder, video, prompt=prompt, image=image)
        direct = _direct_clip_scores(tiny_clip_dir, video, prompt, image)
        assert ours.keys() == direct.keys()
        for key in direct:
            assert ours[key] == pytest.approx(direct[key], abs=2e-5), key
        per_video.append(direct)
    # Distinct prompts give distinct scores (the text actually reaches the model).
    assert len({round(v["text_align"], 6) for v in per_video}) == 3
    metric = CLIPVideoMetrics(encoder)
    metric.update(list(videos[:2]), prompts[:2], images[:2])
    metric.update(videos[2:], prompts[2:], images[2:])
    result = metric.compute()
    for key in per_video[0]:
        assert result[key] == pytest.approx(np.mean([v[key] for v in per_video]), abs=2e-5)
    assert metric.protocol()["checkpoint"] == str(tiny_clip_dir) and metric.protocol()["image_size"] == 32


def test_clip_errors(tiny_clip_dir, tmp_path):
    from fyc.eval.clip_metrics import CLIPEncoder, clip_video_scores

    with pytest.raises(OSError, match="could not load CLIP from"):
        CLIPEncoder.from_pretrained(tmp_path / "nothing")
    encoder = CLIPEncoder.from_pretrained(tiny_clip_dir)
    with pytest.raises(ValueError, match=r"video must be uint8 \(F, H, W, 3\)"):
        clip_video_scores(encoder, np.zeros((4, 32, 32, 3), np.float32))
