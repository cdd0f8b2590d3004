"""Fréchet Video Distance with the StyleGAN-V I3D protocol, as a distributed ``torchmetrics.Metric``.

Protocol (StyleGAN-V ``src/metrics/frechet_video_distance.py``): the detector is ``i3d_torchscript.pt`` (a
numerically exact TorchScript port of the tf.hub Kinetics-400 I3D used by the original TF FVD); each batch of clips
goes in as **uint8 [0, 255] (B, 3, T, H, W)** and is called as ``detector(x, rescale=True, resize=True,
return_features=True)`` — the detector rescales to [-1, 1] and resizes to 224² itself and returns the 400-d
pre-softmax features. Feature statistics are accumulated in float64; the Fréchet distance uses scipy ``sqrtm``.

FVD is only comparable within one protocol: same detector file, clip count, frame count, frame stride and
resolution. :meth:`FrechetVideoDistance.protocol` records all of them for results files.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlparse

import numpy as np
import torch
from torchmetrics import Metric

from fyc.eval.frechet import FRECHET_METHODS, frechet_distance, gaussian_stats_from_sums

STYLEGAN_V_I3D_URL = "https://www.dropbox.com/s/ge9e5ujwgetktms/i3d_torchscript.pt?dl=1"
STYLEGAN_V_DETECTOR_KWARGS = {"rescale": True, "resize": True, "return_features": True}
I3D_NUM_FEATURES = 400


def sha256_file(path: str | os.PathLike, chunk_size: int = 1 << 20) -> str:
    """Hex sha256 of a file (identifies the exact detector weights in results files)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(chunk_size), b""):
            digest.update(chunk)
    return digest.hexdigest()


def load_detector(detector: str | os.PathLike | Callable) -> tuple[Callable, dict[str, Any]]:
    """Resolve a detector spec → ``(callable, identity dict)``.

    Args:
        detector: a TorchScript file path; an ``http(s)://`` URL (downloaded once into ``torch.hub``'s
            ``checkpoints`` cache — needs internet the first time); or any callable / ``nn.Module`` (injected).

    The identity dict names the detector for results files: ``kind``, ``path``, ``sha256``, ``url`` for files,
    ``kind="callable"`` and the class name otherwise.
    """
    if callable(detector) and not isinstance(detector, (str, os.PathLike)):
        name = type(detector).__module__ + "." + type(detector).__qualname__
        return detector, {"kind": "callable", "name": name}
    spec = str(detector)
    url = None
    if spec.startswith(("http://", "https://")):
        url = spec
        path = Path(torch.hub.get_dir()) / "checkpoints" / Path(urlparse(url).path).name
        if not path.is_file():
            path.parent.mkdir(parents=True, exist_ok=True)
            torch.hub.download_url_to_file(url, str(path), progress=True)
    else:
        path = Path(spec).expanduser()
        if not path.is_file():
            raise FileNotFoundError(
                f"FVD detector file not found: {path}. Expected StyleGAN-V's TorchScript I3D "
                f"(i3d_torchscript.pt, from {STYLEGAN_V_I3D_URL}) or another TorchScript video feature extractor.")
    module = torch.jit.load(str(path), map_location="cpu").eval()
    identity = {"kind": "torchscript", "path": str(path.resolve()), "sha256": sha256_file(path), "url": url}
    return module, identity


def videos_to_bcthw(videos) -> torch.Tensor:
    """File-boundary clips → detector layout.

    Args:
        videos: uint8 ``(B, F, H, W, 3)`` numpy/torch, or a list of uint8 ``(F, H, W, 3)`` clips of equal shape.

    Returns:
        uint8 torch tensor ``(B, 3, F, H, W)``.
    """
    if isinstance(videos, (list, tuple)):
        videos = np.stack([np.asarray(v) for v in videos])
    videos = torch.as_tensor(np.asarray(videos)) if not torch.is_tensor(videos) else videos
    if videos.ndim != 5 or videos.shape[-1] != 3:
        raise ValueError(f"videos must be (B, F, H, W, 3), got shape {tuple(videos.shape)}")
    if videos.dtype != torch.uint8:
        raise ValueError(f"videos must be uint8 in [0, 255], got {videos.dtype}")
    return videos.permute(0, 4, 1, 2, 3).contiguous()


def resize_center_crop(frames, side: int) -> np.ndarray:
    """uint8 ``(F, H, W, 3)`` → uint8 ``(F, side, side, 3)``: resize so the short side is ``side`` (area
    interpolation when shrinking, bicubic when enlarging; aspect kept), then centre-crop the long side."""
    import cv2

    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be uint8 (F, H, W, 3), got {frames.dtype} {frames.shape}")
    if side < 1:
        raise ValueError(f"resolution must be >= 1, got {side}")
    h, w = frames.shape[1:3]
    scale = side / min(h, w)
    nh, nw = max(side, int(round(h * scale))), max(side, int(round(w * scale)))
    if (nh, nw) != (h, w):
        interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
        frames = np.stack([cv2.resize(f, (nw, nh), interpolation=interp) for f in frames])
    top, left = (nh - side) // 2, (nw - side) // 2
    return np.ascontiguousarray(frames[:, top:top + side, left:left + side])


def fvd_clip(frames, num_frames: int | None = None, resolution: int | None = None, frame_stride: int = 1,
             start: int = 0, what: str = "video") -> np.ndarray:
    """Cut the FVD clip out of decoded frames: frames ``start, start + stride, ...`` (``num_frames`` of them; all
    from ``start`` when None), then :func:`resize_center_crop` to ``resolution`` (kept when None).

    Args:
        frames: uint8 ``(F, H, W, 3)``.
        what: names the clip in errors (e.g. ``"item 7 reference_video"``).

    Returns:
        uint8 ``(num_frames, resolution, resolution, 3)``. Raises ValueError when the video is too short (clips
        are never padded or looped: that would change the protocol).
    """
    frames = np.asarray(frames)
    if frame_stride < 1 or start < 0:
        raise ValueError(f"frame_stride must be >= 1 and start >= 0, got {frame_stride}, {start}")
    clip = frames[start::frame_stride]
    if num_frames is not None:
        if len(clip) < num_frames:
            raise ValueError(f"{what}: {len(frames)} frames, but the FVD protocol needs {num_frames} frames at "
                             f"stride {frame_stride} from frame {start} "
                             f"(>= {start + (num_frames - 1) * frame_stride + 1} frames)")
        clip = clip[:num_frames]
    return clip if resolution is None else resize_center_crop(clip, int(resolution))


class FrechetVideoDistance(Metric):
    """FVD between real and generated clips; states are float64 sums so it syncs across processes.

    Args:
        detector: TorchScript file path, URL, or injected callable/``nn.Module`` (see :func:`load_detector`).
        num_features: feature size the detector returns (400 for the I3D logits).
        detector_kwargs: keyword arguments of every detector call (StyleGAN-V's by default); pass ``{}`` for an
            injected module that takes only the tensor.
        frame_stride: the stride the clips were sampled with — metadata only (the metric cannot see it), written
            into :meth:`protocol`.
        method: Fréchet square-root method, ``"sqrtm"`` (StyleGAN-V arithmetic) or ``"eigen"``.
        **kwargs: ``torchmetrics.Metric`` options (``process_group``, ``dist_sync_on_step``, ...).

    ``update(videos, real)`` takes uint8 ``(B, 3, T, H, W)`` (use :func:`videos_to_bcthw` for ``(B, F, H, W, 3)``);
    every clip of both sides must have the same T. ``compute()`` returns the FVD as a Python float (squared I3D
    feature units; lower is better) and raises ValueError when either side has fewer than 2 clips.
    """

    is_differentiable = False
    higher_is_better = False
    full_state_update = False

    def __init__(self, detector: str | os.PathLike | Callable, num_features: int = I3D_NUM_FEATURES,
                 detector_kwargs: dict[str, Any] | None = None, frame_stride: int | None = None,
                 method: str = "sqrtm", **kwargs: Any):
        super().__init__(**kwargs)
        if method not in FRECHET_METHODS:
            raise ValueError(f"method must be one of {FRECHET_METHODS}, got {method!r}")
        self.detector, self.detector_identity = load_detector(detector)
        self.detector_kwargs = dict(STYLEGAN_V_DETECTOR_KWARGS if detector_kwargs is None else detector_kwargs)
        self.num_features = int(num_features)
        self.frame_stride = frame_stride
        self.method = method
        d = self.num_features
        for side in ("real", "fake"):
            self.add_state(f"{side}_sum", torch.zeros(d, dtype=torch.float64), dist_reduce_fx="sum")
            self.add_state(f"{side}_outer_sum", torch.zeros(d, d, dtype=torch.float64), dist_reduce_fx="sum")
            self.add_state(f"{side}_count", torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")
        self._clear_metadata()

    def _clear_metadata(self) -> None:
        self._num_frames: int | None = None
        self._resolutions: dict[str, set[str]] = {"real": set(), "fake": set()}
        self._computed_counts: dict[str, int] | None = None

    def reset(self) -> None:
        super().reset()
        self._clear_metadata()

    @torch.no_grad()
    def _features(self, videos: torch.Tensor) -> torch.Tensor:
        features = self.detector(videos.to(self.device), **self.detector_kwargs)
        if isinstance(features, (tuple, list)):
            features = features[0]
        features = features.reshape(videos.shape[0], -1)
        if features.shape[1] != self.num_features:
            raise ValueError(f"detector returned {features.shape[1]} features per clip, the metric was built "
                             f"with num_features={self.num_features}")
        return features.to(torch.float64)

    def update(self, videos: torch.Tensor, real: bool) -> None:
        """Add a batch of clips: uint8 ``(B, 3, T, H, W)`` in [0, 255]; ``real`` picks the side."""
        videos = torch.as_tensor(videos)
        if videos.ndim != 5 or videos.shape[1] != 3:
            raise ValueError(f"videos must be uint8 (B, 3, T, H, W), got shape {tuple(videos.shape)}; "
                             "convert (B, F, H, W, 3) clips with videos_to_bcthw()")
        if videos.dtype != torch.uint8:
            raise ValueError(f"videos must be uint8 in [0, 255] (StyleGAN-V protocol), got {videos.dtype}")
        frames = int(videos.shape[2])
        if self._num_frames is not None and frames != self._num_frames:
            raise ValueError(f"all clips must have the same number of frames: got {frames}, earlier {self._num_frames}")
        self._num_frames = frames
        side = "real" if real else "fake"
        self._resolutions[side].add(f"{videos.shape[3]}x{videos.shape[4]}")
        features = self._features(videos)
        setattr(self, f"{side}_sum", getattr(self, f"{side}_sum") + features.sum(dim=0))
        setattr(self, f"{side}_outer_sum", getattr(self, f"{side}_outer_sum") + features.T @ features)
        setattr(self, f"{side}_count", getattr(self, f"{side}_count") + features.shape[0])

    def compute(self) -> float:
        """FVD (float64 → Python float). Raises ValueError when a side has fewer than 2 clips."""
        counts = {"real": int(self.real_count), "fake": int(self.fake_count)}
        if min(counts.values()) < 2:
            raise ValueError(f"FVD needs at least 2 real and 2 fake clips (a covariance per side), got "
                             f"real={counts['real']}, fake={counts['fake']}")
        self._computed_counts = counts
        mu_real, sigma_real = gaussian_stats_from_sums(self.real_sum, self.real_outer_sum, counts["real"])
        mu_fake, sigma_fake = gaussian_stats_from_sums(self.fake_sum, self.fake_outer_sum, counts["fake"])
        return frechet_distance(mu_real, sigma_real, mu_fake, sigma_fake, method=self.method)

    def protocol(self) -> dict[str, Any]:
        """Everything that makes this FVD comparable, for results files.

        Clip counts are those seen by the last ``compute()`` (summed over all processes); before any compute,
        this process's local counts.
        """
        counts = self._computed_counts or {"real": int(self.real_count), "fake": int(self.fake_count)}
        return {
            "metric": "fvd",
            "implementation": "fyc.eval.fvd.FrechetVideoDistance (StyleGAN-V I3D protocol)",
            "detector": dict(self.detector_identity),
            "detector_kwargs": dict(self.detector_kwargs),
            "detector_input": "uint8 [0,255] (B, 3, T, H, W)",
            "num_features": self.num_features,
            "stats_dtype": "float64",
            "frechet_method": self.method,
            "num_real": counts["real"],
            "num_fake": counts["fake"],
            "num_frames": self._num_frames,
            "frame_stride": self.frame_stride,
            "resolution": {side: sorted(res) for side, res in self._resolutions.items()},
        }
