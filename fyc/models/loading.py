"""Build a FollowYourClickUNet from pretrained weights (hub ids or local folders), via diffusers' from_pretrained.

* ``load_fyc_unet``: SD-1.5 ``UNet2DConditionModel`` + AnimateDiff ``MotionAdapter`` -> new FollowYourClickUNet
  (start of training), e.g. ``load_fyc_unet("stable-diffusion-v1-5/stable-diffusion-v1-5",
  "guoyww/animatediff-motion-adapter-v1-5-2", motion_augmented_attention=True)``.
* ``load_fyc_unet_from_folder``: a FollowYourClickUNet saved with ``save_pretrained`` (a trained checkpoint).
"""

from __future__ import annotations

import os
from typing import Any

import torch
from diffusers import MotionAdapter, UNet2DConditionModel

from fyc.models.unet import FollowYourClickUNet


def load_fyc_unet(
    pretrained_model_name_or_path: str | os.PathLike,
    motion_adapter_name_or_path: str | os.PathLike | None,
    subfolder: str | None = "unet",
    torch_dtype: torch.dtype | None = None,
    **fyc_options: Any,
) -> FollowYourClickUNet:
    """Load an SD UNet and an AnimateDiff motion adapter and combine them into a FollowYourClickUNet.

    Args:
        pretrained_model_name_or_path: hub id or local folder of an SD pipeline (UNet under ``subfolder``), or a
            local folder that is itself a UNet (``config.json`` at its root; ``subfolder`` is then not needed).
        motion_adapter_name_or_path: hub id or local folder of a ``MotionAdapter``; None -> random motion modules.
        subfolder: UNet subfolder inside ``pretrained_model_name_or_path`` (None for a bare UNet folder).
        torch_dtype: dtype to load both in (default: as stored, usually float32).
        **fyc_options: FollowYourClickUNet options (``fyc.models.unet.FYC_OPTION_NAMES``).

    Raises:
        OSError: a path / hub id cannot be loaded (message names it).
        ValueError: the adapter does not fit the UNet (message names config values, keys or shapes).
    """
    pretrained_model_name_or_path = os.fspath(pretrained_model_name_or_path)
    if subfolder and os.path.isdir(pretrained_model_name_or_path):
        has_subfolder = os.path.isdir(os.path.join(pretrained_model_name_or_path, subfolder))
        if not has_subfolder and os.path.isfile(os.path.join(pretrained_model_name_or_path, "config.json")):
            subfolder = None  # a bare UNet folder
    try:
        unet = UNet2DConditionModel.from_pretrained(
            pretrained_model_name_or_path, subfolder=subfolder, torch_dtype=torch_dtype
        )
    except (OSError, ValueError) as error:
        raise OSError(
            f"could not load UNet2DConditionModel from {pretrained_model_name_or_path!r} (subfolder={subfolder!r}): "
            f"{error}"
        ) from error

    adapter = None
    if motion_adapter_name_or_path is not None:
        motion_adapter_name_or_path = os.fspath(motion_adapter_name_or_path)
        try:
            adapter = MotionAdapter.from_pretrained(motion_adapter_name_or_path, torch_dtype=torch_dtype)
        except (OSError, ValueError) as error:
            raise OSError(f"could not load MotionAdapter from {motion_adapter_name_or_path!r}: {error}") from error

    return FollowYourClickUNet.from_unet2d(unet, adapter, **fyc_options)


def load_fyc_unet_from_folder(
    path: str | os.PathLike,
    subfolder: str | None = None,
    torch_dtype: torch.dtype | None = None,
) -> FollowYourClickUNet:
    """Load a FollowYourClickUNet saved with ``save_pretrained`` (hub id or folder; ``subfolder`` e.g. "unet").

    Raises OSError when nothing loadable is there, ValueError when the folder holds another model class or its
    weights do not match its config (missing, unexpected or shape-mismatched keys, all named).
    """
    path = os.fspath(path)
    try:
        config = FollowYourClickUNet.load_config(path, subfolder=subfolder)
    except (OSError, ValueError) as error:
        raise OSError(f"no FollowYourClickUNet config at {path!r} (subfolder={subfolder!r}): {error}") from error
    class_name = config.get("_class_name")
    if class_name != FollowYourClickUNet.__name__:
        raise ValueError(
            f"{path!r} holds a {class_name}, not a FollowYourClickUNet; build one from SD + AnimateDiff weights "
            f"with load_fyc_unet(...)"
        )
    model, info = FollowYourClickUNet.from_pretrained(
        path, subfolder=subfolder, torch_dtype=torch_dtype, output_loading_info=True
    )
    problems = {key: info.get(key) for key in ("missing_keys", "unexpected_keys", "mismatched_keys", "error_msgs")}
    problems = {key: value for key, value in problems.items() if value}
    if problems:
        raise ValueError(f"weights in {path!r} do not match its FollowYourClickUNet config: {problems}")
    return model
