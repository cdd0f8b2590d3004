"""The model that the CLIs and the notebook use when none is given: the shipped toy FYC pipeline under
``assets/toy_fyc`` (fine-tuned from the pretrained toy base ``assets/toy_base``; model cards beside them)."""
from __future__ import annotations

from pathlib import Path

ASSETS = Path(__file__).resolve().parents[2] / "assets"
SHIPPED_MODEL = ASSETS / "toy_fyc"
SHIPPED_BASE = ASSETS / "toy_base"


def resolve_model(model: str | None, announce: bool = True) -> str:
    """``model`` unchanged when given; else the shipped toy pipeline folder (printing one line saying so).

    Raises FileNotFoundError naming the folder when no model is given and the shipped one is missing.
    """
    if model:
        return model
    if not (SHIPPED_MODEL / "model_index.json").is_file():
        raise FileNotFoundError(f"no --model given and the shipped toy model is missing ({SHIPPED_MODEL}/"
                                f"model_index.json); pass --model <pipeline folder or hub id>")
    if announce:
        print(f"model: {SHIPPED_MODEL} (no --model given: the shipped toy model, 32x32 toy world only)")
    return str(SHIPPED_MODEL)
