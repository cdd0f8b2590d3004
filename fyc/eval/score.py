"""Score generated videos listed in a manifest: per-sample metrics, the aggregate, and the reports on disk."""
from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from fyc.data.video_io import read_video, video_info
from fyc.eval.fidelity import i1_mse
from fyc.eval.fvd import fvd_clip, videos_to_bcthw
from fyc.eval.manifest import ManifestItem
from fyc.eval.paired import PER_ITEM_SPEARMAN, SWEEP_KEY, per_unit_values
from fyc.eval.regional import (DEFAULT_CHANGE_THRESHOLD, DEFAULT_DILATE_PX, DEFAULT_MIN_MAGNITUDE, DEFAULT_REGION,
                               DIRECTION_COS_THRESHOLD, DIRECTIONS, REGION_MODES, direction_cosine,
                               regional_motion_metrics, spearman_or_reason)
from fyc.eval.motion_kind import classify_motion_kind, prompted_kind
from fyc.motion import FlowEstimator

# Paper Table 1 columns we can compute, in its order, plus our regional metrics.
TABLE_COLUMNS = (
    ("i1_mse", "I1-MSE ↓"),
    ("tem_consis", "Tem-Consis ↑"),
    ("text_align", "Text-Align ↑"),
    ("image_align", "Image-Align ↑"),
    ("fvd", "FVD ↓"),
    ("motion_leakage", "Leakage ↓"),
    ("background_stillness", "BG change ↓"),
    ("realised_strength", "Realised strength"),
    ("object_speed", "Object speed"),
    ("strength_spearman", "Strength ρ ↑"),
    ("direction_accuracy", "Direction acc. ↑"),
    ("motion_kind_accuracy", "Kind acc. ↑"),
)


def _region(item: ManifestItem, size: tuple[int, int]) -> np.ndarray:
    mask = Image.open(item.mask).convert("L")
    if mask.size != (size[1], size[0]):
        mask = mask.resize((size[1], size[0]), Image.NEAREST)
    return np.asarray(mask) > 0


def prompted_direction(prompt: str) -> str | None:
    """"move left" → "left"; prompts without exactly one translation direction → None."""
    words = prompt.lower().replace(",", " ").split()
    found = [w for w in words if w in DIRECTIONS]
    return found[0] if len(found) == 1 and "move" in words else None


# FVD clip protocol defaults (fyc.eval.score.score_items ``fvd=``); configs/eval_protocol/msrvtt_fvd.yaml states
# the paper's MSR-VTT protocol.
FVD_DEFAULTS = {"num_features": 400, "num_frames": None, "frame_stride": 1, "start": 0, "resolution": None,
                "batch_size": 8}


def _load_image(path: str) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def resolve_label_flow_backend(configured: str | None, contract: dict | None = None) -> str | None:
    """``metrics.label_flow_backend`` resolved: ``auto`` = the backend the model's strength labels were made with
    (its training contract, a dict as in ``training_contract.json``), else farneback (the toy world's on-the-fly
    labels); anything else as given."""
    if configured != "auto":
        return configured
    recorded = ((contract or {}).get("strength_label") or {}).get("flow_backend")
    return recorded or "farneback"


def score_items(items: list[ManifestItem], flow_backend: str = "dis", flow_weights: str | None = "DEFAULT",
                dilate_px: int = DEFAULT_DILATE_PX, reference_short_side: int | None = None,
                min_magnitude: float = DEFAULT_MIN_MAGNITUDE, region: str = DEFAULT_REGION,
                change_threshold: float = DEFAULT_CHANGE_THRESHOLD, label_flow_backend: str | None = "farneback",
                clip_model: str | None = None, clip_batch_size: int = 32, fvd_detector: str | None = None,
                fvd: dict | None = None, device: str = "cpu", done: dict[str, dict] | None = None,
                on_row: Callable[[dict], None] | None = None) -> tuple[list[dict], dict, dict]:
    """Per-sample metric rows and the aggregate summary. Items need ``video``, ``image`` and ``mask``.

    Args:
        flow_backend, flow_weights: :class:`fyc.motion.FlowEstimator` backend and weights of the regional metrics.
        dilate_px, reference_short_side, min_magnitude, region, change_threshold: see
            :func:`fyc.eval.regional.regional_motion_metrics`.
        label_flow_backend: flow backend the training strength labels were made with; adds ``realised_strength``
            (the label's definition on the generated video), the measured side of ``strength_spearman``. None
            leaves it out (the Spearman then uses ``object_speed``).
        clip_model: hub id or local ``save_pretrained`` folder of a ``transformers`` CLIP; adds ``tem_consis``,
            ``text_align`` (short prompt vs frames), ``text_align_clip_s`` and ``image_align`` (raw cosines,
            :mod:`fyc.eval.clip_metrics`). None skips them.
        fvd_detector: TorchScript feature extractor (StyleGAN-V ``i3d_torchscript.pt``) path or URL; adds ``fvd``
            between the generated ``video`` clips and the ``reference_video`` clips (every item needs one).
            None skips it.
        fvd: FVD clip protocol (keys of :data:`FVD_DEFAULTS`): ``num_frames`` (None = all frames of the generated
            videos), ``frame_stride`` / ``start`` for the reference clips, ``resolution`` (square side both sides
            are resized and centre-cropped to; None = the generated videos' short side), ``num_features``,
            ``batch_size``. Only the reference frames needed are decoded.
        done: rows already scored, by item id (a resumed run): kept as they are, not rescored.
        on_row: called with each new row as soon as it is scored (e.g. to append it to disk).

    An item that cannot be scored (unreadable or missing video/image/mask, an empty mask) gets a row with its
    ``error`` and takes no part in the aggregate; ``summary["num_failed"]`` counts them.

    Returns:
        ``(rows, summary, protocol)``: per-sample dicts in manifest order, the aggregate (:func:`summarize` plus
        ``fvd``), and what makes the numbers comparable (regional settings; CLIP checkpoint and scale; FVD
        detector, clip count, frames, stride, resolution) for results.json. Metric units are those of
        :mod:`fyc.eval.regional`, :mod:`fyc.eval.fidelity` (I1-MSE on [0, 255]) and :mod:`fyc.eval.clip_metrics`.
    """
    if region not in REGION_MODES:
        raise ValueError(f"metrics.region must be one of {REGION_MODES}, got {region!r}")
    fvd_cfg = dict(FVD_DEFAULTS)
    unknown = set(fvd or {}) - set(FVD_DEFAULTS)
    if unknown:
        raise ValueError(f"unknown metrics.fvd keys {sorted(unknown)}; known: {sorted(FVD_DEFAULTS)}")
    fvd_cfg.update(fvd or {})
    done = done or {}
    for item in items:
        if item.id in done:
            continue
        if item.video is None or item.mask is None:
            raise ValueError(f"{item.id}: scoring needs 'video' and 'mask' in the manifest")
        if fvd_detector and item.reference_video is None:
            raise ValueError(f"{item.id}: FVD (metrics.fvd_detector) needs 'reference_video' for every item")
    flow = FlowEstimator(flow_backend, weights=flow_weights, device=device)
    label_flow = None
    label_flow_backend = resolve_label_flow_backend(label_flow_backend)  # "auto" without a contract: farneback
    if label_flow_backend:
        label_flow = flow if label_flow_backend == flow_backend else FlowEstimator(
            label_flow_backend, weights=flow_weights, device=device)
    encoder = None
    if clip_model:
        from fyc.eval.clip_metrics import CLIPEncoder

        encoder = CLIPEncoder.from_pretrained(clip_model, device=device, batch_size=clip_batch_size)
    fvd_metric = None
    if fvd_detector:
        from fyc.eval.fvd import FrechetVideoDistance

        fvd_metric = FrechetVideoDistance(fvd_detector, num_features=fvd_cfg["num_features"],
                                          frame_stride=fvd_cfg["frame_stride"]).to(device)
        pending = {True: [], False: []}
    settings = dict(dilate_px=dilate_px, region=region, reference_short_side=reference_short_side,
                    min_magnitude=min_magnitude, change_threshold=change_threshold)
    rows = []
    for item in tqdm(items, desc="score", unit="video"):
        if item.id in done:
            rows.append(done[item.id])
            if fvd_metric is not None and not done[item.id].get("error"):
                _add_fvd_clips(fvd_metric, pending, item, read_video(item.video), fvd_cfg, flush=False)
            continue
        try:
            row, video = _score_item(item, flow, label_flow, encoder, settings)
            if fvd_metric is not None:
                _add_fvd_clips(fvd_metric, pending, item, video, fvd_cfg, flush=False)
        except Exception as err:  # decord / PIL / cv2 raise their own types; the run goes on, the row says why
            row = {"id": item.id, "prompt": item.prompt, "strength": item.strength,
                   "error": f"{type(err).__name__}: {err}"}
        row.update({k: v for k, v in item.extra.items() if isinstance(v, (int, float, str))})
        rows.append(row)
        if on_row is not None:
            on_row(row)
    summary = summarize(rows)
    protocol = {"regional": {"flow_backend": flow_backend, "flow_weights": flow_weights if flow_backend.startswith(
        "raft") else None, "label_flow_backend": label_flow_backend, **settings}}
    if encoder is not None:
        from fyc.eval.clip_metrics import clip_protocol

        protocol["clip"] = clip_protocol(encoder)
    if fvd_metric is not None:
        _add_fvd_clips(fvd_metric, pending, None, None, fvd_cfg, flush=True)
        summary["fvd"] = fvd_metric.compute()
        protocol["fvd"] = {**fvd_metric.protocol(), "reference_frame_stride": fvd_cfg["frame_stride"],
                           "reference_start": fvd_cfg["start"], "resize": "short side to resolution, centre crop",
                           "requested_resolution": fvd_cfg["resolution"],
                           "requested_num_frames": fvd_cfg["num_frames"],
                           "generated_frames": "the first num_frames frames of each generated video"}
    return rows, summary, protocol


def _score_item(item: ManifestItem, flow, label_flow, encoder, settings: dict) -> tuple[dict, np.ndarray]:
    """One item's row (raises on an unreadable file or an empty mask) and its decoded video."""
    try:
        video = read_video(item.video)
    except Exception as err:  # decord raises its own error types
        raise ValueError(f"cannot read video {item.video}: {err}") from err
    image = _load_image(item.image)
    mask = _region(item, video.shape[1:3])
    if not mask.any():
        raise ValueError(f"mask {item.mask} is empty")
    row = {"id": item.id, "prompt": item.prompt, "strength": item.strength, "i1_mse": i1_mse(video[0], image)}
    video_flow = flow(video)
    labels = None if label_flow is None else (video_flow if label_flow is flow else label_flow(video))
    row.update(regional_motion_metrics(video, mask, None, flow=video_flow, label_flow=labels, **settings))
    kind = prompted_kind(item.prompt)
    if kind is not None:
        row["kind_measured"] = classify_motion_kind(video_flow, mask, min_magnitude=settings["min_magnitude"])
        row["kind_correct"] = float(row["kind_measured"] == kind)
    direction = prompted_direction(item.prompt)
    if direction is not None:
        cosine = direction_cosine(direction, (row["direction_dx"], row["direction_dy"]))
        row["direction_cosine"] = cosine
        row["direction_correct"] = float(cosine >= DIRECTION_COS_THRESHOLD)
    if encoder is not None:
        from fyc.eval.clip_metrics import clip_video_scores

        row.update(clip_video_scores(encoder, video, prompt=item.prompt, image=image))
    return row, video


def _add_fvd_clips(metric, pending: dict, item: ManifestItem | None, video, cfg: dict, flush: bool) -> None:
    """Queue the generated (fake) and reference (real) clip of ``item``; update the metric per full batch."""
    if item is not None:
        side = cfg["resolution"] or min(video.shape[1:3])
        fake = fvd_clip(video, cfg["num_frames"], side, what=f"{item.id}: video {item.video}")
        num, stride, start = fake.shape[0], cfg["frame_stride"], cfg["start"]
        try:
            length = video_info(item.reference_video)[0]
        except Exception as err:  # decord raises its own error types
            raise ValueError(f"{item.id}: cannot read reference_video {item.reference_video}: {err}") from err
        needed = start + (num - 1) * stride + 1
        if length < needed:
            raise ValueError(f"{item.id}: reference_video {item.reference_video} has {length} frames, the FVD "
                             f"protocol needs {num} frames at stride {stride} from frame {start} (>= {needed})")
        reference = read_video(item.reference_video, list(range(start, needed, stride)))
        real = fvd_clip(reference, num, side, what=f"{item.id}: reference_video {item.reference_video}")
        pending[False].append(fake)
        pending[True].append(real)
    for real_side, clips in pending.items():
        while clips and (flush or len(clips) >= cfg["batch_size"]):
            batch, clips[:] = clips[:cfg["batch_size"]], clips[cfg["batch_size"]:]
            metric.update(videos_to_bcthw(batch), real=real_side)


MEAN_KEYS = ("i1_mse", "background_stillness", "motion_leakage", "realised_strength", "object_speed",
             "out_region_magnitude", "motion_precision", "no_motion", "tem_consis", "text_align",
             "text_align_clip_s", "image_align")


def measured_strength_key(rows: list[dict]) -> str:
    """The realised side of a strength sweep: ``realised_strength`` (the label's definition) when scored, else
    ``object_speed``."""
    return "realised_strength" if any(r.get("realised_strength") is not None for r in rows) else "object_speed"


def _mean_se(summary: dict, key: str, values: list[float]) -> None:
    """``summary[key]`` = mean, ``key_n`` = count, ``key_se`` = standard error of the mean (None when n < 2)."""
    values = np.asarray(values, dtype=np.float64)
    summary[key] = float(values.mean())
    summary[f"{key}_n"] = int(len(values))
    summary[f"{key}_se"] = float(values.std(ddof=1) / math.sqrt(len(values))) if len(values) >= 2 else None


def summarize(rows: list[dict]) -> dict:
    """Means (each with ``<key>_n`` and ``<key>_se``, the standard error over items) of the per-sample metrics,
    direction and motion-kind accuracy, and the strength Spearman over the set (``strength_spearman_n``, and
    ``strength_spearman_se`` by the Fisher-z delta method ``(1 − ρ²)·sqrt((1 + ρ²/2)/(n − 3))``; when the set
    cannot carry one, ``strength_spearman_absent`` says why). Rows that share ``sweep_of`` add the within-sweep
    Spearman averaged over sweeps (``strength_spearman_per_item`` ± SE over sweeps). Rows with an ``error`` are
    counted in ``num_failed`` and left out of everything else."""
    failed = [r for r in rows if r.get("error")]
    rows = [r for r in rows if not r.get("error")]
    summary = {"num_samples": len(rows), "num_failed": len(failed)}
    for key in MEAN_KEYS:
        values = [r[key] for r in rows if isinstance(r.get(key), (int, float)) and not math.isnan(r[key])]
        if values:
            _mean_se(summary, key, values)
    directional = [r for r in rows if "direction_correct" in r]
    if directional:
        _mean_se(summary, "direction_accuracy", [r["direction_correct"] for r in directional])
        # the mean cosine: same items, less coarse than the 45-degree hit rate when motions are sub-pixel
        _mean_se(summary, "direction_cosine", [r["direction_cosine"] for r in directional])
        summary["num_directional"] = len(directional)
    kinds = [r["kind_correct"] for r in rows if "kind_correct" in r]
    if kinds:  # fyc.eval.motion_kind: the measured kind of motion is the one the prompt names
        _mean_se(summary, "motion_kind_accuracy", kinds)
        summary["num_kind"] = len(kinds)
    measured = measured_strength_key(rows)
    with_strength = [r for r in rows if r.get("strength") is not None and r.get(measured) is not None]
    rho, reason = spearman_or_reason([r["strength"] for r in with_strength], [r[measured] for r in with_strength])
    summary["strength_spearman_n"] = len(with_strength)
    summary["strength_spearman_of"] = measured
    if rho is None:
        summary["strength_spearman_absent"] = reason
    else:
        n = len(with_strength)
        summary["strength_spearman"] = rho
        summary["strength_spearman_se"] = float((1 - rho ** 2) * math.sqrt((1 + rho ** 2 / 2) / (n - 3))) \
            if n > 3 else None
    if any(r.get(SWEEP_KEY) is not None for r in rows):
        per_sweep = list(per_unit_values(rows, PER_ITEM_SPEARMAN).values())
        if per_sweep:
            _mean_se(summary, PER_ITEM_SPEARMAN, per_sweep)
    return summary


def format_with_se(summary: dict, key: str) -> str:
    """``"0.123 ± 0.004 (n=24)"``; the ± part only when the summary has an SE for ``key``."""
    text = f"{summary[key]:.4g}"
    if summary.get(f"{key}_se") is not None:
        text += f" ± {summary[f'{key}_se']:.2g}"
    if summary.get(f"{key}_n") is not None:
        text += f" (n={summary[f'{key}_n']})"
    return text


def write_reports(out_dir: str | Path, rows: list[dict], summary: dict, protocol: dict) -> dict[str, Path]:
    """results.json, per_sample.csv, table.md (laid out like the paper's Table 1) and strength_sweep.png."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"results": out_dir / "results.json", "per_sample": out_dir / "per_sample.csv",
             "table": out_dir / "table.md"}
    paths["results"].write_text(json.dumps({"metrics": summary, "protocol": protocol}, indent=2))
    keys = sorted({k for r in rows for k in r}, key=lambda k: (k != "id", k))
    with paths["per_sample"].open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=keys)
        writer.writeheader()
        writer.writerows(rows)
    cols = [(k, name) for k, name in TABLE_COLUMNS if k in summary]
    table = ["| Method | " + " | ".join(name for _, name in cols) + " |",
             "|---|" + "---|" * len(cols),
             f"| {protocol.get('method', 'fyc')} | " + " | ".join(format_with_se(summary, k) for k, _ in cols) + " |",
             "", "Each cell: mean ± standard error over items (n = items it rests on; for Strength ρ the SE is the "
             "Fisher-z delta-method approximation)."]
    if summary.get("strength_spearman_absent"):
        table.append(f"Strength ρ absent: {summary['strength_spearman_absent']}.")
    if summary.get("num_failed"):
        table.append(f"{summary['num_failed']} item(s) failed and are left out (see the `error` column of "
                     "per_sample.csv).")
    paths["table"].write_text("\n".join(table) + "\n")
    measured = measured_strength_key(rows)
    with_strength = [r for r in rows if r.get("strength") is not None and r.get(measured) is not None]
    if with_strength:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(4, 3.2), dpi=120)
        ax.scatter([r["strength"] for r in with_strength], [r[measured] for r in with_strength], s=14)
        ax.set_xlabel("requested strength (px / frame pair)")
        ax.set_ylabel(f"{measured.replace('_', ' ')} (px / frame pair)")
        rho = summary.get("strength_spearman")
        ax.set_title("strength sweep (ρ " + ("absent" if rho is None else f"= {rho:.2f}") + ")")
        fig.tight_layout()
        paths["strength_plot"] = out_dir / "strength_sweep.png"
        fig.savefig(paths["strength_plot"])
        plt.close(fig)
    return paths
