"""fyc.motion: optical-flow accuracy on synthetic scenes with known motion, the paper's Eq. 2 label, and errors.

The scenes are rendered analytically (anti-aliased coverage, so sub-pixel motion is smooth): a static striped
background and a shaded coloured disc translating by a known velocity. The helpers are reused by the eval tests.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from fyc.motion import FLOW_BACKENDS, FlowEstimator, MotionLabel, motion_label_from_flow

OPENCV_BACKENDS = ("farneback", "dis")


def striped_background(size: int, period: float = 6.0, angle: float = 0.6, shift=(0.0, 0.0)) -> np.ndarray:
    """float32 (H, W, 3) in [0, 1]: muted diagonal stripes, optionally shifted by ``shift`` = (dx, dy) px."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
    phase = ((xx - shift[0]) * np.cos(angle) + (yy - shift[1]) * np.sin(angle)) / period
    base = 0.45 + 0.1 * np.sin(2 * np.pi * phase)
    return np.stack([base, base * 0.9 + 0.05, base * 0.8 + 0.1], axis=-1)


def disc_coverage(size: int, centre, radius: float) -> np.ndarray:
    """Anti-aliased coverage float32 (H, W) in [0, 1] of a disc (pixel (i, j) centred at (j + .5, i + .5))."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
    return np.clip(radius - np.hypot(xx - centre[0], yy - centre[1]) + 0.5, 0.0, 1.0)


def translating_disc(size: int = 64, radius: float = 8.0, velocity=(2.0, 0.0), num_frames: int = 6,
                     colour=(0.95, 0.85, 0.25)) -> tuple[np.ndarray, np.ndarray]:
    """A shaded disc moving by ``velocity`` = (dx, dy) px/frame over static stripes, centred over the clip.

    Returns uint8 frames (F, H, W, 3) and bool coverage (F, H, W) (coverage >= 0.5 per frame).
    """
    velocity = np.asarray(velocity, dtype=np.float64)
    start = size / 2 - velocity * (num_frames - 1) / 2
    background = striped_background(size)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
    frames, masks = [], []
    for t in range(num_frames):
        centre = start + velocity * t
        alpha = disc_coverage(size, centre, radius)[..., None]
        # Smooth shading attached to the disc: flow sees its inside move, not only its outline.
        shade = 0.75 + 0.25 * np.cos(2.5 * (xx - centre[0]) / radius) * np.cos(2.5 * (yy - centre[1]) / radius)
        paint = np.asarray(colour, np.float32) * shade[..., None]
        frames.append(background * (1 - alpha) + paint * alpha)
        masks.append(alpha[..., 0] >= 0.5)
    return np.clip(np.round(np.stack(frames) * 255), 0, 255).astype(np.uint8), np.stack(masks)


def dilate(mask: np.ndarray, px: int) -> np.ndarray:
    import cv2

    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * px + 1, 2 * px + 1))
    return cv2.dilate(mask.astype(np.uint8), kernel).astype(bool)


# ------------------------------------------------------------------------------------------- flow accuracy

# Measured accuracy of the tuned backends on these scenes (along-motion flow / true speed over the object's
# pixels): DIS 0.81-1.0, Farneback 0.62-0.94 (it underestimates small objects); bounds leave a small margin.
ALONG_BOUNDS = {"farneback": (0.55, 1.1), "dis": (0.75, 1.1)}
ACROSS_MAX = {"farneback": 0.3, "dis": 0.2}  # |flow component perpendicular to the motion| / speed
FAR_BACKGROUND_MAX = {"farneback": 0.2, "dis": 0.05}  # mean |flow| (px) > 3 px away from the object's path


@pytest.mark.parametrize("backend", OPENCV_BACKENDS)
@pytest.mark.parametrize("size,radius,velocity", [(32, 5.0, (1.5, 0.0)), (32, 4.0, (0.5, 0.5)), (64, 8.0, (0.0, -2.0)),
                                                  (64, 6.0, (3.0, 0.0)), (128, 10.0, (-0.8, 0.6))])
def test_opencv_flow_is_accurate_on_a_translating_object(backend, size, radius, velocity):
    frames, cover = translating_disc(size, radius, velocity)
    flow = FlowEstimator(backend)(frames)
    assert flow.shape == (len(frames) - 1, 2, size, size) and flow.dtype == torch.float32
    v = np.asarray(velocity)
    speed = np.linalg.norm(v)
    inside = flow.permute(0, 2, 3, 1).numpy()[cover[:-1]]  # flow of the object's pixels, (N, 2)
    along = (inside @ v).mean() / speed ** 2
    across = np.abs(inside @ np.array([-v[1], v[0]])).mean() / speed ** 2
    low, high = ALONG_BOUNDS[backend]
    assert low <= along <= high
    assert across < ACROSS_MAX[backend]
    far_background = torch.from_numpy(~dilate(cover.any(0), 3))
    assert flow.norm(dim=1)[:, far_background].mean() < FAR_BACKGROUND_MAX[backend]


@pytest.mark.parametrize("backend", OPENCV_BACKENDS)
def test_static_clip_has_zero_flow_and_an_empty_label(backend):
    frames, _ = translating_disc(48, 6.0, (0.0, 0.0), num_frames=4)
    flow = FlowEstimator(backend)(frames)
    assert flow.abs().max() < 1e-3
    label = motion_label_from_flow(flow)
    assert isinstance(label, MotionLabel)
    assert not label.mask.any() and label.strength == 0.0


# ------------------------------------------------------------------------------------------------ Eq. 2 label

def ground_truth_flow(cover: np.ndarray, velocity) -> torch.Tensor:
    """Exact flow (F-1, 2, H, W) of ``translating_disc``: the velocity on the object's pixels, 0 elsewhere."""
    flow = torch.zeros(len(cover) - 1, 2, *cover.shape[1:])
    moving = torch.from_numpy(cover[:-1])
    flow[:, 0][moving], flow[:, 1][moving] = float(velocity[0]), float(velocity[1])
    return flow


# Share of the Eq. 2 mask that must lie within 4 px of the object's path (Farneback smears along stripes).
NEAR_PATH_MIN = {"farneback": 0.75, "dis": 1.0}


@pytest.mark.parametrize("backend", OPENCV_BACKENDS)
def test_eq2_mask_covers_the_moving_object_and_little_else(backend):
    velocity = (1.5, 1.0)
    frames, cover = translating_disc(64, 7.0, velocity, num_frames=8)
    label = motion_label_from_flow(FlowEstimator(backend)(frames))
    mask = label.mask.numpy()
    swept, moving = cover.any(0), cover[:-1].any(0)
    assert mask.shape == swept.shape and mask.dtype == bool
    assert (mask & moving).sum() >= 0.95 * moving.sum()  # every pixel that moves
    assert (mask & dilate(swept, 4)).sum() >= NEAR_PATH_MIN[backend] * mask.sum()  # little far from the path
    assert mask.sum() <= 3.0 * swept.sum()
    # The label of the exact flow is the reference (the mask's halo dilutes the estimate a little).
    reference = motion_label_from_flow(ground_truth_flow(cover, velocity)).strength
    assert label.strength == pytest.approx(reference, rel=0.35)


def test_strength_is_the_mean_in_mask_magnitude_and_rescales_to_the_reference_side():
    flow = torch.zeros(3, 2, 40, 60)
    flow[:, 0, 10:20, 10:30] = 3.0  # 3 px/pair in a 10x20 box, nothing elsewhere
    flow[:, 1, 10:20, 10:30] = 4.0
    label = motion_label_from_flow(flow)
    assert label.mask.sum() == 200 and label.mask[10:20, 10:30].all()
    assert label.strength == pytest.approx(5.0)
    # Same motion measured at a reference short side of 320 px: 8x the 40 px short side.
    assert motion_label_from_flow(flow, reference_short_side=320).strength == pytest.approx(40.0)


def test_reference_side_makes_labels_of_two_resolutions_agree():
    small, _ = translating_disc(32, 5.0, (1.0, 0.0), num_frames=6)
    large, _ = translating_disc(64, 10.0, (2.0, 0.0), num_frames=6)  # same scene at 2x resolution
    estimator = FlowEstimator("dis")
    s_small = motion_label_from_flow(estimator(small), reference_short_side=64).strength
    s_large = motion_label_from_flow(estimator(large), reference_short_side=64).strength
    assert s_small == pytest.approx(s_large, rel=0.25)


# ------------------------------------------------------------------------------------------------------- RAFT

@pytest.mark.parametrize("backend", ["raft_small", "raft_large"])
def test_raft_contract_on_a_small_input(backend):
    """Random weights (flow values meaningless): shape, dtype and finiteness; 40x40 is upscaled internally."""
    torch.manual_seed(0)
    frames, _ = translating_disc(40, 5.0, (1.0, 0.0), num_frames=3)
    flow = FlowEstimator(backend, weights=None)(frames)
    assert flow.shape == (2, 2, 40, 40) and flow.dtype == torch.float32
    assert torch.isfinite(flow).all()


def test_raft_loads_a_local_weights_file(tmp_path):
    from torchvision.models.optical_flow import raft_small

    torch.manual_seed(0)
    path = tmp_path / "raft_small.pth"
    torch.save(raft_small(weights=None).state_dict(), path)
    frames, _ = translating_disc(40, 5.0, (1.0, 0.0), num_frames=2)
    a = FlowEstimator("raft_small", weights=str(path))(frames)
    b = FlowEstimator("raft_small", weights=str(path))(frames)
    assert torch.allclose(a, b)


# ------------------------------------------------------------------------------------------------------ errors

def test_clear_errors():
    with pytest.raises(ValueError, match="flow backend must be one of"):
        FlowEstimator("tvl1")
    with pytest.raises(FileNotFoundError, match="RAFT weights file not found: .*missing.pth"):
        FlowEstimator("raft_small", weights="/nonexistent/missing.pth")
    estimator = FlowEstimator("farneback")
    frames, _ = translating_disc(32, 5.0, (1.0, 0.0), num_frames=3)
    with pytest.raises(ValueError, match=r"\(T>=2, H, W, 3\)"):
        estimator(frames[0])  # a single image
    with pytest.raises(ValueError, match=r"\(T>=2, H, W, 3\)"):
        estimator(frames[:1])  # one frame
    with pytest.raises(ValueError, match=r"\(T>=2, H, W, 3\)"):
        estimator(np.concatenate([frames, frames[..., :1]], axis=-1))  # RGBA
    with pytest.raises(ValueError, match="uint8"):
        estimator(frames.astype(np.float32) / 255)
    with pytest.raises(ValueError, match=r"\(T-1, 2, H, W\)"):
        motion_label_from_flow(torch.zeros(3, 32, 32))
    assert set(OPENCV_BACKENDS) < set(FLOW_BACKENDS)
