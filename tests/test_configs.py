"""Every config composes; the toy configs instantiate into real objects."""
from pathlib import Path

import hydra
import pytest
from omegaconf import OmegaConf

from conftest import ROOT, compose

CONFIGS = ROOT / "configs"


def _options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONFIGS / group).glob("*.yaml"))


@pytest.mark.parametrize("experiment", _options("experiment"))
def test_every_experiment_composes(experiment, tmp_path):
    cfg = compose("train", [f"experiment={experiment}", f"paths.output_dir={tmp_path}"])
    OmegaConf.resolve(cfg)  # every interpolation resolves
    assert cfg.model._target_ and cfg.data._target_ and cfg.trainer._target_ == "lightning.Trainer"


@pytest.mark.parametrize("group", ["trainer", "logger", "debug", "pretrained", "data", "model", "callbacks"])
def test_every_group_option_composes(group, tmp_path):
    for option in _options(group):
        cfg = compose("train", [f"{group}={option}", f"paths.output_dir={tmp_path}"])
        OmegaConf.resolve(cfg)


def test_evaluate_config_composes(tmp_path):
    cfg = compose("evaluate", [f"paths.output_dir={tmp_path}", "pipeline_dir=/some/where"])
    OmegaConf.resolve(cfg)
    assert cfg.mode in ("generate", "score", "all") and cfg.manifest.endswith(".jsonl")


def test_toy_config_instantiates(train_cfg_factory):
    cfg = train_cfg_factory()
    module = hydra.utils.instantiate(cfg.model, _convert_="all")
    data = hydra.utils.instantiate(cfg.data, _convert_="all")
    assert module.unet.config.in_channels == 9
    assert module.unet.config.motion_augmented_attention
    assert sum(module.trainable_counts.values()) > 0
    data.setup("fit")
    batch = next(iter(data.train_dataloader()))
    assert batch["pixel_values"].shape[1:] == (3, cfg.data.train_dataset.num_frames, 32, 32)
    assert Path(cfg.paths.toy_components).is_dir()
