"""Optical flow between consecutive frames, through one of several backends.

Backends:
- ``farneback`` / ``dis``: OpenCV, weight-free, CPU (the fallback for machines with no RAFT weights).
- ``raft_small`` / ``raft_large``: torchvision RAFT. ``weights="DEFAULT"`` uses torchvision's weights API
  (downloads once into the torch hub cache), a path loads a local state-dict file, ``None`` keeps random weights
  (tests only: the flow is meaningless).

All backends take uint8 frames ``(T, H, W, 3)`` (the file-boundary convention) and return float32 flow
``(T-1, 2, H, W)`` in pixels of the input resolution, channel 0 = dx (rightwards), channel 1 = dy (downwards).
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

FLOW_BACKENDS = ("farneback", "dis", "raft_small", "raft_large")

# RAFT refuses inputs smaller than 128 px and needs sides divisible by 8.
_RAFT_MIN_SIDE = 128


def _to_gray(frame: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)


class FlowEstimator:
    """Callable flow estimator; build once, call on many clips.

    Args:
        backend: one of ``FLOW_BACKENDS``.
        weights: RAFT only: ``"DEFAULT"`` (torchvision weights API), a local ``.pth`` state-dict path, or ``None``.
        device: torch device for RAFT.
        batch_size: frame pairs per RAFT call.
    """

    def __init__(self, backend: str = "farneback", weights: str | None = "DEFAULT", device: str | torch.device = "cpu",
                 batch_size: int = 8):
        if backend not in FLOW_BACKENDS:
            raise ValueError(f"flow backend must be one of {FLOW_BACKENDS}, got {backend!r}")
        self.backend = backend
        self.device = torch.device(device)
        self.batch_size = batch_size
        self._raft = self._build_raft(backend, weights) if backend.startswith("raft") else None
        if backend == "dis":
            self._dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)

    def _build_raft(self, backend: str, weights: str | None) -> torch.nn.Module:
        from torchvision.models import optical_flow as of

        builder = of.raft_small if backend == "raft_small" else of.raft_large
        enum = of.Raft_Small_Weights if backend == "raft_small" else of.Raft_Large_Weights
        if weights is None:
            model = builder(weights=None)
        elif weights == "DEFAULT":
            model = builder(weights=enum.DEFAULT)
        else:
            path = Path(weights)
            if not path.is_file():
                raise FileNotFoundError(f"RAFT weights file not found: {path} (expected a torchvision {backend} state dict)")
            model = builder(weights=None)
            model.load_state_dict(torch.load(path, map_location="cpu"))
        return model.eval().to(self.device)

    def __call__(self, frames: np.ndarray) -> torch.Tensor:
        """frames: uint8 ``(T, H, W, 3)``, T >= 2 → float32 flow ``(T-1, 2, H, W)`` in input pixels."""
        frames = np.asarray(frames)
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.shape[0] < 2:
            raise ValueError(f"frames must be (T>=2, H, W, 3) uint8, got shape {frames.shape}")
        if self._raft is not None:
            return self._raft_flow(frames)
        grays = [_to_gray(f) for f in frames]
        flows = []
        for prev, nxt in zip(grays[:-1], grays[1:]):
            if self.backend == "farneback":
                flow = cv2.calcOpticalFlowFarneback(prev, nxt, None, pyr_scale=0.5, levels=3, winsize=9,
                                                    iterations=3, poly_n=5, poly_sigma=1.1, flags=0)
            else:
                flow = self._dis.calc(prev, nxt, None)
            flows.append(torch.from_numpy(flow).permute(2, 0, 1))
        return torch.stack(flows).float()

    @torch.inference_mode()
    def _raft_flow(self, frames: np.ndarray) -> torch.Tensor:
        t, h, w, _ = frames.shape
        # Resize so both sides are >= 128 and divisible by 8; flow is rescaled back to input pixels.
        scale = max(1.0, _RAFT_MIN_SIDE / min(h, w))
        rh, rw = (int(round(h * scale / 8)) * 8, int(round(w * scale / 8)) * 8)
        video = torch.from_numpy(frames).permute(0, 3, 1, 2).float().to(self.device) / 127.5 - 1.0
        if (rh, rw) != (h, w):
            video = F.interpolate(video, size=(rh, rw), mode="bilinear", align_corners=False)
        out = []
        for start in range(0, t - 1, self.batch_size):
            stop = min(start + self.batch_size, t - 1)
            flow = self._raft(video[start:stop], video[start + 1:stop + 1])[-1]
            out.append(flow)
        flow = torch.cat(out)
        if (rh, rw) != (h, w):
            flow = F.interpolate(flow, size=(h, w), mode="bilinear", align_corners=False)
            flow[:, 0] *= w / rw
            flow[:, 1] *= h / rh
        return flow.float().cpu()


def estimate_flow(frames: np.ndarray, backend: str = "farneback", weights: str | None = "DEFAULT") -> torch.Tensor:
    """One-shot convenience wrapper around :class:`FlowEstimator` (builds the estimator every call)."""
    return FlowEstimator(backend, weights=weights)(frames)
