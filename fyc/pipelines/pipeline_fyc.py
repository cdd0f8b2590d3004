"""FollowYourClickPipeline: image + region mask + short motion prompt + strength → video (diffusers pipeline)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import PIL.Image
import torch
import torch.nn.functional as F
from diffusers import DiffusionPipeline
from diffusers.utils import BaseOutput
from diffusers.utils.torch_utils import randn_tensor

# diffusers resolves a saved pipeline's components by the module path in model_index.json ("fyc.models.unet",
# "fyc.models.pixel_autoencoder") and refuses modules that are not imported yet: import them with the pipeline.
import fyc.models.pixel_autoencoder  # noqa: E402,F401
import fyc.models.unet  # noqa: E402,F401


@dataclass
class FollowYourClickPipelineOutput(BaseOutput):
    """frames: ``(B, F, H, W, 3)`` float in [0, 1] (output_type "np"), ``(B, F, 3, H, W)`` tensor ("pt"), or
    latents ``(B, 4, F, h, w)`` ("latent")."""

    frames: np.ndarray | torch.Tensor


def _image_to_tensor(image, name: str = "image") -> torch.Tensor:
    """PIL / uint8 HWC ndarray / float tensor (B,3,H,W) in [-1,1] → float tensor (B, 3, H, W) in [-1, 1]."""
    if isinstance(image, PIL.Image.Image):
        if image.mode not in ("RGB", "RGBA", "L"):
            raise ValueError(f"{name}: unsupported image mode {image.mode!r}; expected RGB, RGBA or L")
        image = np.asarray(image.convert("RGB"))
    if isinstance(image, np.ndarray):
        if image.ndim != 3 or image.shape[-1] != 3 or image.dtype != np.uint8:
            raise ValueError(f"{name}: expected a uint8 (H, W, 3) array, got {image.dtype} {image.shape}")
        image = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 127.5 - 1.0
    if not torch.is_tensor(image) or image.ndim != 4 or image.shape[1] != 3:
        raise ValueError(f"{name}: expected PIL image, uint8 (H, W, 3) array or (B, 3, H, W) tensor in [-1, 1]")
    return image


def _mask_to_tensor(mask, size: tuple[int, int]) -> torch.Tensor:
    """bool/uint8 (H, W) array, PIL "L" image or (B, 1, H, W) tensor → float (B, 1, H, W) in {0, 1}."""
    if isinstance(mask, PIL.Image.Image):
        mask = np.asarray(mask.convert("L"))
    if isinstance(mask, np.ndarray):
        if mask.ndim != 2:
            raise ValueError(f"mask: expected a (H, W) array, got shape {mask.shape}")
        mask = torch.from_numpy(mask > 0)[None, None].float()
    if not torch.is_tensor(mask) or mask.ndim != 4 or mask.shape[1] != 1:
        raise ValueError("mask: expected a (H, W) array, a PIL image or a (B, 1, H, W) tensor")
    if tuple(mask.shape[-2:]) != tuple(size):
        raise ValueError(f"mask: size {tuple(mask.shape[-2:])} does not match image size {tuple(size)}")
    if mask.sum() == 0:
        raise ValueError("mask: the region is empty; click on an object or pass a non-empty mask")
    return (mask > 0.5).float()


class FollowYourClickPipeline(DiffusionPipeline):
    """Regional image animation (Follow-Your-Click).

    Components: ``vae`` (AutoencoderKL or the toy PixelAutoencoder), ``text_encoder`` (CLIPTextModel),
    ``tokenizer`` (CLIPTokenizer), ``unet`` (:class:`fyc.models.FollowYourClickUNet`), ``scheduler``
    (DDIM with v-prediction, zero-terminal SNR, trailing spacing; see ``fyc.models.schedulers``).
    The short prompt feeds both the spatial cross-attention and the motion-augmented attention (paper §4.3).
    Classifier-free guidance is over text: both branches see the same mask and first-frame latent.
    """

    model_cpu_offload_seq = "text_encoder->unet->vae"
    _callback_tensor_inputs = ["latents"]

    def __init__(self, vae, text_encoder, tokenizer, unet, scheduler):
        super().__init__()
        self.register_modules(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet, scheduler=scheduler)
        self.vae_scale_factor = 2 ** (len(self.vae.config.block_out_channels) - 1)

    @torch.no_grad()
    def encode_prompt(self, prompts: list[str], device: torch.device) -> torch.Tensor:
        """list of str → text-encoder hidden states ``(B, 77, D)``."""
        ids = self.tokenizer(prompts, padding="max_length", max_length=self.tokenizer.model_max_length,
                             truncation=True, return_tensors="pt").input_ids.to(device)
        return self.text_encoder(ids)[0]

    @torch.no_grad()
    def encode_first_frame(self, image: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) in [-1, 1] → (B, 4, h, w); deterministic (the distribution's mode, not a sample)."""
        latent = self.vae.encode(image.to(self.vae.dtype)).latent_dist.mode()
        return latent * self.vae.config.scaling_factor

    @torch.no_grad()
    def decode_latents(self, latents: torch.Tensor) -> torch.Tensor:
        """(B, 4, F, h, w) → pixels (B, F, 3, H, W) in [0, 1]."""
        b, c, f, h, w = latents.shape
        flat = latents.permute(0, 2, 1, 3, 4).reshape(b * f, c, h, w) / self.vae.config.scaling_factor
        frames = self.vae.decode(flat.to(self.vae.dtype)).sample.float()
        frames = (frames / 2 + 0.5).clamp(0, 1)
        return frames.reshape(b, f, *frames.shape[1:])

    def check_inputs(self, image: torch.Tensor, num_frames: int, strength) -> None:
        max_frames = self.unet.config.motion_max_seq_length
        if not 1 <= num_frames <= max_frames:
            raise ValueError(f"num_frames must be in [1, {max_frames}] (the motion modules' max sequence length), "
                             f"got {num_frames}")
        h, w = image.shape[-2:]
        if h % (self.vae_scale_factor * 2) or w % (self.vae_scale_factor * 2):
            raise ValueError(f"image: height and width must be divisible by {self.vae_scale_factor * 2}, got {h}x{w}")
        if strength is not None and float(torch.as_tensor(strength).min()) < 0:
            raise ValueError(f"strength must be >= 0 (pixels per frame pair), got {strength}")

    @torch.no_grad()
    def __call__(self, image, mask, prompt: str | list[str] = "", strength: float | None = None,
                 num_frames: int = 16, num_inference_steps: int = 25, guidance_scale: float = 7.5,
                 negative_prompt: str | list[str] | None = None, frame_stride: float | None = None,
                 generator: torch.Generator | None = None, latents: torch.Tensor | None = None,
                 output_type: str = "np", return_dict: bool = True,
                 callback_on_step_end: Callable | None = None,
                 callback_on_step_end_tensor_inputs: list[str] = ("latents",)):
        """Animate ``image`` inside ``mask``.

        Args:
            image: PIL image, uint8 (H, W, 3) array or (B, 3, H, W) tensor in [-1, 1].
            mask: region to animate: bool/uint8 (H, W), PIL "L" or (B, 1, H, W) tensor; same size as the image.
            prompt: short motion prompt(s), e.g. "move left".
            strength: motion strength in pixels per frame pair at the model's reference resolution (the unit of the
                training labels); None leaves the strength embedding out.
            latents: optional initial noise (B, 4, F, h, w) for reproducibility.
        """
        device = self._execution_device
        image = _image_to_tensor(image).to(device)
        self.check_inputs(image, num_frames, strength)
        batch_size = image.shape[0]
        mask = _mask_to_tensor(mask, image.shape[-2:]).to(device)
        if mask.shape[0] != batch_size:
            mask = mask.expand(batch_size, -1, -1, -1)
        prompts = [prompt] * batch_size if isinstance(prompt, str) else list(prompt)
        negatives = [negative_prompt or ""] * batch_size if not isinstance(negative_prompt, list) else negative_prompt
        do_cfg = guidance_scale > 1.0

        text = self.encode_prompt(prompts, device)
        if do_cfg:
            text = torch.cat([self.encode_prompt(negatives, device), text])
        first_frame = self.encode_first_frame(image)
        h, w = first_frame.shape[-2:]
        latent_mask = (F.adaptive_max_pool2d(mask, (h, w)) > 0.5).to(first_frame.dtype)

        self.scheduler.set_timesteps(num_inference_steps, device=device)
        shape = (batch_size, self.unet.config.latent_channels, num_frames, h, w)
        if latents is None:
            latents = randn_tensor(shape, generator=generator, device=device, dtype=first_frame.dtype)
        elif tuple(latents.shape) != shape:
            raise ValueError(f"latents: expected shape {shape}, got {tuple(latents.shape)}")
        latents = latents.to(device) * self.scheduler.init_noise_sigma

        reps = 2 if do_cfg else 1
        cond = dict(
            encoder_hidden_states=text,
            region_mask=latent_mask.repeat(reps, 1, 1, 1),
            first_frame_latent=first_frame.repeat(reps, 1, 1, 1),
            motion_prompt_embeds=text if self.unet.config.motion_augmented_attention else None,
            motion_strength=None if strength is None else
            torch.as_tensor(strength, dtype=first_frame.dtype, device=device).expand(batch_size).repeat(reps),
            frame_stride=None if frame_stride is None else
            torch.as_tensor(frame_stride, dtype=first_frame.dtype, device=device).expand(batch_size).repeat(reps),
        )
        for i, t in enumerate(self.progress_bar(self.scheduler.timesteps)):
            model_in = torch.cat([latents] * reps)
            model_in = self.scheduler.scale_model_input(model_in, t)
            pred = self.unet(model_in, t, **cond).sample
            if do_cfg:
                uncond, cond_pred = pred.chunk(2)
                pred = uncond + guidance_scale * (cond_pred - uncond)
            latents = self.scheduler.step(pred, t, latents).prev_sample
            if callback_on_step_end is not None:
                out = callback_on_step_end(self, i, t, {k: locals()[k] for k in callback_on_step_end_tensor_inputs})
                latents = out.pop("latents", latents)

        if output_type == "latent":
            frames = latents
        else:
            frames = self.decode_latents(latents)
            if output_type == "np":
                frames = frames.permute(0, 1, 3, 4, 2).cpu().numpy()
            elif output_type != "pt":
                raise ValueError(f"output_type must be 'np', 'pt' or 'latent', got {output_type!r}")
        self.maybe_free_model_hooks()
        return FollowYourClickPipelineOutput(frames=frames) if return_dict else (frames,)
