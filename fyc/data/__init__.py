"""Data: video files, frame sampling, the WebVid dataset with on-the-fly motion labels, the toy world generator.

Exports resolve lazily (PEP 562) so that e.g. the toy-world CLI does not pay for importing Lightning.
"""
from __future__ import annotations

import importlib

_EXPORTS = {
    "read_video": "fyc.data.video_io",
    "write_video": "fyc.data.video_io",
    "video_info": "fyc.data.video_io",
    "FrameSample": "fyc.data.sampling",
    "TooFewFramesError": "fyc.data.sampling",
    "sample_frame_indices": "fyc.data.sampling",
    "requested_stride": "fyc.data.sampling",
    "WebVidDataset": "fyc.data.webvid",
    "FlowMotionLabeler": "fyc.data.webvid",
    "VideoDataModule": "fyc.data.datamodule",
    "EpochSampler": "fyc.data.datamodule",
    "build_dataset": "fyc.data.datamodule",
    "TOY_VOCABULARY": "fyc.data.toy_world",
    "ToyWorldConfig": "fyc.data.toy_world",
    "ToyVideo": "fyc.data.toy_world",
    "ToyObject": "fyc.data.toy_world",
    "render_toy_video": "fyc.data.toy_world",
    "write_toy_webvid": "fyc.data.toy_world",
    "read_toy_truth": "fyc.data.toy_world",
    "mask_to_rle": "fyc.data.toy_world",
    "rle_to_mask": "fyc.data.toy_world",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'fyc.data' has no attribute {name!r}")


def __dir__():
    return __all__
