"""Named parameter groups of a FollowYourClickUNet and selection of what trains.

Groups (every parameter belongs to exactly one):

* ``motion_modules``: AnimateDiff temporal modules (``...motion_modules...``), excluding MA layers;
* ``motion_augmented_attention``: the MA cross-attention layers (``...motion_modules.<i>.ma_blocks...``);
* ``conv_in``: the input convolution (all 9 input channels);
* ``condition_embeddings``: motion-strength / frame-stride embedding MLPs;
* ``spatial``: everything else (SD-1.5 ResNets, spatial attention, time embedding, conv_out, ...).

Paper recipe: stage 1 trains ``motion_modules`` + ``conv_in`` + ``condition_embeddings``; stage 2 adds
``motion_augmented_attention``; ``spatial`` stays frozen.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from fyc.models.motion_attention import MA_PREFIX

PARAMETER_GROUPS = ("motion_modules", "motion_augmented_attention", "conv_in", "condition_embeddings", "spatial")

# Top-level module names of the scalar-condition embeddings (fyc.models.unet.FollowYourClickUNet).
_CONDITION_EMBEDDING_MODULES = ("strength_embedding", "stride_embedding")


def parameter_group_of(name: str) -> str:
    """Group of a parameter / state-dict key, e.g. ``"down_blocks.0.motion_modules.0.ma_blocks.0.attn.to_q.weight"``
    -> ``"motion_augmented_attention"``."""
    parts = name.split(".")
    if parts[0] == "conv_in":
        return "conv_in"
    if parts[0] in _CONDITION_EMBEDDING_MODULES:
        return "condition_embeddings"
    if "motion_modules" in parts:
        if any(part.startswith(MA_PREFIX) for part in parts):
            return "motion_augmented_attention"
        return "motion_modules"
    return "spatial"


def parameter_groups(unet: nn.Module, groups: Sequence[str]) -> dict[str, list[nn.Parameter]]:
    """Parameters of each requested group, e.g. for optimizer param groups with per-group learning rates.

    Raises ValueError naming any unknown group or any group with no parameters in ``unet`` (e.g.
    ``"motion_augmented_attention"`` on a model built without MA).
    """
    unknown = [group for group in groups if group not in PARAMETER_GROUPS]
    if unknown:
        raise ValueError(f"unknown parameter group(s) {unknown}; known groups: {list(PARAMETER_GROUPS)}")
    selected: dict[str, list[nn.Parameter]] = {group: [] for group in groups}
    for name, parameter in unet.named_parameters():
        group = parameter_group_of(name)
        if group in selected:
            selected[group].append(parameter)
    empty = [group for group, parameters in selected.items() if not parameters]
    if empty:
        raise ValueError(f"parameter group(s) {empty} match no parameters of this {type(unet).__name__}")
    return selected


def select_trainable_parameters(unet: nn.Module, groups: Sequence[str]) -> dict[str, int]:
    """Make exactly the parameters of ``groups`` trainable (``requires_grad=True``), freeze all others.

    Returns the number of scalar parameters (elements) per selected group. Raises ValueError like
    :func:`parameter_groups`; nothing is changed in that case.
    """
    selected = parameter_groups(unet, groups)
    chosen = {id(parameter) for parameters in selected.values() for parameter in parameters}
    for parameter in unet.parameters():
        parameter.requires_grad_(id(parameter) in chosen)
    return {group: sum(parameter.numel() for parameter in parameters) for group, parameters in selected.items()}
