"""The training contract: what an exported model was trained with, saved beside its weights
(``training_contract.json`` in the pipeline folder) and read by :class:`~fyc.pipelines.FollowYourClickPipeline`, so
that sampling conditions the model the way training did. Fields:

- ``strength_label``: how the motion-strength labels were made (``flow_backend``, ``reference_short_side`` = the
  unit, px per frame pair at that short side; ``source`` = "flow" on the fly or "sidecar"; ``region_rule``);
- ``strength_quantiles``: the strengths seen in training, ``{"0.01": .., "0.5": .., "0.99": ..}`` (the median is
  the default strength; outside [q01, q99] the pipeline warns);
- ``frame_stride``, ``fps`` (the effective fps of the training clips, native / stride: the output videos' fps),
  ``num_frames``, ``resolution``;
- ``noise_scheduler``: the training scheduler's config (the sampler is built from it);
- ``prompt_routing``: text of the spatial and motion-augmented attention in training, and the null condition used
  by classifier-free guidance (``null_motion_prompt``: the empty prompt, fed to MA in the unconditional branch).
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

CONTRACT_FILE = "training_contract.json"
CONTRACT_VERSION = 1
QUANTILES = (0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99)


@dataclass
class TrainingContract:
    strength_label: dict = field(default_factory=dict)
    strength_quantiles: dict = field(default_factory=dict)
    frame_stride: float | None = None
    fps: float | None = None
    num_frames: int | None = None
    resolution: list | None = None
    noise_scheduler: dict = field(default_factory=dict)
    prompt_routing: dict = field(default_factory=dict)
    version: int = CONTRACT_VERSION

    @property
    def median_strength(self) -> float | None:
        value = self.strength_quantiles.get("0.5")
        return None if value is None else float(value)

    @property
    def strength_range(self) -> tuple[float, float] | None:
        """(q01, q99) of the training strengths, or None when unknown."""
        low, high = self.strength_quantiles.get("0.01"), self.strength_quantiles.get("0.99")
        return None if low is None or high is None else (float(low), float(high))

    def save(self, folder: str | Path) -> Path:
        path = Path(folder) / CONTRACT_FILE
        path.write_text(json.dumps(asdict(self), indent=2, sort_keys=True) + "\n")
        return path

    @classmethod
    def load(cls, folder: str | Path) -> "TrainingContract | None":
        """The contract of a pipeline folder, None when the folder has none (exports older than the contract)."""
        path = Path(folder) / CONTRACT_FILE
        if not path.is_file():
            return None
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}: not valid JSON ({err})") from None
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


def strength_quantiles(values) -> dict[str, float]:
    """Finite training strengths → ``{"0.01": q, ...}`` over :data:`QUANTILES` ({} when there are none)."""
    import numpy as np

    values = np.asarray([v for v in values if math.isfinite(v)], dtype=np.float64)
    if values.size == 0:
        return {}
    return {str(q): float(v) for q, v in zip(QUANTILES, np.quantile(values, QUANTILES))}


def contract_from_run(run_config: dict | None, stats: dict | None, noise_scheduler_config: dict,
                      spatial_text: str, motion_text: str) -> TrainingContract:
    """Build the contract from a run's resolved config (``fyc_config``), the strengths / strides / fps seen in
    training (``stats``: lists ``motion_strength``, ``frame_stride``, ``fps``) and the training scheduler config."""
    import numpy as np

    stats = stats or {}
    data = ((run_config or {}).get("data") or {}).get("train_dataset") or {}
    labels = data.get("motion_labels", "flow")
    source = "sidecar" if labels not in ("flow", None) else labels
    label = {"source": source, "flow_backend": data.get("flow_backend"),
             "reference_short_side": data.get("reference_short_side"),
             "region_rule": "paper Eq. 2: union over pairs of |flow| > mean |flow|; latent mask by "
                            "fyc.motion.masks.pool_mask (a cell is in the region if any pixel is)"}
    sidecar = data.get("motion_sidecar") or (labels if source == "sidecar" and labels != "sidecar" else None)
    if source == "sidecar" and sidecar is None and data.get("csv_path"):
        csv = Path(data["csv_path"])
        sidecar = csv.with_name(csv.stem + ".motion.parquet")
    if sidecar is not None:
        label["sidecar"] = str(sidecar)
        try:  # the backend and resolution the labels were actually computed with
            from fyc.data.sidecar import read_sidecar_metadata

            meta = read_sidecar_metadata(sidecar)
            label.update(flow_backend=meta.get("flow_backend"), flow_short_side=meta.get("flow_short_side"),
                         sidecar_reference_short_side=meta.get("reference_short_side"))
        except (OSError, ValueError):
            pass
    strides = [float(v) for v in stats.get("frame_stride", [])]
    fps = [float(v) for v in stats.get("fps", [])]
    stride = float(np.median(strides)) if strides else (float(data["frame_stride"]) if isinstance(
        data.get("frame_stride"), (int, float)) else None)
    resolution = data.get("resolution")
    config = {k: v for k, v in dict(noise_scheduler_config).items() if not str(k).startswith("_")}
    return TrainingContract(
        strength_label=label, strength_quantiles=strength_quantiles(stats.get("motion_strength", [])),
        frame_stride=stride, fps=float(np.median(fps)) if fps else None, num_frames=data.get("num_frames"),
        resolution=[resolution, resolution] if isinstance(resolution, int) else resolution,
        noise_scheduler=json.loads(json.dumps(config, default=str)),
        prompt_routing={"spatial_text": spatial_text, "motion_text": motion_text,
                        "inference": "short prompt to both spatial and motion-augmented attention",
                        "null_prompt": "", "null_motion_prompt": ""})


def describe(contract: Any) -> str:
    """One line for logs: median strength, stride and fps."""
    if contract is None:
        return "no training contract"
    return (f"median strength {contract.median_strength}, range {contract.strength_range}, frame stride "
            f"{contract.frame_stride}, fps {contract.fps}")
