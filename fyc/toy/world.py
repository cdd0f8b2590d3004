"""The toy world: WebVid-format videos of simple scenes whose motion is known exactly.

A scene is a static textured background (stripes, checkerboard or gradient, in two muted low-contrast colours) and
2-3 objects (disc, square, triangle) in distinct named colours, each with a smooth shading pattern attached (so
optical flow sees the inside of a moving object move, not only its outline). One or more objects move with a known
kind, direction and speed; the others stay perfectly still (bit-identical pixels in every frame). Because the
truth is known, the toy world checks the method's claims: the clicked object moves, the rest stays still, strength
controls speed, the short prompt controls the kind of motion.

Geometry (continuous image coordinates, x rightwards, y downwards, pixel (i, j) centred at (j + 0.5, i + 0.5)):
every object has a centre, a *size* = its circumradius in pixels (the disc's radius) and an angle. Motion kinds:

- ``translate``: the centre moves by ``speed`` px/frame to the left (-x), right (+x), up (-y) or down (+y).
- ``rotate`` ("spin"): the angle changes so that the vertices move ``speed`` px/frame (squares and triangles only,
  a spinning disc is invisible); direction ``clockwise`` / ``counterclockwise`` as seen on screen.
- ``grow`` / ``shrink``: the size changes by ``speed`` px/frame.
- ``shake``: horizontal sinusoidal oscillation whose mean absolute displacement per frame is ``speed``.

Speeds are drawn from ``speed_range`` and then capped so the object stays inside the frame and keeps a sensible
size (e.g. at 64 px and 16 frames grow/shrink cannot exceed ~0.77 px/frame, spin 30 degrees/frame); the truth
always records the speed actually rendered. Objects are rendered with ``supersample``x anti-aliasing (area
downsampling) so sub-pixel motion is smooth, and their swept regions (over all frames) never overlap. With
``balanced_translation`` a translating object's frame-0 position is drawn independently of its direction (room is
kept for every direction), so only the prompt tells which way it goes.

Files (see ``data/README.md``): ``<root>/<split>.csv`` (WebVid columns + ``short_prompt``), and per video
``<root>/<page_dir>/<videoid>.mp4`` (near-lossless yuv444p), ``<videoid>.json`` (truth) and ``<videoid>_mask.png``
(frame-0 union mask of the moving objects, 0/255).
"""
from __future__ import annotations

import csv
import json
import math
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import cv2
import numpy as np

from fyc.data.video_io import write_video

SHAPES = ("disc", "square", "triangle")
ROTATABLE_SHAPES = ("square", "triangle")
# Saturated named colours; backgrounds use muted colours kept at a distance from these (see _background_colours).
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "green": (40, 180, 60),
    "blue": (40, 80, 225),
    "yellow": (240, 215, 40),
    "purple": (150, 50, 200),
    "orange": (245, 140, 30),
    "white": (250, 250, 250),
    "cyan": (40, 210, 220),
}
BACKGROUNDS: dict[str, str] = {"stripes": "striped wall", "checker": "checkered floor", "gradient": "gradient sky"}
MOTION_KINDS = ("translate", "rotate", "grow", "shrink", "shake")
DIRECTIONS: dict[str, tuple[int, int]] = {"left": (-1, 0), "right": (1, 0), "up": (0, -1), "down": (0, 1)}
ROTATIONS = ("clockwise", "counterclockwise")
MIN_SIZE_PX = 2.0  # smallest circumradius: keeps objects visible at tiny resolutions (e.g. 16 px)
_PROMPTS = {"rotate": "spin", "grow": "grow", "shrink": "shrink", "shake": "shake"}
_CAPTION_GLUE = ("a", "an", "and", "on")


def _build_vocabulary() -> tuple[str, ...]:
    words = set(_CAPTION_GLUE) | set(COLOURS) | set(SHAPES) | {"move"} | set(DIRECTIONS)
    for phrase in list(BACKGROUNDS.values()) + list(_PROMPTS.values()):
        words.update(phrase.split())
    return tuple(sorted(words))


#: Every word a toy caption or short prompt can contain (lower case, no punctuation), sorted.
TOY_VOCABULARY: tuple[str, ...] = _build_vocabulary()


@dataclass
class ToyWorldConfig:
    """Knobs of the toy world. Sizes are fractions of ``resolution``; speeds are px/frame at ``resolution``."""

    resolution: int = 64
    num_frames: int = 16
    fps: int = 8
    min_objects: int = 2
    max_objects: int = 3
    min_moving: int = 1
    max_moving: int = 1
    motion_kinds: tuple[str, ...] = MOTION_KINDS
    directions: tuple[str, ...] = tuple(DIRECTIONS)  # used by translate
    speed_range: tuple[float, float] = (0.5, 3.0)
    size_range: tuple[float, float] = (0.09, 0.16)  # circumradius / resolution at frame 0
    grow_shrink_size_range: tuple[float, float] = (0.07, 0.25)  # sizes a growing/shrinking object may take
    max_spin_deg_per_frame: float = 30.0  # keeps a square's 90-degree symmetry from aliasing the rotation
    shake_period_frames: float = 6.0
    backgrounds: tuple[str, ...] = tuple(BACKGROUNDS)
    # Brightness difference (HSV value, 0-1) of the two background colours. Low contrast keeps the static texture
    # from dominating optical flow around small moving objects.
    background_contrast: tuple[float, float] = (0.06, 0.12)
    supersample: int = 4
    object_shading: float = 0.3  # depth of the smooth pattern on objects (0 = flat colour)
    margin_px: float = 1.0  # min distance of every object from the frame border
    gap_px: float = 2.0  # min distance between the swept boxes of two objects
    # Translating objects are placed (and kept apart) by the boxes they would sweep in each of ``directions``, with the
    # speed capped so that every direction fits: the frame-0 image then says nothing about the direction, which only
    # the prompt names. Off (the default), the swept box of the true direction must fit, so an object starting near
    # the right edge moves left more often than not.
    balanced_translation: bool = False

    def __post_init__(self):
        self.motion_kinds = tuple(self.motion_kinds)
        self.directions = tuple(self.directions)
        self.backgrounds = tuple(self.backgrounds)
        self.speed_range = tuple(float(s) for s in self.speed_range)
        self.size_range = tuple(float(s) for s in self.size_range)
        self.grow_shrink_size_range = tuple(float(s) for s in self.grow_shrink_size_range)
        _check_subset("motion_kinds", self.motion_kinds, MOTION_KINDS)
        _check_subset("directions", self.directions, tuple(DIRECTIONS))
        _check_subset("backgrounds", self.backgrounds, tuple(BACKGROUNDS))
        if self.resolution % 2 or self.resolution < 16:
            raise ValueError(f"resolution must be even and >= 16 (mp4), got {self.resolution}")
        if self.num_frames < 2:
            raise ValueError(f"num_frames must be >= 2, got {self.num_frames}")
        if not 1 <= self.min_objects <= self.max_objects <= len(COLOURS):
            raise ValueError(f"need 1 <= min_objects <= max_objects <= {len(COLOURS)}, "
                             f"got {self.min_objects}..{self.max_objects}")
        if not 0 <= self.min_moving <= self.max_moving or self.min_moving > self.max_objects:
            raise ValueError(f"need 0 <= min_moving <= max_moving and min_moving <= max_objects, "
                             f"got {self.min_moving}..{self.max_moving}")
        if not 0 < self.speed_range[0] <= self.speed_range[1]:
            raise ValueError(f"speed_range must be 0 < min <= max, got {self.speed_range}")


def _check_subset(name: str, values: tuple[str, ...], allowed: tuple[str, ...]) -> None:
    bad = [v for v in values if v not in allowed]
    if bad or not values:
        raise ValueError(f"{name} must be a non-empty subset of {allowed}, got {values}")


@dataclass
class ToyObject:
    """Ground truth of one object. Trajectories are per frame: ``centers`` (F, 2) as (x, y), ``sizes`` (F,)
    circumradius px, ``angles`` (F,) radians. ``mask`` is the frame-0 coverage >= 0.5, bool (H, W)."""

    name: str  # "red disc"
    colour: str
    rgb: tuple[int, int, int]
    shape: str
    moving: bool
    kind: str | None  # one of MOTION_KINDS, None when still
    direction: str | None  # left/right/up/down (translate), clockwise/counterclockwise (rotate), else None
    speed_px_per_frame: float  # 0 when still
    short_prompt: str  # "" when still
    centers: np.ndarray
    sizes: np.ndarray
    angles: np.ndarray
    mask: np.ndarray = field(repr=False)
    bbox: tuple[int, int, int, int] = (0, 0, 0, 0)  # frame-0 mask box (x0, y0, x1, y1), exclusive ends
    swept_bbox: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)  # box holding the object in all frames


@dataclass
class ToyVideo:
    """One rendered toy video: ``frames`` uint8 (F, H, W, 3), truth per object, text and the moving region."""

    seed: int
    frames: np.ndarray
    fps: float
    objects: list[ToyObject]
    background: dict
    caption: str
    short_prompt: str
    motion_mask: np.ndarray  # bool (H, W): union of the moving objects' frame-0 masks

    @property
    def moving_objects(self) -> list[ToyObject]:
        return [o for o in self.objects if o.moving]


# ----------------------------------------------------------------------------------------------- masks as RLE

def mask_to_rle(mask: np.ndarray) -> dict:
    """bool (H, W) → ``{"size": [H, W], "counts": [...]}``: run lengths over the row-major flattened mask,
    alternating False/True and starting with a (possibly empty) False run."""
    flat = np.asarray(mask, dtype=bool).ravel()
    change = np.flatnonzero(np.diff(flat.astype(np.int8))) + 1
    bounds = np.concatenate([[0], change, [flat.size]])
    counts = np.diff(bounds).tolist()
    if flat.size and flat[0]:
        counts = [0] + counts
    return {"size": list(mask.shape), "counts": counts}


def rle_to_mask(rle: dict) -> np.ndarray:
    """Inverse of :func:`mask_to_rle` → bool (H, W)."""
    values = np.arange(len(rle["counts"])) % 2 == 1
    return np.repeat(values, rle["counts"]).reshape(rle["size"])


# ---------------------------------------------------------------------------------------------- scene layout

@dataclass
class _Plan:
    shape: str
    colour: str
    kind: str | None
    direction: str | None
    speed: float
    size: float
    angle: float
    phase: float = 0.0  # shake only


def _relative_trajectory(plan: _Plan, config: ToyWorldConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Offsets of the centre from its frame-0 position (F, 2), sizes (F,), angles (F,)."""
    t = np.arange(config.num_frames, dtype=np.float64)
    offsets = np.zeros((config.num_frames, 2))
    sizes = np.full(config.num_frames, plan.size)
    angles = np.full(config.num_frames, plan.angle)
    if plan.kind == "translate":
        offsets = np.outer(t * plan.speed, DIRECTIONS[plan.direction])
    elif plan.kind == "rotate":
        sign = 1.0 if plan.direction == "clockwise" else -1.0  # y points down: +angle turns clockwise on screen
        angles = plan.angle + sign * t * plan.speed / plan.size
    elif plan.kind in ("grow", "shrink"):
        sizes = plan.size + (1.0 if plan.kind == "grow" else -1.0) * t * plan.speed
    elif plan.kind == "shake":
        offsets[:, 0] = _shake_amplitude(plan.speed, plan.phase, config) * _shake_unit(t, plan.phase, config)
    return offsets, sizes, angles


def _shake_unit(t: np.ndarray, phase: float, config: ToyWorldConfig) -> np.ndarray:
    wave = np.sin(2 * np.pi * t / config.shake_period_frames + phase)
    return wave - wave[0]  # the object starts where frame 0 shows it


def _shake_amplitude(speed: float, phase: float, config: ToyWorldConfig) -> float:
    """Amplitude whose mean |displacement| over the video's frame pairs is exactly ``speed``."""
    unit = _shake_unit(np.arange(config.num_frames, dtype=np.float64), phase, config)
    return speed / np.abs(np.diff(unit)).mean()


def _plan_motion(plan: _Plan, config: ToyWorldConfig, rng: np.random.Generator) -> _Plan:
    """Choose direction, size and (capped) speed of a moving object so that it fits in the frame."""
    res, steps = config.resolution, config.num_frames - 1
    room = res - 2 * config.margin_px
    min_size = max(0.06 * res, MIN_SIZE_PX)
    if plan.kind == "translate":
        plan.direction = str(rng.choice(config.directions))
        # Paths laid end to end along one axis: 2 when opposite directions must both fit (balanced placement).
        sides = _translation_sides(config) if config.balanced_translation else 1
        # Shrink the object first, then slow it down, until the whole path fits.
        plan.size = max(min(plan.size, (room - sides * plan.speed * steps) / 2), min_size)
        plan.speed = min(plan.speed, (room - 2 * plan.size) / (sides * steps))
    elif plan.kind == "rotate":
        plan.direction = str(rng.choice(ROTATIONS))
        plan.speed = min(plan.speed, math.radians(config.max_spin_deg_per_frame) * plan.size)
    elif plan.kind in ("grow", "shrink"):
        lo, hi = (max(f * res, MIN_SIZE_PX) for f in config.grow_shrink_size_range)
        plan.speed = min(plan.speed, (hi - lo) / steps)
        change = plan.speed * steps
        start_lo, start_hi = (lo, hi - change) if plan.kind == "grow" else (lo + change, hi)
        plan.size = float(rng.uniform(start_lo, max(start_lo, start_hi)))  # max(): float rounding at the cap
    elif plan.kind == "shake":
        plan.phase = float(rng.uniform(0, 2 * np.pi))
        max_amplitude = (room - 2 * plan.size) / 4
        amplitude = _shake_amplitude(plan.speed, plan.phase, config)
        if amplitude > max_amplitude:
            plan.speed *= max_amplitude / amplitude
    return plan


def _translation_sides(config: ToyWorldConfig) -> int:
    """Most paths a balanced translating object needs room for along one axis: 2 if ``directions`` holds an
    opposite pair (left and right, or up and down), else 1."""
    vectors = np.array([DIRECTIONS[d] for d in config.directions])
    return int(max((vectors[:, axis] < 0).any() + (vectors[:, axis] > 0).any() for axis in (0, 1)))


def _placement_boxes(plan: _Plan, config: ToyWorldConfig) -> np.ndarray:
    """Boxes (K, 4) as (x0, y0, x1, y1) relative to the frame-0 centre that placement keeps inside the frame and apart
    from the other objects' boxes: the swept box (K = 1), or for a balanced translating object the swept box of each
    of ``config.directions`` (a plus shape; its bounding box would leave little room for the other objects)."""
    if plan.kind != "translate" or not config.balanced_translation:
        return _swept_box(*_relative_trajectory(plan, config)[:2])[None]
    return np.stack([_swept_box(*_relative_trajectory(replace(plan, direction=d), config)[:2])
                     for d in config.directions])


def _swept_box(offsets: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Box (x0, y0, x1, y1) relative to the frame-0 centre that holds the object's bounding circle in all frames."""
    return np.array([(offsets[:, 0] - sizes).min(), (offsets[:, 1] - sizes).min(),
                     (offsets[:, 0] + sizes).max(), (offsets[:, 1] + sizes).max()])


def _boxes_overlap(a: np.ndarray, b: np.ndarray, gap: float) -> bool:
    return not (a[2] + gap <= b[0] or b[2] + gap <= a[0] or a[3] + gap <= b[1] or b[3] + gap <= a[1])


def _place(plans: list[_Plan], config: ToyWorldConfig, rng: np.random.Generator, tries: int = 200):
    """Frame-0 centres (N, 2) such that every placement box is inside the frame and none overlap; None on failure."""
    res, m = config.resolution, config.margin_px
    centres, boxes = [], []
    for plan in plans:
        rel = _placement_boxes(plan, config)
        lo, hi = m - rel[:, :2].min(0), res - m - rel[:, 2:].max(0)
        if np.any(lo > hi):
            return None
        for _ in range(tries):
            centre = rng.uniform(lo, hi)
            own = rel + np.tile(centre, 2)
            if not any(_boxes_overlap(a, b, config.gap_px) for a in own for other in boxes for b in other):
                centres.append(centre)
                boxes.append(own)
                break
        else:
            return None
    return np.array(centres)


def _plan_scene(config: ToyWorldConfig, rng: np.random.Generator, max_layouts: int = 50):
    res = config.resolution
    for _ in range(max_layouts):
        n_objects = int(rng.integers(config.min_objects, config.max_objects + 1))
        n_moving = int(rng.integers(min(config.min_moving, n_objects), min(config.max_moving, n_objects) + 1))
        colours = rng.choice(list(COLOURS), size=n_objects, replace=False)
        plans = []
        for k in range(n_objects):
            kind = str(rng.choice(config.motion_kinds)) if k < n_moving else None
            shape = str(rng.choice(ROTATABLE_SHAPES if kind == "rotate" else SHAPES))
            plan = _Plan(shape=shape, colour=str(colours[k]), kind=kind, direction=None,
                         speed=float(rng.uniform(*config.speed_range)) if kind else 0.0,
                         size=max(float(rng.uniform(*config.size_range)) * res, MIN_SIZE_PX),
                         angle=float(rng.uniform(0, 2 * np.pi)))
            plans.append(_plan_motion(plan, config, rng) if kind else plan)
        centres = _place(plans, config, rng)
        if centres is not None:
            return plans, centres
    raise RuntimeError(f"could not place {config.min_objects}-{config.max_objects} objects in a "
                       f"{res}x{res} frame after {max_layouts} layouts: lower max_objects, size_range or speed_range")


# ------------------------------------------------------------------------------------------------- rendering

def _background_colours(rng: np.random.Generator, object_rgbs: list, kind: str, config: ToyWorldConfig,
                        min_distance: float = 70.0, tries: int = 1000) -> np.ndarray:
    """Two muted colours (low saturation, mid value, brightness differing by ``background_contrast``) at least
    ``min_distance`` (RGB) from every shade the objects take. Gradients get 2.5x the contrast: being smooth, they
    do not disturb optical flow."""
    contrast = np.array(config.background_contrast) * (2.5 if kind == "gradient" else 1.0)
    shades = np.linspace(1 - config.object_shading, 1, 5)
    objects = (np.array(object_rgbs, dtype=np.float64)[:, None] * shades[None, :, None]).reshape(-1, 3)
    for _ in range(tries):
        hue = rng.uniform(0, 180)
        base = rng.uniform(0.3, 0.7)
        values = np.clip([base, base + rng.choice([-1, 1]) * rng.uniform(*contrast)], 0.1, 0.9)
        hsv = np.array([[[hue, rng.uniform(0, 0.3) * 255, v * 255] for v in values]])
        rgb = cv2.cvtColor(np.round(hsv).astype(np.uint8), cv2.COLOR_HSV2RGB)[0].astype(np.float64)
        if np.linalg.norm(rgb[:, None] - objects[None], axis=-1).min() >= min_distance:
            return rgb
    raise RuntimeError(f"no background colour {min_distance} away from objects {object_rgbs}")


def _render_background(kind: str, colours: np.ndarray, config: ToyWorldConfig, rng: np.random.Generator) -> np.ndarray:
    """float32 (H, W, 3) in [0, 255]: a smooth, static, compressible texture (supersampled, no pixel noise)."""
    res, ss = config.resolution, config.supersample
    coords = (np.arange(res * ss, dtype=np.float64) + 0.5) / ss
    x, y = np.meshgrid(coords, coords)
    angle = rng.uniform(0, np.pi)
    u = x * np.cos(angle) + y * np.sin(angle)
    if kind == "stripes":
        period = rng.uniform(res / 8, res / 4)
        weight = np.clip(0.5 + 0.8 * np.sin(2 * np.pi * u / period + rng.uniform(0, 2 * np.pi)), 0, 1)
    elif kind == "checker":
        cell = rng.uniform(res / 8, res / 4)
        ox, oy = rng.uniform(0, cell, size=2)
        weight = ((np.floor((x + ox) / cell) + np.floor((y + oy) / cell)) % 2).astype(np.float64)
    else:  # gradient
        weight = (u - u.min()) / max(u.max() - u.min(), 1e-6)
    image = colours[0] * (1 - weight[..., None]) + colours[1] * weight[..., None]
    return cv2.resize(image.astype(np.float32), (res, res), interpolation=cv2.INTER_AREA)


def _vertices(shape: str, centre: np.ndarray, size: float, angle: float) -> np.ndarray:
    n, offset = (4, np.pi / 4) if shape == "square" else (3, -np.pi / 2)
    a = angle + offset + 2 * np.pi * np.arange(n) / n
    return np.stack([centre[0] + size * np.cos(a), centre[1] + size * np.sin(a)], axis=1)


_SHIFT = 6  # fixed-point bits for OpenCV drawing: positions precise to 1/64 of a supersampled pixel


def _coverage(shape: str, centre: np.ndarray, size: float, angle: float, config: ToyWorldConfig) -> np.ndarray:
    """Anti-aliased coverage float32 (H, W) in [0, 1] of one object, by supersampling + area downsampling."""
    res, ss = config.resolution, config.supersample
    canvas = np.zeros((res * ss, res * ss), dtype=np.uint8)
    to_fixed = lambda p: np.round((np.asarray(p) * ss - 0.5) * (1 << _SHIFT)).astype(np.int32)  # noqa: E731
    if shape == "disc":
        cv2.circle(canvas, tuple(int(v) for v in to_fixed(centre)), int(round(size * ss * (1 << _SHIFT))), 255,
                   thickness=-1, lineType=cv2.LINE_8, shift=_SHIFT)
    else:
        cv2.fillPoly(canvas, [to_fixed(_vertices(shape, centre, size, angle))], 255, lineType=cv2.LINE_8,
                     shift=_SHIFT)
    return cv2.resize(canvas, (res, res), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0


def _shading(centre: np.ndarray, size: float, angle: float, config: ToyWorldConfig) -> np.ndarray:
    """Brightness factor float32 (H, W) in [1 - object_shading, 1]: a smooth 2-D pattern attached to the object
    (moves, turns and scales with it), so optical flow sees motion inside the object, not only at its outline."""
    res = config.resolution
    coords = np.arange(res, dtype=np.float64) + 0.5
    x, y = np.meshgrid(coords - centre[0], coords - centre[1])
    u = (x * np.cos(angle) + y * np.sin(angle)) / size
    v = (-x * np.sin(angle) + y * np.cos(angle)) / size
    pattern = (2 + np.cos(2.5 * u) + np.cos(2.5 * v)) / 4  # in [0, 1], ~1.2 periods across the object
    return (1 - config.object_shading * pattern).astype(np.float32)


def _caption(objects: list[ToyObject], background: str) -> str:
    """"a red disc move left and a blue square on a striped wall": the caption names each moving object's motion in
    its short prompt's words, as WebVid captions describe the motion the paper's short prompts are extracted from
    (a text-to-video base trained on the captions can then learn motion from text)."""
    return " and ".join(f"{_article(o.name)} {o.name}" + (f" {o.short_prompt}" if o.moving else "")
                        for o in objects) + f" on a {BACKGROUNDS[background]}"


def _article(noun_phrase: str) -> str:
    return "an" if noun_phrase[0] in "aeiou" else "a"


def _prompt(kind: str, direction: str | None) -> str:
    return f"move {direction}" if kind == "translate" else _PROMPTS[kind]


def render_toy_video(seed: int, config: ToyWorldConfig | None = None) -> ToyVideo:
    """Render the toy video of ``seed`` (deterministic: same seed and config → identical frames and truth)."""
    config = config or ToyWorldConfig()
    rng = np.random.default_rng(seed)
    plans, centres = _plan_scene(config, rng)
    bg_kind = str(rng.choice(config.backgrounds))
    bg_colours = _background_colours(rng, [COLOURS[p.colour] for p in plans], bg_kind, config)
    background = _render_background(bg_kind, bg_colours, config, rng)

    video = np.repeat(background[None], config.num_frames, axis=0)  # float32 (F, H, W, 3)
    objects = []
    for plan, centre in zip(plans, centres):
        offsets, sizes, angles = _relative_trajectory(plan, config)
        box = _swept_box(offsets, sizes) + np.tile(centre, 2)
        traj = centre[None] + offsets
        rgb = np.array(COLOURS[plan.colour], dtype=np.float32)
        states = [(centre, plan.size, plan.angle)] if plan.kind is None else list(zip(traj, sizes, angles))
        alphas = np.stack([_coverage(plan.shape, c, s, a, config) for c, s, a in states])
        paints = np.stack([_shading(c, s, a, config) for c, s, a in states])[..., None] * rgb
        # A still object uses one coverage map for all frames (broadcast over F): bit-identical pixels.
        video += alphas[..., None] * (paints - video)
        mask = alphas[0] >= 0.5
        ys, xs = np.nonzero(mask)
        objects.append(ToyObject(
            name=f"{plan.colour} {plan.shape}", colour=plan.colour, rgb=COLOURS[plan.colour], shape=plan.shape,
            moving=plan.kind is not None, kind=plan.kind, direction=plan.direction,
            speed_px_per_frame=float(plan.speed), short_prompt=_prompt(plan.kind, plan.direction) if plan.kind else "",
            centers=traj, sizes=sizes, angles=angles, mask=mask,
            bbox=(int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1) if xs.size else (0, 0, 0, 0),
            swept_bbox=tuple(float(v) for v in box)))

    frames = np.clip(np.round(video), 0, 255).astype(np.uint8)
    moving = [o for o in objects if o.moving]
    motion_mask = np.zeros(frames.shape[1:3], dtype=bool)
    for o in moving:
        motion_mask |= o.mask
    return ToyVideo(seed=seed, frames=frames, fps=float(config.fps), objects=objects,
                    background={"kind": bg_kind, "name": BACKGROUNDS[bg_kind], "rgb": bg_colours.round().tolist()},
                    caption=_caption(objects, bg_kind), short_prompt=" and ".join(o.short_prompt for o in moving),
                    motion_mask=motion_mask)


# ------------------------------------------------------------------------------------------------- writing

CSV_COLUMNS = ("videoid", "contentUrl", "duration", "page_dir", "name", "short_prompt")
VIDEOS_PER_PAGE_DIR = 1000


def toy_videoid(seed: int) -> str:
    """Video id of the toy video rendered from ``seed`` (unique as long as split seed ranges are disjoint)."""
    return f"toy{seed:08d}"


def iso_duration(seconds: float) -> str:
    """WebVid's duration style: 2.0 → ``"PT00H00M02S"`` (whole seconds, rounded)."""
    total = int(round(seconds))
    return f"PT{total // 3600:02d}H{total % 3600 // 60:02d}M{total % 60:02d}S"


def truth_to_json(video: ToyVideo, videoid: str, config: ToyWorldConfig) -> dict:
    """JSON-serialisable truth of ``video`` (the sidecar ``<videoid>.json``); masks as :func:`mask_to_rle`."""
    objects = []
    for o in video.objects:
        d = {k: v for k, v in asdict(o).items() if k not in ("mask", "centers", "sizes", "angles")}
        d.update(rgb=list(o.rgb), bbox=list(o.bbox), swept_bbox=list(o.swept_bbox),
                 click=[float(v) for v in o.centers[0]],  # the natural click point: the frame-0 centre
                 centers=o.centers.round(4).tolist(), sizes=o.sizes.round(4).tolist(),
                 angles=o.angles.round(5).tolist(), mask_rle=mask_to_rle(o.mask))
        objects.append(d)
    return {"videoid": videoid, "seed": video.seed, "resolution": config.resolution,
            "num_frames": int(video.frames.shape[0]), "fps": video.fps, "caption": video.caption,
            "short_prompt": video.short_prompt, "background": video.background,
            "motion_mask_png": f"{videoid}_mask.png", "objects": objects}


def read_toy_truth(json_path: str | Path) -> dict:
    """Load a sidecar written by :func:`write_toy_webvid`; adds ``mask`` (bool (H, W)) to every object and
    ``motion_mask`` (bool (H, W)) at the top level."""
    truth = json.loads(Path(json_path).read_text())
    size = (truth["resolution"], truth["resolution"])
    truth["motion_mask"] = np.zeros(size, dtype=bool)
    for o in truth["objects"]:
        o["mask"] = rle_to_mask(o["mask_rle"])
        if o["moving"]:
            truth["motion_mask"] |= o["mask"]
    return truth


def _write_one(root: Path, split: str, index: int, seed: int, config: ToyWorldConfig) -> dict:
    video = render_toy_video(seed, config)
    videoid, page_dir = toy_videoid(seed), f"{split}_{index // VIDEOS_PER_PAGE_DIR:03d}"
    folder = root / page_dir
    write_video(folder / f"{videoid}.mp4", video.frames, fps=video.fps, crf=0, pixel_format="yuv444p")
    (folder / f"{videoid}.json").write_text(json.dumps(truth_to_json(video, videoid, config)))
    cv2.imwrite(str(folder / f"{videoid}_mask.png"), video.motion_mask.astype(np.uint8) * 255)
    return {"videoid": videoid, "contentUrl": f"{page_dir}/{videoid}.mp4",
            "duration": iso_duration(video.frames.shape[0] / video.fps), "page_dir": page_dir,
            "name": video.caption, "short_prompt": video.short_prompt}


def write_toy_webvid(root: str | Path, split: str, num_videos: int, config: ToyWorldConfig | None = None,
                     first_seed: int = 0, num_workers: int = 1, progress: bool = True) -> Path:
    """Write ``num_videos`` toy videos (seeds ``first_seed .. first_seed + num_videos - 1``) as a WebVid split.

    Creates ``<root>/<split>.csv`` plus per-video mp4/json/png under ``<root>/<page_dir>/`` and
    ``<root>/<split>_config.json`` (the config used). ``num_workers > 1`` renders and encodes in processes.
    Returns the CSV path.
    """
    from tqdm import tqdm

    config = config or ToyWorldConfig()
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    jobs = [(root, split, k, first_seed + k, config) for k in range(num_videos)]
    bar = dict(total=num_videos, desc=f"toy {split}", unit="video", disable=not progress or num_videos < 2)
    if num_workers > 1:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(num_workers) as pool:
            rows = list(tqdm(pool.map(_write_one, *zip(*jobs), chunksize=4), **bar))
    else:
        rows = [_write_one(*job) for job in tqdm(jobs, **bar)]

    csv_path = root / f"{split}.csv"
    tmp = csv_path.with_name(f".{csv_path.name}.tmp")
    with open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    tmp.replace(csv_path)
    (root / f"{split}_config.json").write_text(json.dumps({"first_seed": first_seed, "num_videos": num_videos,
                                                           **asdict(config)}, indent=1))
    return csv_path
