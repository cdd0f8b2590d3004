"""Optical flow between consecutive frames, through one of several backends.

Backends:
- ``farneback`` / ``dis``: OpenCV, weight-free, CPU (the fallback for machines with no RAFT weights). ``dis`` is
  the default: it reads a displacement k times larger as k times the flow (a real-texture pan played 3x faster
  reads 3x, tested), where Farneback at these settings under-reads fast motion; it also has sharper object
  boundaries and less flow on a static background. Farneback stays for the toy recipe it was tuned on.
- ``raft_small`` / ``raft_large``: torchvision RAFT. ``weights="DEFAULT"`` uses torchvision's weights API
  (downloads once into the torch hub cache), a path loads a local state-dict file, ``None`` keeps random weights
  (tests only: the flow is meaningless).

All backends take uint8 frames ``(T, H, W, 3)`` (the file-boundary convention) and return float32 flow
``(T-1, 2, H, W)`` in pixels of the input resolution, channel 0 = dx (rightwards), channel 1 = dy (downwards),
defined on the grid of the earlier frame of each pair.

Small frames: every backend works at a minimum *working resolution* and maps the flow back to input pixels.
RAFT needs >= 128 px; the OpenCV backends are tuned at >= 96 px (Farneback) / 256 px (DIS) short side, reached
by an integer cubic upscale — on 32-128 px toy scenes with 8-20 px objects moving 0.5-3 px/frame this removes most
of the spatial smoothing that made flow smear past object edges (parameters chosen by a grid search on
synthetic translating objects over striped / checkered / noise backgrounds; see tests/test_motion.py).
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
# Default working short side of the OpenCV backends (frames smaller than this are upscaled by an integer factor).
OPENCV_MIN_SIDE = {"farneback": 96, "dis": 256}
# Farneback: 3 pyramid levels cover ~12 px displacements at the working resolution; a 13 px window with the
# smoother poly_n=7 fit was the best trade-off found between underestimating object motion (smaller windows,
# more upscaling) and smearing it along background stripes (larger windows, poly_n=5). No
# OPTFLOW_FARNEBACK_GAUSSIAN: with it OpenCV 5.0.0 returns ~0.15 px of flow between two identical images.
FARNEBACK_PARAMS = dict(pyr_scale=0.5, levels=3, winsize=13, iterations=3, poly_n=7, poly_sigma=1.5, flags=0)
FARNEBACK_BORDER_PAD = 24  # working-resolution px, see _farneback
# DIS: full-resolution finest scale (the MEDIUM preset stops at half resolution), 8 px patches every 4 px,
# 5 variational refinement iterations with moderate smoothness (alpha) to fill flat object interiors.
DIS_PARAMS = dict(FinestScale=0, PatchSize=8, PatchStride=4, GradientDescentIterations=25,
                  VariationalRefinementIterations=5, VariationalRefinementAlpha=10.0,
                  VariationalRefinementDelta=5.0, VariationalRefinementGamma=10.0)


def _to_gray(frame: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)


def _make_dis() -> "cv2.DISOpticalFlow":
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    for name, value in DIS_PARAMS.items():
        getattr(dis, f"set{name}")(value)
    return dis


def _farneback(prev: np.ndarray, nxt: np.ndarray, params: dict) -> np.ndarray:
    """Farneback flow (H, W, 2) of two gray uint8 images, computed on reflect-padded copies.

    OpenCV's Farneback (5.0.0 here) returns up to ~0.5 px of flow within ~16 px of the image border even for two
    identical images; padding moves that artefact out of the cropped result (identical frames → exactly 0).
    """
    pad = FARNEBACK_BORDER_PAD
    prev = cv2.copyMakeBorder(prev, pad, pad, pad, pad, cv2.BORDER_REFLECT_101)
    nxt = cv2.copyMakeBorder(nxt, pad, pad, pad, pad, cv2.BORDER_REFLECT_101)
    flow = cv2.calcOpticalFlowFarneback(prev, nxt, None, **params)
    return flow[pad:-pad, pad:-pad]


class FlowEstimator:
    """Callable flow estimator; build once, call on many clips.

    Args:
        backend: one of ``FLOW_BACKENDS``.
        weights: RAFT only: ``"DEFAULT"`` (torchvision weights API), a local ``.pth`` state-dict path, or ``None``.
        device: torch device for RAFT.
        batch_size: frame pairs per RAFT call.
        min_side: OpenCV backends only: working short side in px (default ``OPENCV_MIN_SIDE[backend]``);
            1 disables upscaling.
    """

    def __init__(self, backend: str = "dis", weights: str | None = "DEFAULT", device: str | torch.device = "cpu",
                 batch_size: int = 8, min_side: int | None = None):
        if backend not in FLOW_BACKENDS:
            raise ValueError(f"flow backend must be one of {FLOW_BACKENDS}, got {backend!r}")
        self.backend = backend
        self.device = torch.device(device)
        self.batch_size = batch_size
        self.min_side = OPENCV_MIN_SIDE.get(backend, _RAFT_MIN_SIDE) if min_side is None else int(min_side)
        self._raft = self._build_raft(backend, weights) if backend.startswith("raft") else None
        self._dis = _make_dis() if backend == "dis" else None
        self._farneback_params = dict(FARNEBACK_PARAMS)

    def _build_raft(self, backend: str, weights: str | None) -> torch.nn.Module:
        from torchvision.models import optical_flow as of

        builder = of.raft_small if backend == "raft_small" else of.raft_large
        enum = of.Raft_Small_Weights if backend == "raft_small" else of.Raft_Large_Weights
        if weights is None:
            model = builder(weights=None)
        elif weights == "DEFAULT":
            try:
                model = builder(weights=enum.DEFAULT)
            except OSError as err:  # URLError is an OSError: no network and nothing cached
                raise RuntimeError(f"could not fetch torchvision {backend} weights ({err}); pass a local state-dict "
                                   "file as weights=..., or use the weight-free 'dis'/'farneback' backends") from err
        else:
            path = Path(weights)
            if not path.is_file():
                raise FileNotFoundError(f"RAFT weights file not found: {path} (expected a torchvision {backend} state dict)")
            model = builder(weights=None)
            model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        return model.eval().to(self.device)

    def __call__(self, frames: np.ndarray) -> torch.Tensor:
        """frames: uint8 ``(T, H, W, 3)``, T >= 2 → float32 flow ``(T-1, 2, H, W)`` in input pixels."""
        frames = np.asarray(frames)
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.shape[0] < 2:
            raise ValueError(f"frames must be (T>=2, H, W, 3) uint8, got shape {frames.shape}")
        if frames.dtype != np.uint8:
            raise ValueError(f"frames must be uint8 in [0, 255], got {frames.dtype}")
        if self._raft is not None:
            return self._raft_flow(frames)
        return self._opencv_flow(frames)

    def pairs(self, first: np.ndarray, second: np.ndarray) -> torch.Tensor:
        """Flow from ``first[k]`` to ``second[k]`` for independent pairs (e.g. the pairs of several clips batched
        into one RAFT call): uint8 ``(N, H, W, 3)`` each → float32 ``(N, 2, H, W)`` in input pixels."""
        first, second = np.asarray(first), np.asarray(second)
        if first.shape != second.shape or first.ndim != 4 or first.shape[-1] != 3 or first.shape[0] < 1:
            raise ValueError(f"pairs need two uint8 (N>=1, H, W, 3) arrays of one shape, got {first.shape} and "
                             f"{second.shape}")
        if first.dtype != np.uint8 or second.dtype != np.uint8:
            raise ValueError(f"frames must be uint8 in [0, 255], got {first.dtype} and {second.dtype}")
        if self._raft is not None:
            return self._raft_pairs(first, second)
        return torch.cat([self._opencv_flow(np.stack([a, b])) for a, b in zip(first, second)])

    def _opencv_flow(self, frames: np.ndarray) -> torch.Tensor:
        _, h, w, _ = frames.shape
        scale = max(1, int(round(self.min_side / min(h, w))))
        grays = [_to_gray(f) for f in frames]
        if scale > 1:
            grays = [cv2.resize(g, (w * scale, h * scale), interpolation=cv2.INTER_CUBIC) for g in grays]
        flows = []
        for prev, nxt in zip(grays[:-1], grays[1:]):
            if self.backend == "farneback":
                flow = _farneback(prev, nxt, self._farneback_params)
            else:
                flow = self._dis.calc(prev, nxt, None)
            if scale > 1:  # area-average back to input pixels; displacements shrink by the same factor
                flow = cv2.resize(flow, (w, h), interpolation=cv2.INTER_AREA) / scale
            flows.append(torch.from_numpy(np.ascontiguousarray(flow)).permute(2, 0, 1))
        return torch.stack(flows).float()

    def _raft_flow(self, frames: np.ndarray) -> torch.Tensor:
        return self._raft_pairs(frames[:-1], frames[1:])

    @torch.inference_mode()
    def _raft_pairs(self, first: np.ndarray, second: np.ndarray) -> torch.Tensor:
        n, h, w, _ = first.shape
        # Resize so both sides are >= 128 and divisible by 8; flow is rescaled back to input pixels.
        scale = max(1.0, _RAFT_MIN_SIDE / min(h, w))
        rh, rw = (int(round(h * scale / 8)) * 8, int(round(w * scale / 8)) * 8)

        def prepare(frames: np.ndarray) -> torch.Tensor:
            video = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).to(self.device)
            video = video.float() / 127.5 - 1.0
            if (rh, rw) != (h, w):
                video = F.interpolate(video, size=(rh, rw), mode="bilinear", align_corners=False)
            return video

        out = []
        for start in range(0, n, self.batch_size):
            stop = min(start + self.batch_size, n)
            flow = self._raft(prepare(first[start:stop]), prepare(second[start:stop]))[-1]
            out.append(flow)
        flow = torch.cat(out)
        if (rh, rw) != (h, w):
            flow = F.interpolate(flow, size=(h, w), mode="bilinear", align_corners=False)
            flow[:, 0] *= w / rw
            flow[:, 1] *= h / rh
        return flow.float().cpu()


def estimate_flow(frames: np.ndarray, backend: str = "dis", weights: str | None = "DEFAULT") -> torch.Tensor:
    """One-shot convenience wrapper around :class:`FlowEstimator` (builds the estimator every call)."""
    return FlowEstimator(backend, weights=weights)(frames)
