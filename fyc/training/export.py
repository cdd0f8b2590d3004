"""Training module → a FollowYourClickPipeline folder (diffusers layout, safetensors) that sampling loads."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

from fyc.models.schedulers import make_sampling_scheduler
from fyc.pipelines.pipeline_fyc import FollowYourClickPipeline


def export_pipeline(module, out_dir: str | Path) -> Path:
    """Save ``module``'s UNet, VAE, text encoder and tokenizer with a DDIM sampling scheduler to ``out_dir``.

    Written to a temporary sibling folder first and renamed, so a crash never leaves a half-written pipeline.
    """
    out_dir = Path(out_dir)
    tmp = out_dir.with_name(out_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    pipe = FollowYourClickPipeline(vae=module.vae, text_encoder=module.text_encoder, tokenizer=module.tokenizer,
                                   unet=module.unet, scheduler=make_sampling_scheduler())
    pipe.save_pretrained(tmp)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    os.replace(tmp, out_dir)
    return out_dir
