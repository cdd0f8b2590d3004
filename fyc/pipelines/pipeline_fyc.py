"""FollowYourClickPipeline: image + clicked region(s) + short motion prompt(s) + strength → video.

A diffusers ``DiffusionPipeline`` whose sampler is AnimateDiff's (``diffusers.AnimateDiffPipeline``): same prompt
encoding, initial noise (``latents * init_noise_sigma``), CFG arithmetic ``uncond + g * (cond - uncond)``,
scheduler steps and decoding (``latents / scaling_factor``, ``x / 2 + 0.5`` clamped). With the Follow-Your-Click
additions at their zero initialisation it returns AnimateDiff's frames (tested). What it adds:

* the UNet's conditions: region mask (latent size, pooled by :func:`fyc.motion.masks.pool_mask` as in training,
  repeated over frames), first-frame latent (VAE mode, deterministic), short motion prompt (fed to both the
  spatial cross-attention and the motion-augmented attention, paper §4.3; in the unconditional branch MA gets the
  empty prompt, training's null condition), motion strength, frame stride;
* the training contract (``training_contract.json``, :mod:`fyc.pipelines.contract`): ``strength=None`` on a
  strength-conditioned model samples at the training median (logged), ``frame_stride=None`` at the training
  stride, a strength outside the training range warns, ``output.fps`` is the training clips' effective fps;
* clicks → mask through a segmenter (:mod:`fyc.pipelines.click_to_mask`: SAM, or the region-growing fallback);
* optional image guidance (``image_guidance_scale``; the null image is a zero first-frame latent, as in training's
  ``condition_dropout.first_frame``), InstructPix2Pix arithmetic;
* optional guidance interval (``guidance_interval=(t_min, t_max)``): guidance only at the steps whose timestep lies
  in it, the plain conditional prediction elsewhere (Kynkäänniemi et al. 2024, arXiv 2404.07724, limit guidance to
  an interval of noise levels; here in training timesteps). Outside the interval every branch is still computed
  (no saving); its effect on the toy study is in docs/results.md;
* several regions, each with its own prompt and strength (**regional prompting by noise-prediction composition**,
  the "latent mode" of the regional prompter the paper used): every region is one batch entry of the same UNet call
  (its prompt in both cross-attentions, its strength in the time embedding, the *union* of all masks in the mask
  channel); the guided predictions are combined per latent pixel, ``eps = sum_r w_r * eps_r + w_bg * eps_bg`` with
  ``w_r = M_r / max(1, sum_r M_r)`` (overlaps averaged) and ``w_bg = 1 - sum_r w_r``. Outside every region the
  background branch acts: by default the negative-prompt ("unconditional") prediction, which CFG computes anyway,
  so R regions of one strength cost R + 1 UNet batch entries per step instead of 2 (each extra distinct strength
  adds one unconditional entry: CFG is over text only, so the unconditional branch carries the region's strength).
  Why not attention-level regional prompting (per-region cross-attention combined by mask)? It would be cheaper
  (2 entries whatever R), but needs custom processors on every spatial and MA attention, and a prompt still leaks
  through self-attention, temporal attention and convolutions within the same step. At every step, a region's prompt changes the
  prediction only inside its own mask (tested over one whole step: outside the mask the output changes by float
  round-off only). Over several steps a region's content can still reach its neighbours through the UNet's
  receptive field, as in any latent-composition scheme.
"""
from __future__ import annotations

import dataclasses
import inspect
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import PIL.Image
import torch
import torch.nn.functional as F
from diffusers import DiffusionPipeline
from diffusers.utils import BaseOutput
from diffusers.utils.torch_utils import randn_tensor

# diffusers resolves a saved pipeline's components by the module path in model_index.json ("fyc.models.unet",
# "fyc.toy.pixel_autoencoder") and refuses modules that are not imported yet: import them with the pipeline.
import fyc.toy.pixel_autoencoder  # noqa: E402,F401
import fyc.models.unet  # noqa: E402,F401
from fyc.motion.masks import pool_mask
from fyc.pipelines.click_to_mask import RegionGrowSegmenter
from fyc.pipelines.contract import CONTRACT_FILE, TrainingContract

logger = logging.getLogger(__name__)
SUPPORTED_IMAGE_MODES = ("RGB", "RGBA", "L")
OUTPUT_TYPES = ("pil", "np", "pt", "latent")
# placeholder prompts marking the slots whose text embeddings the caller gave
PROMPT_EMBEDS_SLOT, NEGATIVE_EMBEDS_SLOT = "\x00prompt_embeds", "\x00negative_prompt_embeds"


@dataclass
class Region:
    """One object to animate: where (``clicks`` [+ ``negative_clicks``] or ``mask``), how (``prompt``, e.g.
    "wag tail") and how much (``strength`` in pixels per frame pair; None → the call's ``strength``).

    clicks: (x, y) pixel coordinates, x in [0, W-1], y in [0, H-1]. mask: bool/uint8 (H, W) array, PIL "L" image
    or (B, 1, H, W) tensor in {0, 1}, the image's size.
    """

    prompt: str | list[str] = ""
    clicks: Sequence[Sequence[float]] | None = None
    negative_clicks: Sequence[Sequence[float]] | None = None
    mask: Any = None
    strength: float | None = None


@dataclass
class FollowYourClickPipelineOutput(BaseOutput):
    """frames: a list (per video) of F PIL images ("pil"), ``(B, F, H, W, 3)`` float in [0, 1] ("np"),
    ``(B, F, 3, H, W)`` tensor in [0, 1] ("pt"), or latents ``(B, 4, F, h, w)`` ("latent"); B = images x
    num_videos_per_prompt. masks: bool ``(B, R, H, W)``, the pixel mask of each region as used. segmenter: name of
    the segmenter that turned clicks into masks (None when only masks were given). strengths: the strength used
    per region (None: embedding left out); strength_reason: where the call's strength came from. frame_stride:
    the stride passed to the UNet. fps: the fps to write the video at (the training clips' effective fps)."""

    frames: np.ndarray | torch.Tensor | list
    masks: np.ndarray | None = None
    segmenter: str | None = None
    strengths: list | None = None
    strength_reason: str | None = None
    frame_stride: float | None = None
    fps: float | None = None


def _image_to_tensor(image, name: str = "image") -> torch.Tensor:
    """PIL (RGB/RGBA/L) / uint8 (H, W, 3) ndarray / float tensor (B, 3, H, W) in [-1, 1] → (B, 3, H, W) in [-1, 1]."""
    if isinstance(image, PIL.Image.Image):
        if image.mode not in SUPPORTED_IMAGE_MODES:
            raise ValueError(f"{name}: unsupported image mode {image.mode!r}; supported modes are "
                             f"{', '.join(SUPPORTED_IMAGE_MODES)} (convert with image.convert('RGB'))")
        image = np.array(image.convert("RGB"))
    if isinstance(image, np.ndarray):
        if image.ndim != 3 or image.shape[-1] != 3 or image.dtype != np.uint8:
            raise ValueError(f"{name}: expected a uint8 (H, W, 3) array with values in [0, 255], "
                             f"got {image.dtype} {image.shape}")
        image = torch.from_numpy(np.array(image)).permute(2, 0, 1)[None].float() / 127.5 - 1.0
    if not torch.is_tensor(image) or image.ndim != 4 or image.shape[1] != 3:
        raise ValueError(f"{name}: expected a PIL image, a uint8 (H, W, 3) array or a (B, 3, H, W) tensor in "
                         f"[-1, 1], got {type(image).__name__} {tuple(getattr(image, 'shape', ()))}")
    if not image.is_floating_point():
        raise ValueError(f"{name}: a tensor image must be float in [-1, 1], got {image.dtype}")
    return image


def _tensor_to_uint8(image: torch.Tensor) -> np.ndarray:
    """(B, 3, H, W) in [-1, 1] → uint8 (B, H, W, 3)."""
    return ((image.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


def _mask_to_tensor(mask, size: tuple[int, int], batch_size: int, name: str = "mask") -> torch.Tensor:
    """bool/uint8 (H, W) array, PIL image or (B|1, 1, H, W) tensor → float (B, 1, H, W) in {0, 1}."""
    if isinstance(mask, PIL.Image.Image):
        mask = np.asarray(mask.convert("L"))
    if isinstance(mask, np.ndarray):
        if mask.ndim != 2:
            raise ValueError(f"{name}: expected a (H, W) array, got shape {mask.shape}")
        mask = torch.from_numpy(np.asarray(mask > 0))[None, None].float()
    if not torch.is_tensor(mask) or mask.ndim != 4 or mask.shape[1] != 1:
        raise ValueError(f"{name}: expected a (H, W) array, a PIL image or a (B, 1, H, W) tensor")
    if tuple(mask.shape[-2:]) != tuple(size):
        raise ValueError(f"{name}: size {tuple(mask.shape[-2:])} (H, W) does not match image size {tuple(size)}; "
                         f"the mask must be exactly {size[0]}x{size[1]}")
    if mask.shape[0] not in (1, batch_size):
        raise ValueError(f"{name}: batch {mask.shape[0]} must be 1 or the image batch {batch_size}")
    mask = (mask > 0.5).float().expand(batch_size, -1, -1, -1)
    if (mask.flatten(1).sum(1) == 0).any():
        raise ValueError(f"{name}: the region is empty (no pixel > 0); it must contain at least one pixel of the "
                         f"{size[0]}x{size[1]} image — click on an object or pass a non-empty mask")
    return mask


def _looks_like_mask(value) -> bool:
    return isinstance(value, PIL.Image.Image) or (torch.is_tensor(value) and value.ndim == 4) or (
        isinstance(value, np.ndarray) and value.ndim == 2 and value.shape[-1] != 2)


class FollowYourClickPipeline(DiffusionPipeline):
    """Regional image animation (Follow-Your-Click, arXiv 2403.08268).

    Components: ``vae`` (AutoencoderKL or the toy PixelAutoencoder), ``text_encoder`` (CLIPTextModel),
    ``tokenizer`` (CLIPTokenizer), ``unet`` (:class:`fyc.models.FollowYourClickUNet`), ``scheduler``
    (DDIM with v-prediction, zero-terminal SNR, trailing spacing; see ``fyc.models.schedulers``).
    Not a component: ``segmenter`` (clicks → mask), :class:`~fyc.pipelines.click_to_mask.RegionGrowSegmenter` by
    default; set a SAM one with ``pipe.segmenter = load_segmenter("facebook/sam-vit-base")``.
    """

    model_cpu_offload_seq = "text_encoder->unet->vae"
    _callback_tensor_inputs = ["latents", "noise_pred"]

    def __init__(self, vae, text_encoder, tokenizer, unet, scheduler):
        super().__init__()
        self.register_modules(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet, scheduler=scheduler)
        self.vae_scale_factor = 2 ** (len(self.vae.config.block_out_channels) - 1)
        self.segmenter = RegionGrowSegmenter()
        #: what the model was trained with (:mod:`fyc.pipelines.contract`); None for exports older than it
        self.training_contract: TrainingContract | None = None

    # ------------------------------------------------------------------ saving / loading

    def save_pretrained(self, save_directory, *args, **kwargs):
        """diffusers' save, plus ``training_contract.json`` when the pipeline has one."""
        super().save_pretrained(save_directory, *args, **kwargs)
        if self.training_contract is not None:
            self.training_contract.save(save_directory)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *args, **kwargs):
        """diffusers' loading, plus the folder's training contract. A folder without one (exported before the
        contract existed) loads with a warning and today's defaults: no default strength, stride or fps."""
        pipe = super().from_pretrained(pretrained_model_name_or_path, *args, **kwargs)
        folder = Path(str(pretrained_model_name_or_path))
        if not folder.is_dir():
            try:
                from huggingface_hub import snapshot_download

                folder = Path(snapshot_download(str(pretrained_model_name_or_path), allow_patterns=[CONTRACT_FILE]))
            except Exception:  # no hub access: treated as a folder without a contract
                pass
        pipe.training_contract = TrainingContract.load(folder) if folder.is_dir() else None
        if pipe.training_contract is None:
            logger.warning("%s has no %s (exported before the training contract): strength=None leaves the "
                           "strength embedding out, frame_stride has no default, videos are written at 8 fps; "
                           "re-export it with scripts/export.py to record what the model was trained with",
                           pretrained_model_name_or_path, CONTRACT_FILE)
        return pipe

    # ------------------------------------------------------------------ encoders

    @torch.no_grad()
    def encode_prompt(self, prompts: list[str], device: torch.device) -> torch.Tensor:
        """list of str → text-encoder last hidden states ``(B, 77, D)`` (as AnimateDiffPipeline, no clip skip)."""
        ids = self.tokenizer(prompts, padding="max_length", max_length=self.tokenizer.model_max_length,
                             truncation=True, return_tensors="pt").input_ids.to(device)
        return self.text_encoder(ids)[0]

    @torch.no_grad()
    def encode_first_frame(self, image: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) in [-1, 1] → (B, 4, h, w); deterministic (the distribution's mode, not a sample)."""
        latent = self.vae.encode(image.to(device=self.vae.device, dtype=self.vae.dtype)).latent_dist.mode()
        return latent * self.vae.config.scaling_factor

    @torch.no_grad()
    def decode_latents(self, latents: torch.Tensor, decode_chunk_size: int = 16) -> torch.Tensor:
        """(B, 4, F, h, w) → pixels (B, F, 3, H, W) float32 in [0, 1], ``decode_chunk_size`` frames at a time."""
        b, c, f, h, w = latents.shape
        flat = latents.permute(0, 2, 1, 3, 4).reshape(b * f, c, h, w) / self.vae.config.scaling_factor
        frames = torch.cat([self.vae.decode(flat[i:i + decode_chunk_size].to(self.vae.dtype)).sample
                            for i in range(0, flat.shape[0], decode_chunk_size)]).float()
        frames = (frames / 2 + 0.5).clamp(0, 1)
        return frames.reshape(b, f, *frames.shape[1:])

    # ------------------------------------------------------------------ input handling

    def check_inputs(self, image: torch.Tensor, num_frames: int, num_inference_steps: int, guidance_scale: float,
                     image_guidance_scale: float | None, output_type: str,
                     callback_on_step_end_tensor_inputs: Sequence[str]) -> None:
        """Raise ValueError naming the argument and its valid range."""
        check_number("guidance_scale", guidance_scale)
        check_number("image_guidance_scale", image_guidance_scale, allow_none=True)
        max_frames = self.unet.config.motion_max_seq_length
        if not isinstance(num_frames, int) or not 1 <= num_frames <= max_frames:
            raise ValueError(f"num_frames must be in [1, {max_frames}] (an integer; the motion modules' "
                             f"motion_max_seq_length), got {num_frames}")
        if not isinstance(num_inference_steps, int) or num_inference_steps < 1:
            raise ValueError(f"num_inference_steps must be an integer >= 1, got {num_inference_steps}")
        multiple = self.vae_scale_factor * 2 ** (len(self.unet.config.block_out_channels) - 1)
        h, w = image.shape[-2:]
        if h % multiple or w % multiple:
            raise ValueError(f"image: height and width must be multiples of {multiple} (VAE factor x UNet "
                             f"downsampling), got {h}x{w}")
        if output_type not in OUTPUT_TYPES:
            raise ValueError(f"output_type must be one of {OUTPUT_TYPES}, got {output_type!r}")
        bad = [k for k in callback_on_step_end_tensor_inputs if k not in self._callback_tensor_inputs]
        if bad:
            raise ValueError(f"callback_on_step_end_tensor_inputs: {bad} not in {self._callback_tensor_inputs}")

    def _regions(self, image: torch.Tensor, clicks, negative_clicks, mask, prompt, strength,
                 regions, segmenter) -> tuple[list[Region], list[torch.Tensor], str | None]:
        """→ (regions, pixel masks (B, 1, H, W) in {0, 1} per region, segmenter name or None)."""
        batch_size, size = image.shape[0], tuple(image.shape[-2:])
        if regions is None:
            if clicks is not None and mask is not None:
                raise ValueError("clicks and mask: pass either clicks (segmented into a mask) or a mask, not both")
            if clicks is None and mask is None:
                raise ValueError("clicks / mask: one of them is needed to say which region to animate")
            regions = [Region(prompt=prompt, clicks=clicks, negative_clicks=negative_clicks, mask=mask,
                              strength=strength)]
        else:
            if clicks is not None or mask is not None or negative_clicks is not None:
                raise ValueError("regions: with regions, give clicks / mask inside each region, not to the call")
            if len(regions) == 0:
                raise ValueError("regions: at least one region is needed")
            regions = [r if isinstance(r, Region) else Region(**r) for r in regions]
            regions = [Region(r.prompt, r.clicks, r.negative_clicks, r.mask,
                              strength if r.strength is None else r.strength) for r in regions]
        segmenter = segmenter or self.segmenter
        used, masks = None, []
        pixels = None
        for k, region in enumerate(regions):
            name = "mask" if len(regions) == 1 else f"regions[{k}].mask"
            check_number("strength" if len(regions) == 1 else f"regions[{k}].strength", region.strength,
                         allow_none=True)
            if region.mask is not None and region.clicks is not None:
                raise ValueError(f"regions[{k}]: pass either clicks or mask, not both")
            if region.mask is None:
                if region.clicks is None:
                    raise ValueError(f"regions[{k}]: clicks or mask is needed")
                pixels = _tensor_to_uint8(image) if pixels is None else pixels
                segmented = np.stack([segmenter(img, region.clicks, region.negative_clicks or ()) for img in pixels])
                used = segmenter.name
                masks.append(_mask_to_tensor(torch.from_numpy(segmented)[:, None].float(), size, batch_size,
                                             name.replace(".mask", "") + " (clicks → segmented mask)"))
            else:
                masks.append(_mask_to_tensor(region.mask, size, batch_size, name))
        return regions, masks, used

    def _guidance_interval(self, interval) -> Callable[[Any], bool] | None:
        """``(t_min, t_max)`` → a test ``t -> t_min <= t <= t_max`` (None → None: guidance at every step)."""
        if interval is None:
            return None
        n_train = self.scheduler.config.num_train_timesteps
        values = list(interval) if isinstance(interval, (list, tuple)) else None
        if values is None or len(values) != 2 or not 0 <= float(values[0]) <= float(values[1]) <= n_train:
            raise ValueError(f"guidance_interval must be (t_min, t_max) with 0 <= t_min <= t_max <= {n_train} "
                             f"(training timesteps), got {interval!r}")
        low, high = float(values[0]), float(values[1])
        return lambda t: low <= float(t) <= high

    def _prompt_list(self, prompt, batch_size: int, name: str) -> list[str]:
        prompts = [prompt] * batch_size if isinstance(prompt, str) else list(prompt)
        if len(prompts) != batch_size:
            raise ValueError(f"{name}: {len(prompts)} prompts for an image batch of {batch_size}")
        return prompts

    # ------------------------------------------------------------------ training contract

    def _resolve_strength(self, strength, regions) -> tuple[float | None, str]:
        """The call's strength and why: as given; or, when the UNet is strength-conditioned and no region has a
        strength, the training median from the contract (logged). Warns when a strength lies outside the range
        seen in training (q01–q99)."""
        conditioned = bool(getattr(self.unet.config, "motion_strength_embedding", False))
        given = [float(r["strength"] if isinstance(r, dict) else r.strength) for r in (regions or [])
                 if (r.get("strength") if isinstance(r, dict) else r.strength) is not None]
        if strength is not None:
            given.append(float(strength))
            reason = "given"
        elif not conditioned:
            return None, "the model has no strength conditioning"
        elif regions is not None and len(given) == len(regions):
            return None, "given per region"
        else:
            contract = self.training_contract
            median = None if contract is None else contract.median_strength
            if median is None:
                logger.warning("strength=None on a strength-conditioned model whose export records no training "
                               "strengths (an export older than the training contract): sampling without the "
                               "strength embedding, a state the model never saw in training; pass strength=...")
                return None, "not given and no training contract: strength embedding left out"
            strength = median
            reason = f"not given: the median strength of the training clips ({median:.3g} px per frame pair)"
            logger.info("strength=None on a strength-conditioned model: using the median strength of the training "
                        "clips, %.3g px per frame pair (training contract)", median)
        contract = self.training_contract
        low_high = None if contract is None else contract.strength_range
        if low_high is not None and conditioned:
            low, high = low_high
            outside = [s for s in given + ([strength] if strength is not None else []) if not low <= s <= high]
            if outside:
                logger.warning("strength %s is outside the range seen in training [%.3g, %.3g] (1st-99th "
                               "percentile); the model extrapolates there", sorted(set(outside)), low, high)
        return strength, reason

    def _resolve_frame_stride(self, frame_stride) -> float | None:
        """The stride passed to a stride-conditioned UNet: as given, else the training stride of the contract.
        None for a UNet without stride conditioning (a given stride is then ignored)."""
        if not getattr(self.unet.config, "frame_stride_embedding", False):
            return None
        if frame_stride is not None:
            return float(frame_stride)
        contract = self.training_contract
        if contract is None or contract.frame_stride is None:
            logger.warning("frame_stride=None on a stride-conditioned model with no recorded training stride: the "
                           "stride embedding is left out; pass frame_stride=...")
            return None
        return float(contract.frame_stride)

    @property
    def default_fps(self) -> float:
        """fps to write videos at: the effective fps of the training clips (native fps / stride), else 8."""
        contract = self.training_contract
        return float(contract.fps) if contract is not None and contract.fps else 8.0

    # ------------------------------------------------------------------ guidance plan

    def _plan_branches(self, regions: list[Region], latent_masks: list[torch.Tensor], negative: list[str],
                       strength, background_prompt, batch_size: int, do_cfg: bool, do_image_cfg: bool,
                       guidance_scale: float, image_guidance_scale: float | None, guided_at) -> "_GuidancePlan":
        """Which UNet inputs (branches) a step needs and how their predictions combine (module docstring)."""
        plan = _GuidancePlan(slots=[negative], do_cfg=do_cfg, do_image_cfg=do_image_cfg,
                             guidance_scale=guidance_scale, image_guidance_scale=image_guidance_scale)
        multi = len(regions) > 1
        region_slots = []
        for k, region in enumerate(regions):
            prompts = self._prompt_list(region.prompt, batch_size, "prompt" if not multi else f"regions[{k}].prompt")
            region_slots.append(plan.slot(prompts))
        region_weights: list[torch.Tensor | None] = [None]
        background = bg_strength = bg_slot = None
        if multi:
            total = torch.stack(latent_masks).sum(0)
            region_weights = [(m / total.clamp(min=1))[:, :, None] for m in latent_masks]
            background = 1 - torch.stack(region_weights).sum(0)
            strengths = [r.strength for r in regions if r.strength is not None]
            bg_strength = strength if strength is not None else (min(strengths) if strengths else None)
            if background_prompt is not None:
                bg_slot = plan.slot(self._prompt_list(background_prompt, batch_size, "background_prompt"))

        def combos(guided: bool):
            out = [(weight, plan.terms(slot, r.strength, guided))
                   for weight, slot, r in zip(region_weights, region_slots, regions)]
            if multi:
                bg_terms = [(plan.branch(0, bg_strength), 1.0)] if bg_slot is None else \
                    plan.terms(bg_slot, bg_strength, guided)
                out.append((background, bg_terms))
            return out

        plan.guided = combos(True)
        # plain combos (outside the guidance interval) use branches the guided ones compute anyway
        plan.plain = combos(False) if guided_at is not None else plan.guided
        return plan

    def _branch_conditions(self, plan: "_GuidancePlan", slot_embeds: list[torch.Tensor], null_embeds: torch.Tensor,
                           union: torch.Tensor, first_frame: torch.Tensor, frame_stride, batch_size: int,
                           device) -> dict:
        """The UNet's condition kwargs for all branches stacked (each a batch of B)."""
        n = len(plan.branches)
        text = torch.cat([slot_embeds[slot] for slot, _, _ in plan.branches])
        motion = None
        if self.unet.config.motion_augmented_attention:
            # MA's null input is what training dropped to: the empty prompt, also with a negative prompt.
            motion = torch.cat([null_embeds if slot == 0 else slot_embeds[slot] for slot, _, _ in plan.branches])
        zero_first = torch.zeros_like(first_frame)
        cond = dict(
            encoder_hidden_states=text,
            region_mask=union.repeat(n, 1, 1, 1),
            first_frame_latent=torch.cat([first_frame if img else zero_first for _, _, img in plan.branches]),
            motion_prompt_embeds=motion,
            frame_stride=None if frame_stride is None else
            torch.as_tensor(frame_stride, dtype=torch.float32, device=device).expand(batch_size).repeat(n),
        )
        branch_strengths = [s for _, s, _ in plan.branches]
        if any(s is not None for s in branch_strengths):
            if any(s is None for s in branch_strengths):
                raise ValueError("strength: give a strength to every region (or to the call), or to none")
            cond["motion_strength"] = torch.tensor(branch_strengths, dtype=torch.float32,
                                                   device=device).repeat_interleave(batch_size)
        return cond

    def prepare_latents(self, shape: tuple, dtype, device, generator, latents: torch.Tensor | None) -> torch.Tensor:
        """Initial noise ``(B, C, F, h, w)`` scaled by ``init_noise_sigma`` (as AnimateDiffPipeline)."""
        if latents is None:
            latents = randn_tensor(shape, generator=generator, device=device, dtype=dtype)
        elif tuple(latents.shape) != shape:
            raise ValueError(f"latents: expected shape {shape} (B, C, num_frames, H/{self.vae_scale_factor}, "
                             f"W/{self.vae_scale_factor}), got {tuple(latents.shape)}")
        else:
            latents = latents.to(device=device, dtype=dtype)
        return latents * self.scheduler.init_noise_sigma

    def _extra_step_kwargs(self, generator, eta: float) -> dict:
        params = set(inspect.signature(self.scheduler.step).parameters)
        return {k: v for k, v in (("eta", eta), ("generator", generator)) if k in params}

    def _output_frames(self, latents: torch.Tensor, output_type: str, decode_chunk_size: int):
        """Latents → frames in ``output_type`` (see :class:`FollowYourClickPipelineOutput`)."""
        if output_type == "latent":
            return latents
        frames = self.decode_latents(latents, decode_chunk_size)  # (B, F, 3, H, W) in [0, 1]
        if output_type == "pt":
            return frames
        frames = frames.permute(0, 1, 3, 4, 2).cpu().numpy()
        if output_type == "np":
            return frames
        uint8 = (frames * 255).round().astype(np.uint8)
        return [[PIL.Image.fromarray(frame) for frame in video] for video in uint8]

    # ------------------------------------------------------------------ sampling

    @torch.no_grad()
    def __call__(self, image, clicks: Sequence[Sequence[float]] | None = None, mask=None,
                 prompt: str | list[str] | None = "", strength: float | None = None, num_frames: int = 16,
                 num_inference_steps: int = 25, guidance_scale: float = 7.5,
                 negative_prompt: str | list[str] | None = None,
                 negative_clicks: Sequence[Sequence[float]] | None = None,
                 regions: Sequence[Region | dict] | None = None, background_prompt: str | None = None,
                 image_guidance_scale: float | None = None,
                 guidance_interval: Sequence[float] | None = None, frame_stride: float | None = None, eta: float = 0.0,
                 generator: torch.Generator | list[torch.Generator] | None = None,
                 latents: torch.Tensor | None = None, output_type: str = "np", return_dict: bool = True,
                 callback_on_step_end: Callable | None = None,
                 callback_on_step_end_tensor_inputs: Sequence[str] = ("latents",), segmenter=None,
                 decode_chunk_size: int = 16, num_videos_per_prompt: int = 1,
                 prompt_embeds: torch.Tensor | None = None, negative_prompt_embeds: torch.Tensor | None = None):
        """Animate the clicked / masked region(s) of ``image``.

        Args:
            image: PIL image (RGB, RGBA or L), uint8 (H, W, 3) array, or (B, 3, H, W) float tensor in [-1, 1];
                H and W multiples of the VAE x UNet downsampling (8 for the toy model, 64 for SD-1.5).
            clicks: (x, y) pixel clicks on the object, x in [0, W), y in [0, H); segmented by ``segmenter``
                (default ``self.segmenter``). ``negative_clicks`` remove what they hit. A mask passed here is an
                error (pass it as ``mask=``).
            mask: instead of clicks: bool/uint8 (H, W), PIL or (B|1, 1, H, W) tensor, non-empty, the image's size.
            prompt: short motion prompt(s), e.g. "move left"; one string or one per batch item.
            strength: motion strength, pixels per frame pair at the model's reference resolution (the training
                label unit, finite, >= 0). None on a strength-conditioned model: the median strength of the
                training clips recorded in the export's training contract (logged; the output's ``strength``
                says which was used); an export without a contract leaves the embedding out, with a warning. A
                strength outside the training range (1st–99th percentile) warns.
            num_frames: in [1, unet.config.motion_max_seq_length].
            guidance_scale: text CFG weight (finite, >= 0; > 1 enables it; the unconditional branch uses
                ``negative_prompt`` in the spatial attention and the empty prompt in the motion-augmented
                attention, as training's null condition).
            regions: several objects, each a :class:`Region` (or dict) with its own clicks/mask, prompt and
                optional strength; replaces clicks / mask / prompt (see the module docstring).
            background_prompt: prompt acting outside every region when there are several; None → the negative
                prompt's (unconditional) prediction.
            image_guidance_scale: None/1 → no image guidance; else InstructPix2Pix-style guidance on the
                first-frame latent (null = zeros, kept mask).
            guidance_interval: ``(t_min, t_max)`` in training timesteps (``[0, num_train_timesteps]``): text and
                image guidance only at steps with ``t_min <= t <= t_max``; other steps use the conditional
                prediction (prompt and image) unguided. None → guidance at every step.
            frame_stride: source frames between output frames (finite, > 0), for models built with
                ``frame_stride_embedding``; None → the training stride of the contract.
            eta, generator, latents: as diffusers; ``latents`` (B * num_videos_per_prompt, 4, F, h, w) is the
                initial noise.
            output_type: "pil" (a list of PIL frames per video), "np", "pt" or "latent".
            num_videos_per_prompt: videos per image (different noise), as diffusers.
            prompt_embeds / negative_prompt_embeds: ``(B, L, D)`` or ``(1, L, D)`` text-encoder states replacing
                ``prompt`` / ``negative_prompt`` (one region only).
            callback_on_step_end: ``fn(pipe, step, t, {name: tensor})`` → dict that may replace "latents";
                names from ``callback_on_step_end_tensor_inputs`` ⊂ {"latents", "noise_pred"}. With a
                ``first_frame_residual`` UNet these are residuals to the image latent, added back after the last step.

        Returns:
            :class:`FollowYourClickPipelineOutput` (or ``(frames,)`` when ``return_dict=False``).
        """
        # 1. Check inputs
        if regions is None and clicks is not None and _looks_like_mask(clicks):
            raise ValueError("clicks: got what looks like a mask (an image, a 2-D array or a (B, 1, H, W) tensor); "
                             "pass masks as mask=..., clicks as a list of (x, y) points")
        check_number("strength", strength, allow_none=True)
        check_number("frame_stride", frame_stride, allow_none=True, positive=True)
        if not isinstance(num_videos_per_prompt, int) or num_videos_per_prompt < 1:
            raise ValueError(f"num_videos_per_prompt must be an integer >= 1, got {num_videos_per_prompt!r}")
        if (prompt_embeds is not None or negative_prompt_embeds is not None) and regions is not None:
            raise ValueError("prompt_embeds / negative_prompt_embeds: only with one region (not with regions=)")
        for k, region in enumerate(regions or []):
            check_number(f"regions[{k}].strength", region.get("strength") if isinstance(region, dict) else
                         region.strength, allow_none=True)
        device = self._execution_device
        image = _image_to_tensor(image).to(device)
        self.check_inputs(image, num_frames, num_inference_steps, guidance_scale, image_guidance_scale, output_type,
                          callback_on_step_end_tensor_inputs)
        guided_at = self._guidance_interval(guidance_interval)

        # 2. Training contract: default strength and stride
        strength, strength_reason = self._resolve_strength(strength, regions)
        frame_stride = self._resolve_frame_stride(frame_stride)

        # 3. Regions: clicks → masks, latent masks (one pooling rule, as in training)
        # given embeddings take a slot of their own, filled in step 5
        prompt = PROMPT_EMBEDS_SLOT if prompt_embeds is not None else (prompt or "")
        negative_prompt = NEGATIVE_EMBEDS_SLOT if negative_prompt_embeds is not None else negative_prompt
        regions, pixel_masks, segmenter_name = self._regions(image, clicks, negative_clicks, mask, prompt,
                                                             strength, regions, segmenter)
        if num_videos_per_prompt > 1:
            image = image.repeat_interleave(num_videos_per_prompt, 0)
            pixel_masks = [m.repeat_interleave(num_videos_per_prompt, 0) for m in pixel_masks]
            regions = [Region(_repeat_prompt(r.prompt, num_videos_per_prompt), r.clicks, r.negative_clicks, r.mask,
                              r.strength) for r in regions]
            if not isinstance(negative_prompt, str) and negative_prompt is not None:
                negative_prompt = _repeat_prompt(negative_prompt, num_videos_per_prompt)
        batch_size = image.shape[0]
        first_frame = self.encode_first_frame(image).to(device)
        dtype = first_frame.dtype
        h, w = first_frame.shape[-2:]
        latent_masks = [pool_mask(m.to(device), (h, w)).to(dtype) for m in pixel_masks]  # (B, 1, h, w) each
        union = torch.stack(latent_masks).amax(0)

        # 4. Guidance plan: branches (prompt slot, strength, image on/off) and how their predictions combine
        do_cfg = guidance_scale > 1.0
        do_image_cfg = image_guidance_scale is not None and image_guidance_scale != 1.0
        plan = self._plan_branches(regions, latent_masks, self._prompt_list(negative_prompt or "", batch_size,
                                                                            "negative_prompt"),
                                   strength, background_prompt, batch_size, do_cfg, do_image_cfg, guidance_scale,
                                   image_guidance_scale, guided_at)

        # 5. Encode prompts (or take the given embeddings) and build the UNet's conditions
        given = {PROMPT_EMBEDS_SLOT: ("prompt_embeds", prompt_embeds),
                 NEGATIVE_EMBEDS_SLOT: ("negative_prompt_embeds", negative_prompt_embeds)}
        unique = list(dict.fromkeys(p for slot in plan.slots for p in slot if p not in given)) + [""]
        encoded = self.encode_prompt(unique, device)
        null_embeds = encoded[[len(unique) - 1] * batch_size]
        slot_embeds = []  # (B, L, D) each
        for slot in plan.slots:
            if slot[0] in given:
                name, embeds = given[slot[0]]
                slot_embeds.append(_batch_embeds(embeds, batch_size, num_videos_per_prompt, name).to(device))
            else:
                slot_embeds.append(encoded[[unique.index(p) for p in slot]])
        cond = self._branch_conditions(plan, slot_embeds, null_embeds, union, first_frame, frame_stride, batch_size,
                                       device)
        n = len(plan.branches)

        # 6. Timesteps and initial noise
        self.scheduler.set_timesteps(num_inference_steps, device=device)
        timesteps = self.scheduler.timesteps
        latents = self.prepare_latents((batch_size, self.unet.config.latent_channels, num_frames, h, w),
                                       slot_embeds[0].dtype, device, generator, latents)
        extra_step_kwargs = self._extra_step_kwargs(generator, eta)

        # 7. Denoising loop
        self._num_timesteps = len(timesteps)
        with self.progress_bar(total=len(timesteps)) as progress_bar:
            for i, t in enumerate(timesteps):
                model_in = torch.cat([latents] * n) if n > 1 else latents
                model_in = self.scheduler.scale_model_input(model_in, t)
                preds = self.unet(model_in, t, **cond).sample.chunk(n)
                noise_pred = plan.combine(preds, guided=guided_at is None or guided_at(t))
                latents = self.scheduler.step(noise_pred, t, latents, **extra_step_kwargs).prev_sample
                if callback_on_step_end is not None:
                    local = {"latents": latents, "noise_pred": noise_pred}
                    out = callback_on_step_end(self, i, t, {k: local[k] for k in callback_on_step_end_tensor_inputs})
                    latents = (out or {}).pop("latents", latents)
                progress_bar.update()

        # 8. Decode and return
        if self.unet.config.first_frame_residual:  # the UNet denoised video - image latent (FollowYourClickUNet)
            latents = latents + first_frame[:, :, None].to(latents.dtype)
        frames = self._output_frames(latents, output_type, decode_chunk_size)
        self.maybe_free_model_hooks()
        masks = torch.cat(pixel_masks, 1).bool().cpu().numpy()
        if not return_dict:
            return (frames,)
        return FollowYourClickPipelineOutput(
            frames=frames, masks=masks, segmenter=segmenter_name,
            strengths=[r.strength for r in regions], strength_reason=strength_reason, frame_stride=frame_stride,
            fps=self.default_fps)


@dataclass
class _GuidancePlan:
    """Branches = distinct (prompt slot, strength, image on/off) UNet inputs; slot 0 is the negative prompt.
    ``guided`` / ``plain``: per step kind, ``(latent weight or None, [(branch, weight), ...])`` combinations."""

    slots: list
    do_cfg: bool
    do_image_cfg: bool
    guidance_scale: float
    image_guidance_scale: float | None
    branches: list = dataclasses.field(default_factory=list)
    guided: list = dataclasses.field(default_factory=list)
    plain: list = dataclasses.field(default_factory=list)

    def slot(self, prompts: list[str]) -> int:
        if prompts not in self.slots:
            self.slots.append(prompts)
        return self.slots.index(prompts)

    def branch(self, slot: int, s: float | None, with_image: bool = True) -> int:
        key = (slot, None if s is None else float(s), with_image)
        if key not in self.branches:
            self.branches.append(key)
        return self.branches.index(key)

    def terms(self, slot: int, s: float | None, guided: bool = True) -> list[tuple[int, float]]:
        """Linear combination (branch, weight) giving this slot's guided (or, outside the guidance interval,
        plain conditional) prediction."""
        if not guided or (not self.do_cfg and not self.do_image_cfg):
            return [(self.branch(slot, s), 1.0)]
        g = self.guidance_scale
        if not self.do_image_cfg:  # uncond + g (cond - uncond)
            return [(self.branch(0, s), 1.0 - g), (self.branch(slot, s), g)]
        gi, gt = self.image_guidance_scale, g if self.do_cfg else 1.0
        # InstructPix2Pix: u + gi (img - u) + gt (full - img), u = no text & no image, img = image only.
        return [(self.branch(0, s, False), 1.0 - gi), (self.branch(0, s), gi - gt), (self.branch(slot, s), gt)]

    def combine(self, preds: Sequence[torch.Tensor], guided: bool) -> torch.Tensor:
        noise_pred = None
        for weight, terms in (self.guided if guided else self.plain):
            part = preds[terms[0][0]] if len(terms) == 1 and terms[0][1] == 1.0 else _combine(preds, terms)
            part = part if weight is None else weight * part
            noise_pred = part if noise_pred is None else noise_pred + part
        return noise_pred


def check_number(name: str, value, allow_none: bool = False, positive: bool = False) -> None:
    """ValueError naming ``name`` unless ``value`` is a finite number >= 0 (> 0 with ``positive``; None allowed
    with ``allow_none``)."""
    if value is None and allow_none:
        return
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(number) or number < 0 or (positive and number == 0):
        raise ValueError(f"{name} must be a finite number {'> 0' if positive else '>= 0'}, got {value!r}")


def _repeat_prompt(prompt, times: int):
    return prompt if isinstance(prompt, str) else [p for p in prompt for _ in range(times)]


def _batch_embeds(embeds: torch.Tensor, batch_size: int, per_prompt: int, name: str) -> torch.Tensor:
    """(1 | B_images, L, D) → (batch_size, L, D)."""
    if not torch.is_tensor(embeds) or embeds.ndim != 3:
        raise ValueError(f"{name}: expected a (B, L, D) tensor, got {type(embeds).__name__}")
    if embeds.shape[0] == 1:
        return embeds.expand(batch_size, -1, -1)
    if embeds.shape[0] * per_prompt == batch_size:
        return embeds.repeat_interleave(per_prompt, 0)
    if embeds.shape[0] == batch_size:
        return embeds
    raise ValueError(f"{name}: batch {embeds.shape[0]} does not match the image batch {batch_size // per_prompt}")


def _combine(preds: Sequence[torch.Tensor], terms: list[tuple[int, float]]) -> torch.Tensor:
    """``sum weight * preds[index]``, written as AnimateDiff writes CFG when it is ``uncond + g (cond - uncond)``
    so the two pipelines agree to the last bit."""
    if len(terms) == 2:
        (u, wu), (c, wc) = terms
        if abs(wu + wc - 1.0) < 1e-12:
            return preds[u] + wc * (preds[c] - preds[u])
    if len(terms) == 3:
        (u, _), (i, gi_minus_gt), (c, gt) = terms
        gi = gi_minus_gt + gt
        return preds[u] + gi * (preds[i] - preds[u]) + gt * (preds[c] - preds[i])
    return sum(w * preds[k] for k, w in terms)
