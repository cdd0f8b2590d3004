"""Data: video files, frame sampling, the WebVid dataset (on-the-fly or sidecar motion labels), offline motion
annotation, short motion prompts, WebDataset shards. (The toy world's generator is :mod:`fyc.toy.world`.)

Exports resolve lazily (PEP 562) so that e.g. a data CLI does not pay for importing Lightning.
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
    "limit_opencv_threads": "fyc.data.video_io",
    "EpochLoader": "fyc.data.datamodule",
    "AnnotateConfig": "fyc.data.annotate",
    "annotate_motion": "fyc.data.annotate",
    "read_sidecar": "fyc.data.annotate",
    "MotionSidecar": "fyc.data.annotate",
    "merge_sidecar": "fyc.data.annotate",
    "RuleBasedExtractor": "fyc.data.motion_prompts",
    "LLMExtractor": "fyc.data.motion_prompts",
    "make_motion_prompts": "fyc.data.motion_prompts",
    "write_shards": "fyc.data.shards",
    "WebVidShardDataset": "fyc.data.shards",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'fyc.data' has no attribute {name!r}")


def __dir__():
    return __all__
