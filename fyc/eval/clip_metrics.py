"""CLIP video metrics (Follow-Your-Click Table 1 / PIA conventions) through ``transformers.CLIPModel``.

All values are **raw cosine similarities** of L2-normalised CLIP projection embeddings, in [-1, 1] (no ×100 as in
torchmetrics' CLIPScore, no clipping):

- ``tem_consis``  — mean cosine between the image embeddings of consecutive frames (FYC Tem-Consis, e.g. 0.9613).
- ``text_align``  — mean over frames of cosine(text embedding of the short motion prompt, frame embedding)
  (FYC Text-Align). Raw text–image cosines of standard CLIP checkpoints are typically 0.2–0.35, so FYC's 0.7981 is
  probably not on this scale; ``text_align_clip_s`` = mean of 2.5·max(cos, 0) (Hessel et al.'s CLIP-S, w = 2.5)
  is reported beside it because it lands in that range — say which one you compare.
- ``image_align`` — mean over frames of cosine(input image embedding, frame embedding) (PIA/AnimateBench).

The checkpoint is named by a hub id (e.g. ``openai/clip-vit-large-patch14``) or a local directory written by
``save_pretrained``; torchmetrics' CLIPScore refuses local directories, hence this wrapper. Per-video values are
averaged over frames; :class:`CLIPVideoMetrics` averages per-video values over videos (each video weighs the same).
"""
from __future__ import annotations

import os
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torchmetrics import Metric

CLIP_METRIC_KEYS = ("tem_consis", "text_align", "text_align_clip_s", "image_align")
CLIP_S_WEIGHT = 2.5


def _projected(output) -> torch.Tensor:
    # transformers 5 returns an output object whose pooler_output is the projected embedding; older versions
    # returned the tensor itself.
    return output if torch.is_tensor(output) else output.pooler_output


class CLIPEncoder:
    """A CLIP model + tokenizer + image processor that return L2-normalised embeddings.

    Build with :meth:`from_pretrained`; the constructor takes already-loaded parts (for tests/injection).
    """

    def __init__(self, model, tokenizer, image_processor, device: str | torch.device = "cpu",
                 name: str | None = None, batch_size: int = 32):
        self.model = model.eval().to(device)
        self.tokenizer = tokenizer
        self.image_processor = image_processor
        self.device = torch.device(device)
        self.name = name
        self.batch_size = batch_size

    @classmethod
    def from_pretrained(cls, name_or_path: str | os.PathLike, device: str | torch.device = "cpu",
                        batch_size: int = 32) -> "CLIPEncoder":
        """Load ``CLIPModel``, ``CLIPTokenizer`` and ``CLIPImageProcessor`` from a hub id or local directory."""
        from transformers import CLIPImageProcessor, CLIPModel, CLIPTokenizer

        name = str(name_or_path)
        try:
            model = CLIPModel.from_pretrained(name)
            tokenizer = CLIPTokenizer.from_pretrained(name)
            processor = CLIPImageProcessor.from_pretrained(name)
        except OSError as err:
            raise OSError(f"could not load CLIP from {name!r}: pass a local directory written by save_pretrained "
                          f"(model + tokenizer + image processor), or a hub id with network access "
                          f"(HF_HUB_OFFLINE must be unset). Cause: {err}") from err
        return cls(model, tokenizer, processor, device=device, name=name, batch_size=batch_size)

    @torch.no_grad()
    def encode_text(self, texts: Sequence[str]) -> torch.Tensor:
        """texts: N strings → float32 ``(N, D)`` unit vectors (CPU). Truncated at the model's 77 tokens."""
        max_length = self.model.config.text_config.max_position_embeddings
        tokens = self.tokenizer(list(texts), padding=True, truncation=True, max_length=max_length,
                                return_tensors="pt").to(self.device)
        output = self.model.get_text_features(input_ids=tokens["input_ids"], attention_mask=tokens["attention_mask"])
        return F.normalize(_projected(output).float(), dim=-1).cpu()

    @torch.no_grad()
    def encode_images(self, images) -> torch.Tensor:
        """images: uint8 ``(N, H, W, 3)`` (numpy/torch) or a list of uint8 ``(H, W, 3)`` → float32 ``(N, D)`` unit vectors."""
        images = [np.asarray(image.cpu() if torch.is_tensor(image) else image) for image in images]
        images = [image if image.flags.writeable else image.copy() for image in images]  # decoded frames are read-only
        for image in images:
            if image.ndim != 3 or image.shape[-1] != 3 or image.dtype != np.uint8:
                raise ValueError(f"images must be uint8 (H, W, 3), got {image.dtype} {image.shape}")
        out = []
        for start in range(0, len(images), self.batch_size):
            pixels = self.image_processor(images=images[start:start + self.batch_size], return_tensors="pt")
            output = self.model.get_image_features(pixel_values=pixels["pixel_values"].to(self.device))
            out.append(F.normalize(_projected(output).float(), dim=-1).cpu())
        return torch.cat(out)


def _check_video(video) -> np.ndarray:
    video = np.asarray(video.cpu() if torch.is_tensor(video) else video)
    if video.ndim != 4 or video.shape[-1] != 3 or video.dtype != np.uint8:
        raise ValueError(f"video must be uint8 (F, H, W, 3), got {video.dtype} {video.shape}")
    return video


def clip_video_scores(encoder: CLIPEncoder, video, prompt: str | None = None, image=None) -> dict[str, float]:
    """All CLIP scores of one video, encoding its frames once.

    Args:
        video: uint8 ``(F, H, W, 3)``.
        prompt: short motion prompt (adds ``text_align`` and ``text_align_clip_s``).
        image: the input image, uint8 ``(H, W, 3)`` (adds ``image_align``).

    Returns:
        dict with ``tem_consis`` (when F >= 2) and the optional keys; raw cosines in [-1, 1], CLIP-S in [0, 2.5].
    """
    video = _check_video(video)
    frames = encoder.encode_images(video)  # (F, D)
    scores: dict[str, float] = {}
    if len(frames) >= 2:
        scores["tem_consis"] = (frames[1:] * frames[:-1]).sum(-1).mean().item()
    if prompt is not None:
        cos = frames @ encoder.encode_text([prompt])[0]
        scores["text_align"] = cos.mean().item()
        scores["text_align_clip_s"] = (CLIP_S_WEIGHT * cos.clamp(min=0)).mean().item()
    if image is not None:
        scores["image_align"] = (frames @ encoder.encode_images([image])[0]).mean().item()
    return scores


def temporal_consistency(encoder: CLIPEncoder, video) -> float:
    """Mean raw cosine of CLIP image embeddings of consecutive frames of uint8 ``(F>=2, H, W, 3)``."""
    if len(video) < 2:
        raise ValueError("temporal consistency needs at least 2 frames")
    return clip_video_scores(encoder, video)["tem_consis"]


def text_alignment(encoder: CLIPEncoder, video, prompt: str) -> float:
    """Mean over frames of raw cosine(CLIP text of ``prompt``, CLIP image of the frame); video uint8 ``(F, H, W, 3)``."""
    return clip_video_scores(encoder, video, prompt=prompt)["text_align"]


def image_alignment(encoder: CLIPEncoder, video, image) -> float:
    """Mean over frames of raw cosine(CLIP image of ``image`` (H, W, 3), CLIP image of the frame)."""
    return clip_video_scores(encoder, video, image=image)["image_align"]


class CLIPVideoMetrics(Metric):
    """Distributed mean of per-video CLIP scores (keys :data:`CLIP_METRIC_KEYS`, scales as in the module doc).

    Args:
        encoder: a :class:`CLIPEncoder` or a hub id / local directory to load one from.
        device: device for a CLIP model loaded here.

    ``update(videos, prompts=None, images=None)``: ``videos`` a list of uint8 ``(F, H, W, 3)`` clips (or a
    ``(B, F, H, W, 3)`` array); ``prompts`` B strings; ``images`` B uint8 ``(H, W, 3)`` input images.
    ``compute()`` → ``{key: mean over videos}`` for every key that received at least one video.
    """

    is_differentiable = False
    higher_is_better = True
    full_state_update = False

    def __init__(self, encoder: CLIPEncoder | str | os.PathLike, device: str | torch.device = "cpu", **kwargs: Any):
        super().__init__(**kwargs)
        self.encoder = encoder if isinstance(encoder, CLIPEncoder) else CLIPEncoder.from_pretrained(encoder, device)
        for key in CLIP_METRIC_KEYS:
            self.add_state(f"{key}_sum", torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
            self.add_state(f"{key}_count", torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, videos, prompts: Sequence[str] | None = None, images=None) -> None:
        n = len(videos)
        for name, values in (("prompts", prompts), ("images", images)):
            if values is not None and len(values) != n:
                raise ValueError(f"got {n} videos but {len(values)} {name}")
        for i in range(n):
            scores = clip_video_scores(self.encoder, videos[i], None if prompts is None else prompts[i],
                                       None if images is None else images[i])
            for key, value in scores.items():
                setattr(self, f"{key}_sum", getattr(self, f"{key}_sum") + value)
                setattr(self, f"{key}_count", getattr(self, f"{key}_count") + 1)

    def compute(self) -> dict[str, float]:
        return {key: (getattr(self, f"{key}_sum") / getattr(self, f"{key}_count")).item()
                for key in CLIP_METRIC_KEYS if int(getattr(self, f"{key}_count")) > 0}

    def protocol(self) -> dict[str, Any]:
        """Checkpoint and scale, for results files (:func:`clip_protocol`)."""
        return clip_protocol(self.encoder)


def clip_protocol(encoder: CLIPEncoder) -> dict[str, Any]:
    """What makes CLIP numbers comparable: checkpoint, input size, embedding size, scale and aggregation."""
    vision = encoder.model.config.vision_config
    return {"metric": "clip", "implementation": "fyc.eval.clip_metrics (transformers CLIPModel)",
            "checkpoint": encoder.name, "image_size": vision.image_size,
            "projection_dim": encoder.model.config.projection_dim, "scale": "raw cosine in [-1, 1]",
            "tem_consis": "cosine of consecutive frames", "text_align": "cosine(short prompt, frame)",
            "image_align": "cosine(input image, frame)",
            "text_align_clip_s": f"{CLIP_S_WEIGHT}*max(cos, 0) averaged over frames",
            "aggregation": "mean over frames (pairs) per video, then mean over videos"}
