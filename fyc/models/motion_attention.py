"""Motion-augmented (MA) cross-attention inside AnimateDiff motion modules.

Follow-Your-Click inserts "a new cross-attention layer in each motion module block" whose queries are the
temporal tokens and whose keys/values are the text-encoder tokens of the short motion prompt ("wag tail").
The paper gives no further detail and the official code never shipped it, so this is our design:

* placement: after every ``BasicTransformerBlock`` of an ``AnimateDiffTransformer3D`` (i.e. after the two
  temporal self-attentions and the feed-forward), before the module's ``proj_out``;
* sub-layer: ``LayerNorm -> Attention(Q = temporal tokens, K/V = prompt tokens) -> zero-init to_out -> +residual``,
  so a fresh MA layer is an exact no-op and pretrained AnimateDiff behaviour is kept at the start of training;
* memory: the sub-layer is recomputed in backward by default (``ma_checkpointing``), so it keeps only its input;
* batching trick: cross-attention has no query-query interaction, so the per-pixel temporal sequences
  ``(B*h*w, F, C)`` are regrouped as ``(B*G, h*w*F/G, C)`` and attend to the prompt tokens repeated only G times,
  instead of ``h*w`` times. G (``query_group_size``: ~1024 queries per group) is not 1 because flash-style
  attention backward parallelises over (batch, head, key block), and 77 keys are one key block: with G = 1 a
  512x512x16 sample gives 8 work items to a 132-SM GPU. The grouping's measured gain: docs/results.md
  (``benchmarks/benchmark_model.py --ma-query-group-size``).

diffusers calls motion modules as ``motion_module(hidden_states, num_frames=...)`` without text, so the prompt
embeddings reach the modules through a small shared :class:`MotionPromptContext` that the UNet fills at the
start of each forward (and deliberately does not clear afterwards, so gradient-checkpoint recomputation during
backward still sees the same prompt).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import torch
from diffusers.models.attention_processor import Attention
from diffusers.models.unets.unet_motion_model import AnimateDiffTransformer3D
from torch import nn
from torch.utils.checkpoint import checkpoint

# Parameter-name prefix of everything this file adds; fyc.models.trainable relies on it.
MA_PREFIX = "ma_"


@dataclass
class MotionPromptContext:
    """Per-forward state shared by the UNet and its motion-augmented motion modules.

    ``motion_prompt_embeds``: (B, L, D) text-encoder tokens of the short motion prompt, or None (MA skipped).
    """

    motion_prompt_embeds: torch.Tensor | None = None


class MotionAugmentedCrossAttention(nn.Module):
    """``LayerNorm -> cross-attention to prompt tokens -> zero-init output projection -> residual``.

    Args:
        dim: channel width C of the temporal tokens.
        cross_attention_dim: width D of the prompt tokens (768 for CLIP ViT-L/14).
        num_attention_heads: heads; must divide ``dim``.
        zero_init: start the output projection at zero (an exact no-op until trained, for adding MA to pretrained
            motion modules); False keeps the default Linear init (the prompt reaches the output from step 0).
    """

    def __init__(self, dim: int, cross_attention_dim: int, num_attention_heads: int = 8, zero_init: bool = True):
        super().__init__()
        if dim % num_attention_heads != 0:
            raise ValueError(f"ma_num_attention_heads={num_attention_heads} does not divide channel width {dim}")
        self.norm = nn.LayerNorm(dim)
        # diffusers' Attention picks AttnProcessor2_0 (torch SDPA) by default and is reached by the UNet's
        # set_attn_processor / attn_processors like every other attention layer.
        self.attn = Attention(
            query_dim=dim,
            cross_attention_dim=cross_attention_dim,
            heads=num_attention_heads,
            dim_head=dim // num_attention_heads,
            bias=False,
            out_bias=True,
        )
        if zero_init:
            nn.init.zeros_(self.attn.to_out[0].weight)
            nn.init.zeros_(self.attn.to_out[0].bias)
        # Queries per attention group (see the module docstring); a runtime knob, not saved. 0 = one group.
        self.query_group_size = 1024

    def forward(self, hidden_states: torch.Tensor, prompt_embeds: torch.Tensor) -> torch.Tensor:
        """hidden_states: (B*h*w, F, C) temporal tokens, batch-major; prompt_embeds: (B, L, D).

        Returns (B*h*w, F, C): hidden_states plus the attended prompt information.
        """
        tokens, num_frames, channels = hidden_states.shape
        batch_size = prompt_embeds.shape[0]
        if tokens % batch_size != 0:
            raise ValueError(
                f"motion_prompt_embeds batch {batch_size} does not divide the {tokens} temporal sequences"
            )
        groups = num_query_groups(tokens // batch_size, num_frames, self.query_group_size)
        # (B*h*w, F, C) -> (B*G, h*w*F/G, C): a view, because the batch index is outermost.
        queries = hidden_states.reshape(batch_size * groups, (tokens // (batch_size * groups)) * num_frames, channels)
        prompt_embeds = prompt_embeds.to(hidden_states.dtype)
        if groups > 1:
            prompt_embeds = prompt_embeds.repeat_interleave(groups, dim=0)
        attended = self.attn(self.norm(queries), encoder_hidden_states=prompt_embeds)
        return hidden_states + attended.reshape(tokens, num_frames, channels)


@functools.lru_cache(maxsize=256)
def num_query_groups(sequences: int, num_frames: int, group_size: int) -> int:
    """Groups G per sample for ``sequences`` temporal sequences of ``num_frames``: the largest divisor of
    ``sequences`` with at least ``group_size`` queries (sequences/G * num_frames) per group; 1 if group_size <= 0."""
    if group_size <= 0:
        return 1
    upper = max(1, (sequences * num_frames) // group_size)
    return next(g for g in range(min(upper, sequences), 0, -1) if sequences % g == 0)


class MotionAugmentedTransformer3D(AnimateDiffTransformer3D):
    """``AnimateDiffTransformer3D`` with one MA cross-attention sub-layer after each transformer block.

    All parameters of the parent keep their names (pretrained AnimateDiff adapters load unchanged); the new ones
    live under ``ma_blocks.<i>``. The prompt comes from ``self.ma_context.motion_prompt_embeds``; when it is None
    the module computes exactly what the parent computes.

    Build one directly (``MotionAugmentedTransformer3D(ma_cross_attention_dim=..., **parent_kwargs)``) or convert
    an existing motion module in place with :meth:`augment_`.
    """

    def __init__(
        self,
        *args: Any,
        ma_cross_attention_dim: int,
        ma_num_attention_heads: int = 8,
        ma_context: MotionPromptContext | None = None,
        **kwargs: Any,
    ):
        super().__init__(*args, **kwargs)
        self._add_ma_blocks(ma_cross_attention_dim, ma_num_attention_heads, ma_context or MotionPromptContext())

    @classmethod
    def augment_(
        cls,
        module: AnimateDiffTransformer3D,
        ma_cross_attention_dim: int,
        ma_num_attention_heads: int,
        ma_context: MotionPromptContext,
        zero_init: bool = True,
    ) -> MotionAugmentedTransformer3D:
        """Turn ``module`` into a ``MotionAugmentedTransformer3D`` in place and return it.

        Why in place: diffusers builds the motion modules inside its block classes and does not keep their
        constructor arguments, so re-creating them would mean re-deriving every argument. Changing the class
        keeps every existing parameter object and name and only adds ``ma_blocks``.
        """
        if type(module) is not AnimateDiffTransformer3D:
            raise TypeError(f"expected an AnimateDiffTransformer3D, got {type(module).__name__}")
        module.__class__ = cls
        module._add_ma_blocks(ma_cross_attention_dim, ma_num_attention_heads, ma_context, zero_init)
        return module

    def _add_ma_blocks(
        self, cross_attention_dim: int, num_attention_heads: int, context: MotionPromptContext, zero_init: bool
    ):
        inner_dim = self.num_attention_heads * self.attention_head_dim
        ref = self.proj_in.weight
        # Plain attribute (not a submodule): shared, stateless, never saved.
        self.ma_context = context
        # Recompute the MA sub-layer in backward instead of keeping its activations (LayerNorm output, queries,
        # attention output: ~5 channel-widths per token): ~4% less activation memory for ~1% more FLOPs at SD-1.5
        # scale. Independent of diffusers' enable_gradient_checkpointing; toggle with
        # FollowYourClickUNet.set_ma_checkpointing.
        self.ma_checkpointing = True
        self.ma_blocks = nn.ModuleList(
            [
                MotionAugmentedCrossAttention(inner_dim, cross_attention_dim, num_attention_heads, zero_init)
                for _ in self.transformer_blocks
            ]
        ).to(device=ref.device, dtype=ref.dtype)

    def forward(
        self,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.LongTensor | None = None,
        timestep: torch.LongTensor | None = None,
        class_labels: torch.LongTensor | None = None,
        num_frames: int = 1,
        cross_attention_kwargs: dict[str, Any] | None = None,
    ) -> torch.Tensor:
        """hidden_states: (B*F, C, h, w) frame-major features -> same shape.

        Same signature and computation as ``AnimateDiffTransformer3D.forward`` (diffusers' mid block calls it
        positionally), plus the MA sub-layer after each transformer block when a motion prompt is set.
        """
        prompt_embeds = self.ma_context.motion_prompt_embeds

        # 1. Input (as in the parent): (B*F, C, h, w) -> (B*h*w, F, C)
        batch_frames, channel, height, width = hidden_states.shape
        batch_size = batch_frames // num_frames
        residual = hidden_states

        hidden_states = hidden_states[None, :].reshape(batch_size, num_frames, channel, height, width)
        hidden_states = hidden_states.permute(0, 2, 1, 3, 4)
        hidden_states = self.norm(hidden_states)
        hidden_states = hidden_states.permute(0, 3, 4, 2, 1).reshape(batch_size * height * width, num_frames, channel)
        hidden_states = self.proj_in(input=hidden_states)

        if prompt_embeds is not None and prompt_embeds.shape[0] != batch_size:
            raise ValueError(
                f"motion_prompt_embeds has batch {prompt_embeds.shape[0]} but the motion module sees batch {batch_size}"
            )

        # 2. Blocks, each followed by its MA sub-layer
        for block, ma_block in zip(self.transformer_blocks, self.ma_blocks):
            hidden_states = block(
                hidden_states=hidden_states,
                encoder_hidden_states=encoder_hidden_states,
                timestep=timestep,
                cross_attention_kwargs=cross_attention_kwargs,
                class_labels=class_labels,
            )
            if prompt_embeds is not None:
                if torch.is_grad_enabled() and self.ma_checkpointing:
                    hidden_states = checkpoint(ma_block, hidden_states, prompt_embeds, use_reentrant=False)
                else:
                    hidden_states = ma_block(hidden_states, prompt_embeds)

        # 3. Output (as in the parent): (B*h*w, F, C) -> (B*F, C, h, w) + residual
        hidden_states = self.proj_out(input=hidden_states)
        hidden_states = (
            hidden_states[None, None, :]
            .reshape(batch_size, height, width, num_frames, channel)
            .permute(0, 3, 4, 1, 2)
            .contiguous()
        )
        hidden_states = hidden_states.reshape(batch_frames, channel, height, width)
        return hidden_states + residual


def iter_motion_modules(unet: nn.Module):
    """Yield every motion module (``AnimateDiffTransformer3D`` or subclass) of a motion UNet, in module order."""
    for module in unet.modules():
        if isinstance(module, AnimateDiffTransformer3D):
            yield module
