"""FollowYourClickPipeline: image + clicked region(s) + short motion prompt(s) + strength → video.

A diffusers ``DiffusionPipeline`` whose sampler is AnimateDiff's (``diffusers.AnimateDiffPipeline``): same prompt
encoding, initial noise (``latents * init_noise_sigma``), CFG arithmetic ``uncond + g * (cond - uncond)``,
scheduler steps and decoding (``latents / scaling_factor``, ``x / 2 + 0.5`` clamped). With the Follow-Your-Click
additions at their zero initialisation it returns AnimateDiff's frames (tested). What it adds:

* the UNet's conditions: region mask (latent size, max-pooled, repeated over frames), first-frame latent (VAE
  mode, deterministic), short motion prompt (fed to both the spatial cross-attention and the motion-augmented
  attention, paper §4.3), motion strength;
* clicks → mask through a segmenter (:mod:`fyc.pipelines.click_to_mask`: SAM, or the region-growing fallback);
* optional image guidance (``image_guidance_scale``; the null image is a zero first-frame latent, as in training's
  ``condition_dropout.first_frame``), InstructPix2Pix arithmetic;
* optional guidance interval (``guidance_interval=(t_min, t_max)``): guidance only at the steps whose timestep lies
  in it, the plain conditional prediction elsewhere (Kynkäänniemi et al. 2024, arXiv 2404.07724, limit guidance to
  an interval of noise levels; here in training timesteps). Outside the interval every branch is still computed
  (no saving); docs/toy_study.md measures ``(500, 1000)`` on the toy study;
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

import inspect
from dataclasses import dataclass
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
from fyc.pipelines.click_to_mask import RegionGrowSegmenter

SUPPORTED_IMAGE_MODES = ("RGB", "RGBA", "L")


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
    """frames: ``(B, F, H, W, 3)`` float in [0, 1] (output_type "np"), ``(B, F, 3, H, W)`` tensor in [0, 1] ("pt"),
    or latents ``(B, 4, F, h, w)`` ("latent"). masks: bool ``(B, R, H, W)``, the pixel mask of each region as
    used. segmenter: name of the segmenter that turned clicks into masks (None when only masks were given)."""

    frames: np.ndarray | torch.Tensor
    masks: np.ndarray | None = None
    segmenter: str | None = None


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
        max_frames = self.unet.config.motion_max_seq_length
        if not isinstance(num_frames, int) or not 1 <= num_frames <= max_frames:
            raise ValueError(f"num_frames must be in [1, {max_frames}] (an integer; the motion modules' "
                             f"motion_max_seq_length), got {num_frames}")
        if not isinstance(num_inference_steps, int) or num_inference_steps < 1:
            raise ValueError(f"num_inference_steps must be an integer >= 1, got {num_inference_steps}")
        if guidance_scale < 0:
            raise ValueError(f"guidance_scale must be >= 0 (1 or less disables text guidance), got {guidance_scale}")
        if image_guidance_scale is not None and image_guidance_scale < 0:
            raise ValueError(f"image_guidance_scale must be >= 0 or None, got {image_guidance_scale}")
        multiple = self.vae_scale_factor * 2 ** (len(self.unet.config.block_out_channels) - 1)
        h, w = image.shape[-2:]
        if h % multiple or w % multiple:
            raise ValueError(f"image: height and width must be multiples of {multiple} (VAE factor x UNet "
                             f"downsampling), got {h}x{w}")
        if output_type not in ("np", "pt", "latent"):
            raise ValueError(f"output_type must be 'np', 'pt' or 'latent', got {output_type!r}")
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
            if region.strength is not None and float(region.strength) < 0:
                where = "strength" if len(regions) == 1 else f"regions[{k}].strength"
                raise ValueError(f"{where} must be >= 0 (pixels per frame pair), got {region.strength}")
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

    # ------------------------------------------------------------------ sampling

    @torch.no_grad()
    def __call__(self, image, clicks: Sequence[Sequence[float]] | None = None, mask=None,
                 prompt: str | list[str] = "", strength: float | None = None, num_frames: int = 16,
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
                 decode_chunk_size: int = 16):
        """Animate the clicked / masked region(s) of ``image``.

        Args:
            image: PIL image (RGB, RGBA or L), uint8 (H, W, 3) array, or (B, 3, H, W) float tensor in [-1, 1];
                H and W multiples of the VAE x UNet downsampling (8 for the toy model, 64 for SD-1.5).
            clicks: (x, y) pixel clicks on the object, x in [0, W-1], y in [0, H-1]; segmented by ``segmenter``
                (default ``self.segmenter``). ``negative_clicks`` remove what they hit.
            mask: instead of clicks: bool/uint8 (H, W), PIL or (B|1, 1, H, W) tensor, non-empty, the image's size.
                (Passing a mask as the second positional argument also works.)
            prompt: short motion prompt(s), e.g. "move left"; one string or one per batch item.
            strength: motion strength, pixels per frame pair at the model's reference resolution (the training
                label unit, >= 0); None leaves the strength embedding out.
            num_frames: in [1, unet.config.motion_max_seq_length].
            guidance_scale: text CFG weight (> 1 enables it; the unconditional branch uses ``negative_prompt``).
            regions: several objects, each a :class:`Region` (or dict) with its own clicks/mask, prompt and
                optional strength; replaces clicks / mask / prompt (see the module docstring).
            background_prompt: prompt acting outside every region when there are several; None → the negative
                prompt's (unconditional) prediction.
            image_guidance_scale: None/1 → no image guidance; else InstructPix2Pix-style guidance on the
                first-frame latent (null = zeros, kept mask).
            guidance_interval: ``(t_min, t_max)`` in training timesteps (``[0, num_train_timesteps]``): text and
                image guidance only at steps with ``t_min <= t <= t_max``; other steps use the conditional
                prediction (prompt and image) unguided. None → guidance at every step.
            frame_stride: source frames between output frames, for models built with ``frame_stride_embedding``.
            eta, generator, latents: as diffusers; ``latents`` (B, 4, F, h, w) is the initial noise.
            output_type: "np", "pt" or "latent" (see :class:`FollowYourClickPipelineOutput`).
            callback_on_step_end: ``fn(pipe, step, t, {name: tensor})`` → dict that may replace "latents";
                names from ``callback_on_step_end_tensor_inputs`` ⊂ {"latents", "noise_pred"}. With a
                ``first_frame_residual`` UNet these are residuals to the image latent, added back after the last step.

        Returns:
            :class:`FollowYourClickPipelineOutput` (or ``(frames,)`` when ``return_dict=False``).
        """
        if regions is None and mask is None and clicks is not None and _looks_like_mask(clicks):
            clicks, mask = None, clicks  # old positional form pipe(image, mask, ...)
        device = self._execution_device
        image = _image_to_tensor(image).to(device)
        self.check_inputs(image, num_frames, num_inference_steps, guidance_scale, image_guidance_scale, output_type,
                          callback_on_step_end_tensor_inputs)
        guided_at = self._guidance_interval(guidance_interval)
        batch_size = image.shape[0]
        regions, pixel_masks, segmenter_name = self._regions(image, clicks, negative_clicks, mask, prompt, strength,
                                                             regions, segmenter)
        do_cfg = guidance_scale > 1.0
        do_image_cfg = image_guidance_scale is not None and image_guidance_scale != 1.0
        multi = len(regions) > 1

        # --- conditions
        first_frame = self.encode_first_frame(image).to(device)
        dtype = first_frame.dtype
        h, w = first_frame.shape[-2:]
        # (B, 1, h, w) each: a latent pixel belongs to a region if any of its pixels does (as in training)
        latent_masks = [(F.adaptive_max_pool2d(m.to(device), (h, w)) > 0.5).to(dtype) for m in pixel_masks]
        union = torch.stack(latent_masks).amax(0)

        # Branches = distinct (prompt slot, strength, image on/off) UNet inputs; each is a batch of B.
        neg = self._prompt_list(negative_prompt or "", batch_size, "negative_prompt")
        slots: list[list[str]] = [neg]
        region_slots = []
        for k, region in enumerate(regions):
            prompts = self._prompt_list(region.prompt, batch_size, "prompt" if not multi else f"regions[{k}].prompt")
            if prompts not in slots:
                slots.append(prompts)
            region_slots.append(slots.index(prompts))
        branches: list[tuple[int, float | None, bool]] = []

        def branch(slot: int, s: float | None, with_image: bool = True) -> int:
            key = (slot, None if s is None else float(s), with_image)
            if key not in branches:
                branches.append(key)
            return branches.index(key)

        def guided_terms(slot: int, s: float | None, guided: bool = True) -> list[tuple[int, float]]:
            """Linear combination (branch, weight) giving this slot's guided (or, outside the guidance interval,
            plain conditional) prediction."""
            if not guided or (not do_cfg and not do_image_cfg):
                return [(branch(slot, s), 1.0)]
            if not do_image_cfg:  # uncond + g (cond - uncond)
                return [(branch(0, s), 1.0 - guidance_scale), (branch(slot, s), guidance_scale)]
            gi, gt = image_guidance_scale, guidance_scale if do_cfg else 1.0
            # InstructPix2Pix: u + gi (img - u) + gt (full - img), u = no text & no image, img = image only.
            return [(branch(0, s, False), 1.0 - gi), (branch(0, s), gi - gt), (branch(slot, s), gt)]

        # Weighted combos (latent weight or None, terms) per step kind: guided, and plain for steps outside the
        # guidance interval (the plain terms use branches the guided ones compute anyway).
        region_weights: list[torch.Tensor | None] = [None]
        if multi:
            total = torch.stack(latent_masks).sum(0)
            region_weights = [(m / total.clamp(min=1))[:, :, None] for m in latent_masks]
            background = 1 - torch.stack(region_weights).sum(0)
            strengths = [r.strength for r in regions if r.strength is not None]
            bg_strength = strength if strength is not None else (min(strengths) if strengths else None)
            if background_prompt is not None:
                bg_prompts = self._prompt_list(background_prompt, batch_size, "background_prompt")
                if bg_prompts not in slots:
                    slots.append(bg_prompts)

        def make_combos(guided: bool) -> list[tuple[torch.Tensor | None, list[tuple[int, float]]]]:
            combos = [(weight, guided_terms(slot, r.strength, guided))
                      for weight, slot, r in zip(region_weights, region_slots, regions)]
            if multi:
                bg_terms = [(branch(0, bg_strength), 1.0)] if background_prompt is None else \
                    guided_terms(slots.index(bg_prompts), bg_strength, guided)
                combos.append((background, bg_terms))
            return combos

        guided_combos = make_combos(True)
        plain_combos = make_combos(False) if guided_at is not None else guided_combos

        flat_prompts = [p for slot in slots for p in slot]
        unique = list(dict.fromkeys(flat_prompts))
        encoded = self.encode_prompt(unique, device)
        slot_embeds = [encoded[[unique.index(p) for p in slot]] for slot in slots]  # (B, L, D) each
        n = len(branches)
        text = torch.cat([slot_embeds[slot] for slot, _, _ in branches])
        zero_first = torch.zeros_like(first_frame)
        cond = dict(
            encoder_hidden_states=text,
            region_mask=union.repeat(n, 1, 1, 1),
            first_frame_latent=torch.cat([first_frame if img else zero_first for _, _, img in branches]),
            motion_prompt_embeds=text if self.unet.config.motion_augmented_attention else None,
            frame_stride=None if frame_stride is None else
            torch.as_tensor(frame_stride, dtype=torch.float32, device=device).expand(batch_size).repeat(n),
        )
        branch_strengths = [s for _, s, _ in branches]
        if any(s is not None for s in branch_strengths):
            if any(s is None for s in branch_strengths):
                raise ValueError("strength: give a strength to every region (or to the call), or to none")
            cond["motion_strength"] = torch.tensor(branch_strengths, dtype=torch.float32,
                                                   device=device).repeat_interleave(batch_size)

        # --- noise (as AnimateDiffPipeline.prepare_latents)
        self.scheduler.set_timesteps(num_inference_steps, device=device)
        timesteps = self.scheduler.timesteps
        shape = (batch_size, self.unet.config.latent_channels, num_frames, h, w)
        if latents is None:
            latents = randn_tensor(shape, generator=generator, device=device, dtype=text.dtype)
        elif tuple(latents.shape) != shape:
            raise ValueError(f"latents: expected shape {shape} (B, C, num_frames, H/{self.vae_scale_factor}, "
                             f"W/{self.vae_scale_factor}), got {tuple(latents.shape)}")
        else:
            latents = latents.to(device=device, dtype=text.dtype)
        latents = latents * self.scheduler.init_noise_sigma
        extra_step_kwargs = {}
        step_params = set(inspect.signature(self.scheduler.step).parameters)
        if "eta" in step_params:
            extra_step_kwargs["eta"] = eta
        if "generator" in step_params:
            extra_step_kwargs["generator"] = generator

        self._num_timesteps = len(timesteps)
        with self.progress_bar(total=len(timesteps)) as progress_bar:
            for i, t in enumerate(timesteps):
                model_in = torch.cat([latents] * n) if n > 1 else latents
                model_in = self.scheduler.scale_model_input(model_in, t)
                preds = self.unet(model_in, t, **cond).sample.chunk(n)
                noise_pred = None
                combos = guided_combos if guided_at is None or guided_at(t) else plain_combos
                for weight, terms in combos:
                    guided = preds[terms[0][0]] if len(terms) == 1 and terms[0][1] == 1.0 else \
                        _combine(preds, terms)
                    part = guided if weight is None else weight * guided
                    noise_pred = part if noise_pred is None else noise_pred + part
                latents = self.scheduler.step(noise_pred, t, latents, **extra_step_kwargs).prev_sample
                if callback_on_step_end is not None:
                    local = {"latents": latents, "noise_pred": noise_pred}
                    out = callback_on_step_end(self, i, t, {k: local[k] for k in callback_on_step_end_tensor_inputs})
                    latents = (out or {}).pop("latents", latents)
                progress_bar.update()

        if self.unet.config.first_frame_residual:  # the UNet denoised video - image latent (FollowYourClickUNet)
            latents = latents + first_frame[:, :, None].to(latents.dtype)
        if output_type == "latent":
            frames = latents
        else:
            frames = self.decode_latents(latents, decode_chunk_size)
            if output_type == "np":
                frames = frames.permute(0, 1, 3, 4, 2).cpu().numpy()
        self.maybe_free_model_hooks()
        masks = torch.cat(pixel_masks, 1).bool().cpu().numpy()
        if not return_dict:
            return (frames,)
        return FollowYourClickPipelineOutput(frames=frames, masks=masks, segmenter=segmenter_name)


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
