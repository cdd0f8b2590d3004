"""Figures for docs/results.md: frame strips and GIFs of toy videos, and the strength-sweep plot of an evaluation.

Inputs are what the repo's commands write: a manifest (``fyc.eval.manifest``; the toy benchmark's, or an
evaluation's ``generated.jsonl``, whose items carry both the sampled ``video`` and the true ``reference_video``) and an
evaluation's ``per_sample.csv``. Images are uint8 RGB arrays (H, W, 3); videos are (F, H, W, 3).
"""
from __future__ import annotations

import csv
import math
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from fyc.data.video_io import read_video
from fyc.eval.manifest import ManifestItem

OUTLINE_RGB = (255, 230, 0)  # the clicked region's outline
GAP = 2  # pixels between tiles


def outline(frame: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``frame`` (H, W, 3) uint8 with the border pixels of the boolean ``mask`` (H, W) painted in OUTLINE_RGB."""
    inner = mask.copy()
    inner[1:, :] &= mask[:-1, :]
    inner[:-1, :] &= mask[1:, :]
    inner[:, 1:] &= mask[:, :-1]
    inner[:, :-1] &= mask[:, 1:]
    out = frame.copy()
    out[mask & ~inner] = OUTLINE_RGB
    return out


def upscale(image: np.ndarray, factor: int) -> np.ndarray:
    """Nearest-neighbour upscaling, so toy pixels stay visible."""
    return image.repeat(factor, axis=0).repeat(factor, axis=1)


def tile_rows(rows: Sequence[Sequence[np.ndarray]], background: int = 255) -> np.ndarray:
    """Tiles (all the same shape) laid out row by row with GAP-pixel white gaps; returns (H, W, 3) uint8."""
    h, w = rows[0][0].shape[:2]
    ncols = max(len(r) for r in rows)
    grid = np.full((len(rows) * (h + GAP) - GAP, ncols * (w + GAP) - GAP, 3), background, np.uint8)
    for i, row in enumerate(rows):
        for j, tile in enumerate(row):
            grid[i * (h + GAP):i * (h + GAP) + h, j * (w + GAP):j * (w + GAP) + w] = tile
    return grid


def item_videos(item: ManifestItem, num_frames: int, size: int) -> dict[str, np.ndarray]:
    """The item's true video (``reference_video``) and, when set, its sampled ``video``: name -> (F, size, size, 3)."""
    videos = {}
    if item.reference_video:
        videos["true"] = read_video(item.reference_video, range(num_frames), size=(size, size))
    if item.video:
        videos["sampled"] = read_video(item.video, range(num_frames), size=(size, size))
    return videos


def item_mask(item: ManifestItem, size: int) -> np.ndarray | None:
    if not item.mask:
        return None
    return np.asarray(Image.open(item.mask).convert("L").resize((size, size), Image.NEAREST)) > 0


def frame_strip(items: Sequence[ManifestItem], frames: Sequence[int], size: int = 32, scale: int = 3,
                kinds: Sequence[str] = ("true",)) -> np.ndarray:
    """One row per (item, kind of video), one column per frame index; frame 0 outlines the clicked mask."""
    rows = []
    for item in items:
        videos = item_videos(item, max(frames) + 1, size)
        mask = item_mask(item, size)
        for kind in kinds:
            if kind not in videos:
                raise ValueError(f"{item.id}: no {kind!r} video (manifest fields video / reference_video)")
            tiles = []
            for f in frames:
                frame = videos[kind][f]
                if f == 0 and mask is not None:
                    frame = outline(frame, mask)
                tiles.append(upscale(frame, scale))
            rows.append(tiles)
    return tile_rows(rows)


def grid_gif(items: Sequence[ManifestItem], path: str | Path, num_frames: int = 8, size: int = 32, scale: int = 3,
             kinds: Sequence[str] = ("true",), fps: float = 4.0) -> Path:
    """An animated GIF: one tile per item (columns) and kind of video (rows), all playing together."""
    videos = [(item_videos(item, num_frames, size), item_mask(item, size)) for item in items]
    frames = []
    for f in range(num_frames):
        rows = []
        for kind in kinds:
            row = []
            for vids, mask in videos:
                frame = vids[kind][f]
                row.append(upscale(outline(frame, mask) if mask is not None else frame, scale))
            rows.append(row)
        frames.append(Image.fromarray(tile_rows(rows)))
    path = Path(path)
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=int(1000 / fps), loop=0, optimize=True)
    return path


def label_rows(image: np.ndarray, labels: Sequence[str], width: int = 110) -> np.ndarray:
    """``image`` with a white left margin holding one label per equal-height row."""
    h = image.shape[0]
    canvas = Image.new("RGB", (image.shape[1] + width, h), "white")
    canvas.paste(Image.fromarray(image), (width, 0))
    draw = ImageDraw.Draw(canvas)
    row_h = (h + GAP) / len(labels)
    for i, label in enumerate(labels):
        draw.text((4, int(i * row_h + row_h / 2 - 6)), label, fill="black")
    return np.asarray(canvas)


MEASURED_COLUMNS = ("realised_strength", "object_speed", "in_region_magnitude")


def read_per_sample(path: str | Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def sweep_groups(rows: Sequence[dict]) -> dict[str, list[tuple[float, float]]]:
    """Rows of a strength sweep (ids ``<item>@x<factor>``) grouped per item: item -> [(requested, measured)]."""
    groups: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for row in rows:
        # realised_strength: the label's unit (evaluate.py); in_region_magnitude: evaluations before it existed
        column = next((c for c in MEASURED_COLUMNS if row.get(c)), None)
        if "@x" not in row["id"] or not row.get("strength") or column is None:
            continue
        requested, measured = float(row["strength"]), float(row[column])
        if math.isfinite(measured):
            groups[row["id"].split("@x")[0]].append((requested, measured))
    return {k: sorted(v) for k, v in groups.items() if len(v) >= 2}


def strength_sweep_plot(runs: dict[str, Sequence[dict]], path: str | Path, title: str = "") -> Path:
    """Requested strength vs measured in-region flow, one line per swept item, one panel per run (name -> rows)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(runs), figsize=(3.4 * len(runs), 3.0), dpi=100, squeeze=False, sharey=True)
    for ax, (name, rows) in zip(axes[0], runs.items()):
        groups = sweep_groups(rows)
        if not groups:
            raise ValueError(f"{name}: no strength-sweep rows (ids '<item>@x<factor>') in per_sample.csv")
        for points in groups.values():
            xs, ys = zip(*points)
            ax.plot(xs, ys, "-o", ms=3, lw=1, alpha=0.7)
        ax.set_title(f"{name} ({len(groups)} items)", fontsize=9)
        ax.set_xlabel("requested strength (px / frame pair)", fontsize=8)
        ax.tick_params(labelsize=7)
    axes[0][0].set_ylabel("measured in-region flow (px / pair)", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path)
    plt.close(fig)
    return path
