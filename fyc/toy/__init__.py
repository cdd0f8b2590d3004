"""The toy world, in one place: a generator of WebVid-format videos of simple shapes with known motion
(:mod:`fyc.toy.world`), the exact pixel autoencoder that stands in for SD's VAE (:mod:`fyc.toy.pixel_autoencoder`),
tiny SD-1.5-layout components written the way a diffusers checkpoint is (:mod:`fyc.toy.components`), the offline
word tokenizer (:mod:`fyc.toy.tokenizer`), the held-out benchmark builder (:mod:`fyc.toy.benchmark`), the
pretrained toy base's export to the SD layout (:mod:`fyc.toy.base`), the shipped default model
(:mod:`fyc.toy.default_model`), the demo's preview (:mod:`fyc.toy.preview`) and the shipped models' fixed-set
measurements (:mod:`fyc.toy.regression`).

Exports resolve lazily so that the toy-world CLI does not import diffusers.
"""
from __future__ import annotations

import importlib

_EXPORTS = {
    **{name: "fyc.toy.world" for name in ("TOY_VOCABULARY", "ToyWorldConfig", "ToyVideo", "ToyObject", "render_toy_video",
                                           "write_toy_webvid", "read_toy_truth", "mask_to_rle", "rle_to_mask")},
    "PixelAutoencoder": "fyc.toy.pixel_autoencoder",
    "ToyComponentsConfig": "fyc.toy.components",
    "build_toy_components": "fyc.toy.components",
    "build_word_tokenizer": "fyc.toy.tokenizer",
    "build_toy_benchmark": "fyc.toy.benchmark",
    "export_toy_base": "fyc.toy.base",
    "resolve_model": "fyc.toy.default_model",
    "captioned_preview": "fyc.toy.preview",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'fyc.toy' has no attribute {name!r}")


def __dir__():
    return __all__
