"""fyc: Follow-Your-Click — regional image animation from a click and a short motion prompt.

The main classes are exported lazily so that ``import fyc.data`` stays free of diffusers and torch-heavy imports.
"""
__version__ = "0.1.0"

_LAZY = {
    "FollowYourClickUNet": "fyc.models.unet",
    "PixelAutoencoder": "fyc.toy.pixel_autoencoder",
    "FollowYourClickPipeline": "fyc.pipelines.pipeline_fyc",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'fyc' has no attribute {name!r}")
