"""FollowYourClickUNet: diffusers' AnimateDiff ``UNetMotionModel`` plus Follow-Your-Click conditioning.

Additions over ``UNetMotionModel`` (each is an exact no-op at construction, see ``from_unet2d``):

* 9-channel input ``[noisy latent (4) | region mask (1) | first-frame latent (4)]``, assembled by ``forward``;
  the 5 new ``conv_in`` input channels start at zero.
* motion-augmented (MA) cross-attention to the short motion prompt in every motion-module transformer block
  (``fyc.models.motion_attention``), zero-initialised output.
* motion-strength (and optional frame-stride) embeddings added to the time embedding
  (``fyc.models.embeddings``), zero-initialised last layer.

Units of the scalar conditions:

* ``motion_strength``: mean optical-flow magnitude inside the motion region, in pixels per consecutive pair of
  the *returned* (already stride-subsampled) frames, measured at the reference resolution the data pipeline
  uses (the training resolution, e.g. 512x512). Paper figures use 4, 8, 12, 16.
* ``frame_stride``: number of source-video frames between consecutive returned frames (1 = every frame).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

import torch
from diffusers.configuration_utils import register_to_config
from diffusers.models.modeling_utils import ModelMixin  # noqa: F401  diffusers' pipeline loader looks it up here
from diffusers.models.unets.unet_2d_condition import UNet2DConditionModel
from diffusers.models.unets.unet_motion_model import MotionAdapter, UNetMotionModel, UNetMotionOutput
from torch import nn

from fyc.models.embeddings import ScalarConditionEmbedding
from fyc.models.motion_attention import (
    MotionAugmentedCrossAttention,
    MotionAugmentedTransformer3D,
    MotionPromptContext,
    iter_motion_modules,
)
from fyc.models.trainable import parameter_group_of

logger = logging.getLogger(__name__)

FirstFramePlacement = Literal["first", "repeat"]
FIRST_FRAME_PLACEMENTS = ("first", "repeat")

# Config options FollowYourClickUNet adds to UNetMotionModel's (all accepted by from_unet2d / load_fyc_unet).
FYC_OPTION_NAMES = (
    "latent_channels",
    "first_frame_placement",
    "region_mask_channel",
    "first_frame_residual",
    "motion_augmented_attention",
    "ma_num_attention_heads",
    "ma_cross_attention_dim",
    "ma_zero_init",
    "motion_strength_embedding",
    "strength_embedding_scale",
    "frame_stride_embedding",
    "frame_stride_embedding_scale",
)


@dataclass
class ForwardConditions(MotionPromptContext):
    """Per-forward conditions, set at the start of ``FollowYourClickUNet.forward`` and read by the time-embedding
    hook (strength, stride) and the MA motion modules (prompt). Kept after forward on purpose: gradient
    checkpointing re-runs motion modules during backward and must see the same values.

    ``motion_strength`` / ``frame_stride``: (B,) float32, or None (embedding skipped).
    """

    motion_strength: torch.Tensor | None = None
    frame_stride: torch.Tensor | None = None


class FollowYourClickUNet(UNetMotionModel):
    """AnimateDiff motion UNet conditioned on a region mask, a first-frame latent, a short motion prompt and a
    motion strength (Follow-Your-Click, arXiv 2403.08268).

    Constructor: every ``UNetMotionModel`` argument (``in_channels`` must equal ``2 * latent_channels + 1``),
    plus:

    Args:
        latent_channels: VAE latent channels (4 for SD).
        first_frame_placement: ``"first"``: first-frame latent at frame 0, zeros at the other frames (official
            code); ``"repeat"``: the latent repeated at every frame (one reading of the paper).
        region_mask_channel: feed the region mask; False keeps that channel at zero whatever is passed (the
            "no mask channel" ablation: the model must guess what moves from the prompt alone).
        first_frame_residual: what the UNet denoises. False (paper): the video latent. True: the video latent minus
            the clean first-frame latent repeated over frames, so a static scene is the all-zero target and a
            model that outputs nothing useful yet copies the image (in the spirit of residual video diffusion,
            Yang et al. 2022, arXiv 2203.09481). forward ignores it; trainers subtract and samplers add back
            ``first_frame_latent`` (``fyc.training.module``, ``FollowYourClickPipeline``). Not in the paper.
        motion_augmented_attention: add MA cross-attention to every motion-module transformer block.
        ma_num_attention_heads: heads of each MA attention.
        ma_cross_attention_dim: width of the motion-prompt tokens; None -> ``cross_attention_dim``.
        ma_zero_init: MA output projections start at zero (exact no-op until trained; right when adding MA to
            pretrained motion modules). False: default Linear init (from scratch on the toy world it made no
            difference, docs/results.md).
        motion_strength_embedding: add the motion-strength embedding to the time embedding.
        strength_embedding_scale: strength multiplier applied before the sinusoid (see ``ScalarConditionEmbedding``;
            10 -> a strength of 1 px/frame-pair reads like timestep 10, differences of 0.1 px are resolved).
        frame_stride_embedding: add a frame-stride embedding the same way.
        frame_stride_embedding_scale: stride multiplier before the sinusoid (strides are integers; 1 is enough).

    Prefer :meth:`from_unet2d` (or ``fyc.models.load_fyc_unet``) to build from pretrained SD + AnimateDiff.
    """

    @register_to_config
    def __init__(
        self,
        sample_size: int | None = None,
        in_channels: int = 9,
        out_channels: int = 4,
        down_block_types: tuple[str, ...] = (
            "CrossAttnDownBlockMotion",
            "CrossAttnDownBlockMotion",
            "CrossAttnDownBlockMotion",
            "DownBlockMotion",
        ),
        up_block_types: tuple[str, ...] = (
            "UpBlockMotion",
            "CrossAttnUpBlockMotion",
            "CrossAttnUpBlockMotion",
            "CrossAttnUpBlockMotion",
        ),
        block_out_channels: tuple[int, ...] = (320, 640, 1280, 1280),
        layers_per_block: int | tuple[int] = 2,
        downsample_padding: int = 1,
        mid_block_scale_factor: float = 1,
        act_fn: str = "silu",
        norm_num_groups: int = 32,
        norm_eps: float = 1e-5,
        cross_attention_dim: int = 1280,
        transformer_layers_per_block: int | tuple[int] | tuple[tuple] = 1,
        reverse_transformer_layers_per_block: int | tuple[int] | tuple[tuple] | None = None,
        temporal_transformer_layers_per_block: int | tuple[int] | tuple[tuple] = 1,
        reverse_temporal_transformer_layers_per_block: int | tuple[int] | tuple[tuple] | None = None,
        transformer_layers_per_mid_block: int | tuple[int] | None = None,
        temporal_transformer_layers_per_mid_block: int | tuple[int] | None = 1,
        use_linear_projection: bool = False,
        num_attention_heads: int | tuple[int, ...] = 8,
        motion_max_seq_length: int = 32,
        motion_num_attention_heads: int | tuple[int, ...] = 8,
        reverse_motion_num_attention_heads: int | tuple[int, ...] | tuple[tuple[int, ...], ...] | None = None,
        use_motion_mid_block: bool = True,
        mid_block_layers: int = 1,
        encoder_hid_dim: int | None = None,
        encoder_hid_dim_type: str | None = None,
        addition_embed_type: str | None = None,
        addition_time_embed_dim: int | None = None,
        projection_class_embeddings_input_dim: int | None = None,
        time_cond_proj_dim: int | None = None,
        # --- Follow-Your-Click options ---
        latent_channels: int = 4,
        first_frame_placement: FirstFramePlacement = "first",
        region_mask_channel: bool = True,
        first_frame_residual: bool = False,
        motion_augmented_attention: bool = False,
        ma_num_attention_heads: int = 8,
        ma_cross_attention_dim: int | None = None,
        ma_zero_init: bool = True,
        motion_strength_embedding: bool = True,
        strength_embedding_scale: float = 10.0,
        frame_stride_embedding: bool = False,
        frame_stride_embedding_scale: float = 1.0,
    ):
        if in_channels != 2 * latent_channels + 1:
            raise ValueError(
                f"in_channels must be 2 * latent_channels + 1 = {2 * latent_channels + 1} "
                f"(noisy latent | region mask | first-frame latent), got in_channels={in_channels}"
            )
        if first_frame_placement not in FIRST_FRAME_PLACEMENTS:
            raise ValueError(
                f"first_frame_placement must be one of {FIRST_FRAME_PLACEMENTS}, got {first_frame_placement!r}"
            )
        if out_channels != latent_channels:
            raise ValueError(f"out_channels ({out_channels}) must equal latent_channels ({latent_channels})")
        super().__init__(
            sample_size=sample_size,
            in_channels=in_channels,
            out_channels=out_channels,
            down_block_types=down_block_types,
            up_block_types=up_block_types,
            block_out_channels=block_out_channels,
            layers_per_block=layers_per_block,
            downsample_padding=downsample_padding,
            mid_block_scale_factor=mid_block_scale_factor,
            act_fn=act_fn,
            norm_num_groups=norm_num_groups,
            norm_eps=norm_eps,
            cross_attention_dim=cross_attention_dim,
            transformer_layers_per_block=transformer_layers_per_block,
            reverse_transformer_layers_per_block=reverse_transformer_layers_per_block,
            temporal_transformer_layers_per_block=temporal_transformer_layers_per_block,
            reverse_temporal_transformer_layers_per_block=reverse_temporal_transformer_layers_per_block,
            transformer_layers_per_mid_block=transformer_layers_per_mid_block,
            temporal_transformer_layers_per_mid_block=temporal_transformer_layers_per_mid_block,
            use_linear_projection=use_linear_projection,
            num_attention_heads=num_attention_heads,
            motion_max_seq_length=motion_max_seq_length,
            motion_num_attention_heads=motion_num_attention_heads,
            reverse_motion_num_attention_heads=reverse_motion_num_attention_heads,
            use_motion_mid_block=use_motion_mid_block,
            mid_block_layers=mid_block_layers,
            encoder_hid_dim=encoder_hid_dim,
            encoder_hid_dim_type=encoder_hid_dim_type,
            addition_embed_type=addition_embed_type,
            addition_time_embed_dim=addition_time_embed_dim,
            projection_class_embeddings_input_dim=projection_class_embeddings_input_dim,
            time_cond_proj_dim=time_cond_proj_dim,
        )
        # New conditioning channels start at zero: the model ignores mask / first frame until trained.
        with torch.no_grad():
            self.conv_in.weight[:, latent_channels:].zero_()

        # Plain attribute shared with the MA motion modules; see ForwardConditions.
        self.fyc_conditions = ForwardConditions()
        self._warned_ignored: set[str] = set()

        if motion_augmented_attention:
            ma_dim = ma_cross_attention_dim or _single_cross_attention_dim(cross_attention_dim)
            for module in list(iter_motion_modules(self)):
                MotionAugmentedTransformer3D.augment_(
                    module, ma_dim, ma_num_attention_heads, self.fyc_conditions, ma_zero_init
                )

        time_embed_dim = block_out_channels[0] * 4
        # Attribute names differ from the config keys on purpose: diffusers resolves `self.<config key>` to the
        # config value, so a module named like a config key would be shadowed.
        self.strength_embedding = (
            ScalarConditionEmbedding(block_out_channels[0], time_embed_dim, strength_embedding_scale, act_fn)
            if motion_strength_embedding
            else None
        )
        self.stride_embedding = (
            ScalarConditionEmbedding(block_out_channels[0], time_embed_dim, frame_stride_embedding_scale, act_fn)
            if frame_stride_embedding
            else None
        )
        # Add the scalar embeddings to the time-embedding output, i.e. before UNetMotionModel.forward repeats it
        # over frames and feeds it to every ResNet; avoids copying the parent's forward.
        self.time_embedding.register_forward_hook(self._add_scalar_condition_embeddings)

    # ------------------------------------------------------------------ construction from SD + AnimateDiff

    @classmethod
    def from_unet2d(
        cls,
        unet: UNet2DConditionModel,
        motion_adapter: MotionAdapter | None = None,
        load_weights: bool = True,
        **fyc_options: Any,
    ) -> FollowYourClickUNet:
        """Inflate an SD ``UNet2DConditionModel`` with an AnimateDiff ``MotionAdapter`` (like
        ``UNetMotionModel.from_unet2d``) and add the Follow-Your-Click conditioning.

        Weights: spatial layers from ``unet``; motion modules from ``motion_adapter`` (random if None, as in
        diffusers); ``conv_in`` channels ``[0, latent_channels)`` from ``unet.conv_in``, the other
        ``latent_channels + 1`` channels zero, bias from ``unet``. A PIA-style adapter with its own 9-channel
        ``conv_in`` (``conv_in_channels=9``) is accepted but its ``conv_in`` is NOT used: PIA's extra channels
        carry a different signal (inter-frame affinity, image latent at every frame), and zero-init keeps the
        exact no-op guarantee. MA and strength/stride embeddings keep their zero-init.

        ``fyc_options``: any of ``FYC_OPTION_NAMES``. Raises ValueError naming the incompatible config values,
        keys or shapes when ``unet`` and ``motion_adapter`` do not fit together.
        """
        unknown = sorted(set(fyc_options) - set(FYC_OPTION_NAMES))
        if unknown:
            raise TypeError(f"unknown FollowYourClickUNet options {unknown}; known: {list(FYC_OPTION_NAMES)}")
        if motion_adapter is not None:
            _check_adapter_fits_unet(unet, motion_adapter)

        # Let diffusers derive the motion-UNet config (block types, adapter layout); built on the meta device
        # so it costs no memory or time, and its weights are never used.
        try:
            with torch.device("meta"):
                layout = UNetMotionModel.from_unet2d(unet, motion_adapter, load_weights=False)
        except ValueError as error:
            raise ValueError(f"{_describe(unet, motion_adapter)}: {error}") from error
        latent_channels = fyc_options.get("latent_channels", 4)
        config = {key: value for key, value in layout.config.items() if not key.startswith("_")}
        model = cls.from_config(config, in_channels=2 * latent_channels + 1, **fyc_options)
        del layout
        if not load_weights:
            return model

        state = _pretrained_state_dict(unet, motion_adapter, model)
        _check_state_dict_fits(model, state, motion_adapter is not None, unet, motion_adapter)
        model.load_state_dict(state, strict=False)
        # Like diffusers: match the 2D UNet's dtype (skipped when equal, which avoids diffusers' cast warning).
        return model if model.dtype == unet.dtype else model.to(unet.dtype)

    # ------------------------------------------------------------------ forward

    def forward(
        self,
        sample: torch.Tensor,
        timestep: torch.Tensor | float | int,
        encoder_hidden_states: torch.Tensor,
        *,
        region_mask: torch.Tensor | None = None,
        first_frame_latent: torch.Tensor | None = None,
        motion_prompt_embeds: torch.Tensor | None = None,
        motion_strength: torch.Tensor | float | None = None,
        frame_stride: torch.Tensor | float | None = None,
        timestep_cond: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        cross_attention_kwargs: dict[str, Any] | None = None,
        added_cond_kwargs: dict[str, torch.Tensor] | None = None,
        down_block_additional_residuals: tuple[torch.Tensor, ...] | None = None,
        mid_block_additional_residual: torch.Tensor | None = None,
        return_dict: bool = True,
    ) -> UNetMotionOutput | tuple[torch.Tensor]:
        """Predict (v / noise, per the scheduler) for a batch of noisy video latents.

        Args:
            sample: (B, latent_channels, F, h, w) noisy latents.
            timestep: scalar or (B,) diffusion timesteps in [0, num_train_timesteps).
            encoder_hidden_states: (B, L, D) text tokens (repeated over frames here) or already (B*F, L, D).
            region_mask: (B, 1, h, w) or (B, 1, F, h, w) in {0, 1}; None -> zeros (no region).
            first_frame_latent: (B, latent_channels, h, w) VAE latent of the input image (scaled like ``sample``);
                None -> zeros. Placed per ``config.first_frame_placement``.
            motion_prompt_embeds: (B, L', D') short-motion-prompt tokens for MA; None -> MA skipped.
            motion_strength: (B,), scalar or None; pixels per frame pair (module docstring). None -> no embedding.
            frame_stride: (B,), scalar or None; source frames between returned frames. None -> no embedding.
            timestep_cond, attention_mask, cross_attention_kwargs, added_cond_kwargs,
            down_block_additional_residuals, mid_block_additional_residual, return_dict: as UNetMotionModel.

        Returns:
            ``UNetMotionOutput`` with ``.sample`` (B, latent_channels, F, h, w), or a 1-tuple.
        """
        batch, channels, num_frames = sample.shape[:3]
        if channels != self.config.latent_channels:
            raise ValueError(
                f"sample must have {self.config.latent_channels} channels, got shape {tuple(sample.shape)}"
            )
        model_input = self.build_model_input(sample, region_mask, first_frame_latent)
        encoder_hidden_states = _per_frame_text(encoder_hidden_states, batch, num_frames)
        if not torch.is_tensor(timestep):
            # diffusers would make a float64 tensor from a Python float; keep everything float32 / int64.
            dtype = torch.float32 if isinstance(timestep, float) else torch.long
            timestep = torch.tensor([timestep], dtype=dtype, device=sample.device)

        prompt = self._enabled_or_ignored(
            "motion_prompt_embeds", motion_prompt_embeds, self.config.motion_augmented_attention
        )
        if prompt is not None and (prompt.dim() != 3 or prompt.shape[0] != batch):
            raise ValueError(f"motion_prompt_embeds must be (B={batch}, L, D), got {tuple(prompt.shape)}")
        strength = _per_sample_scalar(
            self._enabled_or_ignored("motion_strength", motion_strength, self.strength_embedding is not None),
            batch,
            sample.device,
            "motion_strength",
        )
        stride = _per_sample_scalar(
            self._enabled_or_ignored("frame_stride", frame_stride, self.stride_embedding is not None),
            batch,
            sample.device,
            "frame_stride",
        )
        # Set all per-forward conditions together, after validation; read by the hook and the MA modules.
        self.fyc_conditions.motion_prompt_embeds = prompt
        self.fyc_conditions.motion_strength = strength
        self.fyc_conditions.frame_stride = stride

        return super().forward(
            model_input,
            timestep,
            encoder_hidden_states,
            timestep_cond=timestep_cond,
            attention_mask=attention_mask,
            cross_attention_kwargs=cross_attention_kwargs,
            added_cond_kwargs=added_cond_kwargs,
            down_block_additional_residuals=down_block_additional_residuals,
            mid_block_additional_residual=mid_block_additional_residual,
            return_dict=return_dict,
        )

    def build_model_input(
        self,
        sample: torch.Tensor,
        region_mask: torch.Tensor | None = None,
        first_frame_latent: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Concatenate ``[sample | region mask | first-frame block]`` along channels.

        sample (B, c, F, h, w); region_mask (B, 1, h, w) or (B, 1, F, h, w); first_frame_latent (B, c, h, w).
        Returns (B, 2c + 1, F, h, w) in ``sample``'s dtype.
        """
        batch, channels, num_frames, height, width = sample.shape
        if region_mask is None or not self.config.region_mask_channel:
            mask = sample.new_zeros(batch, 1, num_frames, height, width)
        else:
            if region_mask.dim() == 4:
                region_mask = region_mask.unsqueeze(2)
            if region_mask.dim() != 5 or region_mask.shape[1] != 1 or region_mask.shape[-2:] != (height, width):
                raise ValueError(
                    f"region_mask must be (B, 1, {height}, {width}) or (B, 1, F, {height}, {width}), "
                    f"got {tuple(region_mask.shape)}"
                )
            mask = region_mask.to(sample.dtype).expand(batch, 1, num_frames, height, width)

        if first_frame_latent is None:
            first_frames = sample.new_zeros(batch, channels, num_frames, height, width)
        else:
            if first_frame_latent.shape != (batch, channels, height, width):
                raise ValueError(
                    f"first_frame_latent must be ({batch}, {channels}, {height}, {width}), "
                    f"got {tuple(first_frame_latent.shape)}"
                )
            first = first_frame_latent.to(sample.dtype).unsqueeze(2)
            if self.config.first_frame_placement == "repeat":
                first_frames = first.expand(batch, channels, num_frames, height, width)
            else:  # "first": frame 0 only, zeros elsewhere (official code)
                rest = sample.new_zeros(batch, channels, num_frames - 1, height, width)
                first_frames = torch.cat([first, rest], dim=2)
        return torch.cat([sample, mask, first_frames], dim=1)

    def set_ma_checkpointing(self, enabled: bool) -> None:
        """Recompute MA sub-layers in backward (default True; see MotionAugmentedTransformer3D)."""
        for module in iter_motion_modules(self):
            if isinstance(module, MotionAugmentedTransformer3D):
                module.ma_checkpointing = enabled

    def set_ma_query_group_size(self, queries: int) -> None:
        """Queries per MA attention call (default 1024; 0 = one call per sample). Speed only: results are equal."""
        for module in self.modules():
            if isinstance(module, MotionAugmentedCrossAttention):
                module.query_group_size = queries

    # ------------------------------------------------------------------ helpers

    def _add_scalar_condition_embeddings(
        self, module: nn.Module, inputs: tuple[Any, ...], time_emb: torch.Tensor
    ) -> torch.Tensor | None:
        """Forward hook on ``time_embedding``: time_emb (B, 4*C0) + strength/stride embeddings (B, 4*C0)."""
        out = time_emb
        for embedding, values in (
            (self.strength_embedding, self.fyc_conditions.motion_strength),
            (self.stride_embedding, self.fyc_conditions.frame_stride),
        ):
            if embedding is not None and values is not None:
                if values.shape[0] != out.shape[0]:
                    raise ValueError(f"scalar condition batch {values.shape[0]} != time-embedding batch {out.shape[0]}")
                out = out + embedding(values).to(out.dtype)
        return out if out is not time_emb else None

    def _enabled_or_ignored(self, name: str, value: Any, enabled: bool) -> Any:
        """Return ``value`` if its conditioning is enabled; otherwise drop it (warning once per model)."""
        if value is None or enabled:
            return value
        if name not in self._warned_ignored:
            self._warned_ignored.add(name)
            logger.warning("%s was given but the model was built without its conditioning; ignoring it", name)
        return None


# ---------------------------------------------------------------------- module-level helpers


def _single_cross_attention_dim(cross_attention_dim: int | Iterable[int]) -> int:
    if isinstance(cross_attention_dim, int):
        return cross_attention_dim
    dims = set(cross_attention_dim)
    if len(dims) != 1:
        raise ValueError(f"cross_attention_dim {cross_attention_dim} varies per block; set ma_cross_attention_dim")
    return dims.pop()


def _per_frame_text(encoder_hidden_states: torch.Tensor, batch: int, num_frames: int) -> torch.Tensor:
    """(B, L, D) -> (B*F, L, D) by repeat_interleave (what UNetMotionModel expects); (B*F, L, D) passes through."""
    leading = encoder_hidden_states.shape[0]
    if leading == batch * num_frames:
        return encoder_hidden_states
    if leading == batch:
        return encoder_hidden_states.repeat_interleave(num_frames, dim=0, output_size=batch * num_frames)
    raise ValueError(
        f"encoder_hidden_states must be (B={batch}, L, D) or (B*F={batch * num_frames}, L, D), "
        f"got {tuple(encoder_hidden_states.shape)}"
    )


def _per_sample_scalar(
    value: torch.Tensor | float | None, batch: int, device: torch.device, name: str
) -> torch.Tensor | None:
    """None -> None; scalar / (1,) / (B,) -> (B,) float32 on ``device``."""
    if value is None:
        return None
    value = torch.as_tensor(value, device=device).to(torch.float32).reshape(-1)
    if value.numel() == 1:
        return value.expand(batch)
    if value.numel() != batch:
        raise ValueError(f"{name} must be a scalar or have shape (B={batch},), got {value.numel()} values")
    return value


def _describe(unet: UNet2DConditionModel, adapter: MotionAdapter | None) -> str:
    text = (
        f"UNet2DConditionModel(block_out_channels={tuple(unet.config.block_out_channels)}, "
        f"layers_per_block={unet.config.layers_per_block}, down_block_types={tuple(unet.config.down_block_types)})"
    )
    if adapter is not None:
        text += (
            f" vs MotionAdapter(block_out_channels={tuple(adapter.config.block_out_channels)}, "
            f"motion_layers_per_block={adapter.config.motion_layers_per_block}, "
            f"use_motion_mid_block={adapter.config.use_motion_mid_block})"
        )
    return "incompatible motion adapter: " + text if adapter is not None else text


def _check_adapter_fits_unet(unet: UNet2DConditionModel, adapter: MotionAdapter) -> None:
    """Fail early, naming the config values, when the adapter's blocks cannot sit in the UNet's blocks."""
    unet_channels = tuple(unet.config.block_out_channels)
    adapter_channels = tuple(adapter.config.block_out_channels)
    if unet_channels != adapter_channels:
        raise ValueError(
            f"{_describe(unet, adapter)}: block_out_channels differ ({unet_channels} vs {adapter_channels})"
        )


def _pretrained_state_dict(
    unet: UNet2DConditionModel, adapter: MotionAdapter | None, model: FollowYourClickUNet
) -> dict[str, torch.Tensor]:
    """Merge the UNet2D and adapter state dicts into FollowYourClickUNet key space (the names coincide:
    diffusers' motion blocks keep the 2D blocks' resnets/attentions/samplers and the adapter's motion_modules)."""
    state = dict(unet.state_dict())
    if adapter is not None:
        if adapter.conv_in is not None:
            logger.warning(
                "motion adapter has its own conv_in (PIA-style, %d channels); FollowYourClickUNet ignores it and "
                "zero-initialises the conditioning channels",
                adapter.config.conv_in_channels,
            )
        state.update({k: v for k, v in adapter.state_dict().items() if not k.startswith("conv_in.")})

    pretrained_conv_in = state["conv_in.weight"]
    latent_channels = model.config.latent_channels
    if pretrained_conv_in.shape[1] != latent_channels:
        raise ValueError(
            f"unet conv_in.weight has {pretrained_conv_in.shape[1]} input channels, expected latent_channels="
            f"{latent_channels} (shape {tuple(pretrained_conv_in.shape)})"
        )
    conv_in = torch.zeros_like(model.conv_in.weight, dtype=pretrained_conv_in.dtype, device=pretrained_conv_in.device)
    conv_in[:, :latent_channels] = pretrained_conv_in
    state["conv_in.weight"] = conv_in
    return state


def _check_state_dict_fits(
    model: FollowYourClickUNet,
    state: dict[str, torch.Tensor],
    has_adapter: bool,
    unet: UNet2DConditionModel,
    adapter: MotionAdapter | None,
) -> None:
    """Raise ValueError naming unexpected, missing (other than FYC additions) and shape-mismatched keys."""
    expected = model.state_dict()
    unexpected = sorted(set(state) - set(expected))
    mismatched = [
        f"{key}: pretrained {tuple(state[key].shape)} vs model {tuple(expected[key].shape)}"
        for key in sorted(set(state) & set(expected))
        if state[key].shape != expected[key].shape
    ]
    newly_added = {"motion_augmented_attention", "condition_embeddings"}
    if not has_adapter:
        newly_added.add("motion_modules")  # random motion modules, as in diffusers' from_unet2d
    missing = sorted(k for k in set(expected) - set(state) if parameter_group_of(k) not in newly_added)
    problems = []
    if mismatched:
        problems.append(f"shape mismatches: {_head(mismatched)}")
    if missing:
        problems.append(f"keys missing from the pretrained weights: {_head(missing)}")
    if unexpected:
        problems.append(f"pretrained keys FollowYourClickUNet has no place for: {_head(unexpected)}")
    if problems:
        raise ValueError(f"cannot build FollowYourClickUNet from {_describe(unet, adapter)}; " + "; ".join(problems))


def _head(items: list[str], limit: int = 8) -> str:
    more = f" ... and {len(items) - limit} more" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more
