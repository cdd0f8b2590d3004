"""Benchmark protocols that users complete with their own data (nothing here downloads anything).

- **fyc30** — the paper's 30 (image, short prompt, region) triplets (Pixabay images, GPT-4 prompts; never
  released). ``data/benchmarks/fyc30/template.jsonl`` lists 30 placeholder items; :func:`fill_fyc30_manifest`
  fills it from a folder of images (+ masks) and a prompts CSV, validates it, and writes the manifest that
  ``evaluate.py eval_protocol=fyc30`` reads.
- **msrvtt_fvd** — FVD on 1024 MSR-VTT clips (paper Table 1). :func:`build_msrvtt_manifest` picks the clips
  (seeded, test split) from the official MSR-VTT videos + ``MSRVTT_data.json`` annotations and writes one manifest
  item per clip: frame ``start`` as the image, a full-frame mask (the paper does not say which region it animated
  on MSR-VTT), the clip's first caption (by ``sen_id``) as prompt and caption, and the video as ``reference_video``.

CLI::

    python -m fyc.eval.protocols fyc30 --images <dir> --prompts <csv> --out data/benchmarks/fyc30/manifest.jsonl
    python -m fyc.eval.protocols msrvtt --videos <MSRVTT/videos/all> --annotations <MSRVTT_data.json> \\
        --out data/benchmarks/msrvtt
"""
from __future__ import annotations

import argparse
import csv
import json
import random
from pathlib import Path

import numpy as np
from PIL import Image

from fyc.eval.manifest import ManifestItem, load_manifest, write_manifest

BENCHMARKS_DIR = Path(__file__).resolve().parents[2] / "data" / "benchmarks"
FYC30_TEMPLATE = BENCHMARKS_DIR / "fyc30" / "template.jsonl"
FYC30_NUM_ITEMS = 30
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")


def is_placeholder(value) -> bool:
    """Template placeholders are strings in angle brackets, e.g. ``"<short motion prompt>"``."""
    return isinstance(value, str) and value.strip().startswith("<") and value.strip().endswith(">")


def validate_benchmark_items(items: list[ManifestItem], expected_count: int | None = None,
                             need_strength: bool = True) -> None:
    """Check every item is complete and its files are usable; raise ValueError naming the item and field.

    Checks: the count; no placeholder left; ``image`` exists and decodes; ``mask`` (if given) decodes, has the
    image's size and is non-empty; ``clicks`` (if no mask) are inside the image; ``prompt`` non-empty;
    ``strength`` a positive number (when ``need_strength``).
    """
    if expected_count is not None and len(items) != expected_count:
        raise ValueError(f"the protocol needs {expected_count} items, the manifest has {len(items)}")
    for item in items:
        where = f"item {item.id!r}"
        for name in ("image", "mask", "prompt", "caption"):
            if is_placeholder(getattr(item, name)):
                raise ValueError(f"{where}: field {name!r} is still the placeholder {getattr(item, name)!r}")
        if not item.prompt or not item.prompt.strip():
            raise ValueError(f"{where}: field 'prompt' is empty")
        if not Path(item.image).is_file():
            raise ValueError(f"{where}: image file not found: {item.image}")
        try:
            with Image.open(item.image) as image:
                size = image.size  # (W, H)
        except OSError as err:
            raise ValueError(f"{where}: image {item.image} cannot be decoded ({err})") from None
        if item.mask is not None:
            if not Path(item.mask).is_file():
                raise ValueError(f"{where}: mask file not found: {item.mask}")
            mask = np.asarray(Image.open(item.mask).convert("L"))
            if mask.shape[::-1] != size:
                raise ValueError(f"{where}: mask {item.mask} is {mask.shape[1]}x{mask.shape[0]}, image is "
                                 f"{size[0]}x{size[1]}")
            if not mask.any():
                raise ValueError(f"{where}: mask {item.mask} is empty")
        elif item.clicks:
            for x, y in item.clicks:
                if not (0 <= x < size[0] and 0 <= y < size[1]):
                    raise ValueError(f"{where}: click ({x}, {y}) is outside the {size[0]}x{size[1]} image")
        else:
            raise ValueError(f"{where}: needs a 'mask' or non-empty 'clicks'")
        if need_strength and (item.strength is None or not item.strength > 0):
            raise ValueError(f"{where}: field 'strength' must be a positive number, got {item.strength!r}")


def _find_image(folder: Path, stem: str) -> Path | None:
    for suffix in IMAGE_SUFFIXES:
        if (folder / f"{stem}{suffix}").is_file():
            return folder / f"{stem}{suffix}"
    return None


def fill_fyc30_manifest(out_path: str | Path, images_dir: str | Path | None = None,
                        prompts_csv: str | Path | None = None, template: str | Path = FYC30_TEMPLATE,
                        expected_count: int = FYC30_NUM_ITEMS) -> Path:
    """Fill the 30-image template with the user's files, validate, and write the manifest.

    Args:
        out_path: the manifest to write (paths inside it are relative to its folder when they lie below it).
        images_dir: a folder with ``<id>.png|jpg|jpeg|webp`` per template id and optionally ``<id>_mask.png``
            (non-zero = region); found files replace the template's ``image`` / ``mask``.
        prompts_csv: a CSV with an ``id`` column and any of ``prompt``, ``strength``, ``caption``, ``clicks``
            (JSON ``[[x, y], ...]``), ``content``, ``style``; non-empty cells replace the template's fields.
        template: the JSONL template (default ``data/benchmarks/fyc30/template.jsonl``).
        expected_count: items the protocol needs (30).

    Returns:
        ``out_path``. Raises ValueError naming the item and field for anything missing or invalid.
    """
    items = {item.id: item for item in load_manifest(template)}
    if images_dir is not None:
        images_dir = Path(images_dir)
        if not images_dir.is_dir():
            raise FileNotFoundError(f"images folder not found: {images_dir}")
        for item_id, item in items.items():
            image = _find_image(images_dir, item_id)
            if image is not None:
                item.image = str(image)
            if (images_dir / f"{item_id}_mask.png").is_file():
                item.mask = str(images_dir / f"{item_id}_mask.png")
    if prompts_csv is not None:
        with open(prompts_csv, newline="") as handle:
            reader = csv.DictReader(handle)
            if not reader.fieldnames or "id" not in reader.fieldnames:
                raise ValueError(f"{prompts_csv}: needs an 'id' column, has {reader.fieldnames}")
            for lineno, row in enumerate(reader, start=2):
                if row["id"] not in items:
                    raise ValueError(f"{prompts_csv}:{lineno}: id {row['id']!r} is not in the template")
                item = items[row["id"]]
                if row.get("prompt"):
                    item.prompt = row["prompt"]
                if row.get("caption"):
                    item.caption = row["caption"]
                if row.get("strength"):
                    try:
                        item.strength = float(row["strength"])
                    except ValueError:
                        raise ValueError(f"{prompts_csv}:{lineno}: strength {row['strength']!r} is not a number") \
                            from None
                for key in ("content", "style"):
                    if row.get(key):
                        item.extra[key] = row[key]
                if row.get("clicks"):
                    item.clicks = json.loads(row["clicks"])
                    if is_placeholder(item.mask):
                        item.mask = None
    items = list(items.values())
    for item in items:  # unfilled optional descriptors are dropped, not written as data
        item.extra = {k: v for k, v in item.extra.items() if not is_placeholder(v)}
    validate_benchmark_items(items, expected_count)
    return write_manifest(out_path, items)


def build_msrvtt_manifest(videos_dir: str | Path, annotations: str | Path, out_dir: str | Path,
                          num_clips: int = 1024, split: str = "test", seed: int = 0, start: int = 0,
                          min_frames: int = 61) -> Path:
    """Write ``<out_dir>/manifest.jsonl`` (+ ``images/``, ``masks/``) for the MSR-VTT FVD protocol.

    Args:
        videos_dir: folder of ``<video_id>.mp4`` (MSR-VTT ``videos/all``).
        annotations: ``MSRVTT_data.json`` (``videos``: ``video_id``/``split``; ``sentences``: ``video_id``/
            ``caption``/``sen_id``).
        num_clips: clips to draw (1024, paper Table 1), without replacement, ``random.Random(seed)`` over the sorted
            ids of ``split`` that have a video file with at least ``min_frames`` frames (16 frames at stride 4 from
            frame 0 need 61).
        start: the frame used as the image (and the reference clip's first frame).
    """
    from fyc.data.video_io import read_video, video_info

    videos_dir, out_dir = Path(videos_dir), Path(out_dir)
    data = json.loads(Path(annotations).read_text())
    if "videos" not in data or "sentences" not in data:
        raise ValueError(f"{annotations}: expected MSRVTT_data.json with 'videos' and 'sentences'")
    ids = sorted(v["video_id"] for v in data["videos"] if v.get("split") == split)
    if not ids:
        raise ValueError(f"{annotations}: no videos in split {split!r}")
    captions: dict[str, tuple[int, str]] = {}
    for sentence in data["sentences"]:
        key, sen_id = sentence["video_id"], int(sentence.get("sen_id", 0))
        if key not in captions or sen_id < captions[key][0]:
            captions[key] = (sen_id, sentence["caption"].strip())
    random.Random(seed).shuffle(ids)
    (out_dir / "images").mkdir(parents=True, exist_ok=True)
    (out_dir / "masks").mkdir(parents=True, exist_ok=True)
    items, skipped = [], 0
    for video_id in ids:
        if len(items) == num_clips:
            break
        path = videos_dir / f"{video_id}.mp4"
        if not path.is_file() or video_id not in captions or video_info(path)[0] < min_frames:
            skipped += 1
            continue
        frame = read_video(path, [start])[0]
        image_path, mask_path = out_dir / "images" / f"{video_id}.png", out_dir / "masks" / f"{video_id}.png"
        Image.fromarray(frame).save(image_path)
        Image.fromarray(np.full(frame.shape[:2], 255, np.uint8)).save(mask_path)
        caption = captions[video_id][1]
        items.append(ManifestItem(id=video_id, image=str(image_path), mask=str(mask_path), prompt=caption,
                                  caption=caption, reference_video=str(path.resolve()),
                                  extra={"split": split, "seed": seed, "start": start}))
    if len(items) < num_clips:
        raise ValueError(f"only {len(items)} usable {split} clips (skipped {skipped}: missing file, caption or "
                         f"< {min_frames} frames), the protocol needs {num_clips}")
    return write_manifest(out_dir / "manifest.jsonl", items)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="protocol", required=True)
    fyc30 = sub.add_parser("fyc30", help="fill and validate the 30-image template")
    fyc30.add_argument("--images", help="folder with <id>.png|jpg and optional <id>_mask.png")
    fyc30.add_argument("--prompts", help="CSV: id, prompt, strength, caption, clicks")
    fyc30.add_argument("--template", default=str(FYC30_TEMPLATE))
    fyc30.add_argument("--out", default=str(BENCHMARKS_DIR / "fyc30" / "manifest.jsonl"))
    msrvtt = sub.add_parser("msrvtt", help="build the MSR-VTT FVD manifest")
    msrvtt.add_argument("--videos", required=True)
    msrvtt.add_argument("--annotations", required=True)
    msrvtt.add_argument("--out", default=str(BENCHMARKS_DIR / "msrvtt"))
    msrvtt.add_argument("--num-clips", type=int, default=1024)
    msrvtt.add_argument("--split", default="test")
    msrvtt.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.protocol == "fyc30":
        path = fill_fyc30_manifest(args.out, args.images, args.prompts, args.template)
    else:
        path = build_msrvtt_manifest(args.videos, args.annotations, args.out, args.num_clips, args.split, args.seed)
    print(f"manifest: {path}")


if __name__ == "__main__":
    main()
