"""Evaluation manifests: one JSON object per line describing an (image, region, prompt, strength) test case.

Fields (paths relative to the manifest file's folder, or absolute):
- ``id`` (a string or an integer, read as a string; unique; a safe file name, :data:`ID_PATTERN`), ``image`` (PNG/JPG path), ``prompt`` (short motion prompt) — required;
- ``mask`` (PNG path, non-zero = region) or ``clicks`` ([[x, y], ...] pixel clicks) — one of them is required;
- ``strength`` (float, px per frame pair at the model's reference resolution) — optional;
- ``caption``, ``video`` (a generated video, needed by ``score``), ``reference_video`` — optional;
- anything else is kept in ``extra`` (e.g. the toy world's ground-truth motion kind and direction).
"""
from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

_KNOWN = ("id", "image", "mask", "clicks", "prompt", "strength", "caption", "video", "reference_video")
_PATH_FIELDS = ("image", "mask", "video", "reference_video")
# Ids name output files (``videos/<id>.mp4``): letters, digits and ``_ - . @ + =``, not starting with a dot or dash,
# at most 200 characters — nothing that could leave the output folder or mean something to a shell.
ID_PATTERN = re.compile(r"[A-Za-z0-9_@+=][A-Za-z0-9_.@+=-]{0,199}")


def normalise_id(value, where: str) -> str:
    """A manifest id as the string it will be known by; a ValueError naming ``where`` when it is not a string or
    an integer, or not a safe file name (:data:`ID_PATTERN`)."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ValueError(f"{where}: id must be a string or an integer, got {type(value).__name__} {value!r}")
    text = str(value)
    if not ID_PATTERN.fullmatch(text):
        raise ValueError(f"{where}: id {text!r} is not a safe file name (letters, digits and _ - . @ + =, not "
                         "starting with '.' or '-', at most 200 characters): it names the item's output files")
    return text


@dataclass
class ManifestItem:
    id: str
    image: str
    prompt: str
    mask: str | None = None
    clicks: list[list[float]] | None = None
    strength: float | None = None
    caption: str | None = None
    video: str | None = None
    reference_video: str | None = None
    extra: dict = field(default_factory=dict)

    def to_json(self, relative_to: Path | None = None) -> dict:
        row = {k: v for k, v in asdict(self).items() if k != "extra" and v is not None}
        if relative_to is not None:
            for key in _PATH_FIELDS:
                if key in row:
                    # Below the manifest's folder: relative (the tree moves together). Elsewhere: absolute, because
                    # load_manifest reads a relative path against the manifest's folder, not the writer's cwd.
                    absolute = Path(row[key]).resolve()
                    try:
                        row[key] = str(absolute.relative_to(relative_to.resolve()))
                    except ValueError:
                        row[key] = str(absolute)
        row.update(self.extra)
        return row


def load_manifest(path: str | Path) -> list[ManifestItem]:
    """Read and validate a JSONL manifest; errors name the file, line and field."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"manifest not found: {path}")
    items, seen = [], {}
    for lineno, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}:{lineno}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise ValueError(f"{where}: not valid JSON ({err})") from None
        for key in ("id", "image", "prompt"):
            if key not in row:
                raise ValueError(f"{where}: missing required field {key!r}")
        if "mask" not in row and "clicks" not in row:
            raise ValueError(f"{where}: needs a 'mask' path or 'clicks' [[x, y], ...]")
        row["id"] = normalise_id(row["id"], where)
        # case-folded: "A" and "a" would write one file on a case-insensitive file system
        key = row["id"].casefold()
        if key in seen:
            raise ValueError(f"{where}: duplicate id {row['id']!r} (line {seen[key]} has the same id as a file name; "
                             "ids are compared as strings, ignoring case)")
        seen[key] = lineno
        for key in _PATH_FIELDS:
            if row.get(key) is not None and not Path(row[key]).is_absolute():
                row[key] = str(path.parent / row[key])
        if row.get("strength") is not None:
            row["strength"] = float(row["strength"])
        known = {k: row[k] for k in _KNOWN if k in row}
        items.append(ManifestItem(**known, extra={k: v for k, v in row.items() if k not in _KNOWN}))
    if not items:
        raise ValueError(f"{path}: manifest is empty")
    return items


def write_manifest(path: str | Path, items: list[ManifestItem]) -> Path:
    """Write items as JSONL; paths are stored relative to the manifest's folder when they lie below it, else absolute
    (a cwd-relative path outside it would not load back)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps(item.to_json(relative_to=path.parent)) for item in items]
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text("\n".join(lines) + "\n")
    tmp.replace(path)
    return path
