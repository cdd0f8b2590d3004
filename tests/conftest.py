"""Shared fixtures: a small toy world and tiny components on disk (session-scoped), Hydra config composition.

Nothing here touches the network: HF_HUB_OFFLINE makes any accidental hub lookup fail at once.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("PROJECT_ROOT", str(ROOT))
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["WANDB_MODE"] = "offline"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def toy_root(tmp_path_factory) -> Path:
    """A toy world: 12 training and 4 held-out videos, 32x32, 8 frames."""
    from fyc.toy.world import ToyWorldConfig, write_toy_webvid

    root = tmp_path_factory.mktemp("toy")
    config = ToyWorldConfig(resolution=32, num_frames=8, speed_range=(0.5, 2.0))
    write_toy_webvid(root, "train", 12, config, first_seed=0)
    write_toy_webvid(root, "val", 4, config, first_seed=1_000_000)
    return root


@pytest.fixture(scope="session")
def toy_components(toy_root) -> Path:
    """Tiny random SD-1.5-layout components (unet, motion_adapter, vae, text_encoder, tokenizer)."""
    from fyc.toy.world import TOY_VOCABULARY
    from fyc.toy.components import build_toy_components

    return build_toy_components(toy_root / "components", TOY_VOCABULARY)


def compose(config_name: str, overrides: list[str]):
    """Compose a config from configs/ the way the entry points do (no working-dir change, no output dir)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    with initialize_config_dir(version_base="1.3", config_dir=str(ROOT / "configs")):
        return hydra_compose(config_name=config_name, overrides=overrides)


@pytest.fixture
def train_cfg_factory(toy_root, toy_components, tmp_path):
    """Build a toy training config writing to tmp_path; extra overrides may be passed."""

    def make(*overrides: str):
        return compose("train", ["experiment=toy", f"paths.toy_root={toy_root}",
                                 f"paths.output_dir={tmp_path / 'train'}", *overrides])

    return make


@pytest.fixture(scope="session")
def toy_pipeline_dir(toy_components, tmp_path_factory) -> Path:
    """An (untrained) FollowYourClickPipeline folder built from the toy components, as train.py exports it."""
    from transformers import CLIPTextModel, CLIPTokenizer

    from fyc.models.loading import load_fyc_unet
    from fyc.toy.pixel_autoencoder import PixelAutoencoder
    from fyc.models.schedulers import make_sampling_scheduler
    from fyc.pipelines import FollowYourClickPipeline

    root = toy_components
    pipe = FollowYourClickPipeline(
        vae=PixelAutoencoder.from_pretrained(root, subfolder="vae"),
        text_encoder=CLIPTextModel.from_pretrained(root, subfolder="text_encoder"),
        tokenizer=CLIPTokenizer.from_pretrained(root, subfolder="tokenizer"),
        unet=load_fyc_unet(str(root), str(root / "motion_adapter"), motion_augmented_attention=True,
                           ma_num_attention_heads=2),
        scheduler=make_sampling_scheduler(),
    )
    out = tmp_path_factory.mktemp("pipeline")
    pipe.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def toy_benchmark(toy_root) -> Path:
    """The toy benchmark manifest over the held-out split (4 items)."""
    from fyc.toy.benchmark import build_toy_benchmark

    return build_toy_benchmark(toy_root, "val", toy_root / "benchmark", resolution=32, num_frames=8)
