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


@pytest.mark.parametrize("group", ["trainer", "logger", "debug", "pretrained", "data", "model", "callbacks", "ablation"])
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


def _flatten(node, prefix=""):
    if isinstance(node, dict):
        return {k: v for key, value in node.items() for k, v in _flatten(value, f"{prefix}{key}.").items()}
    return {prefix[:-1]: node}


@pytest.mark.parametrize("experiment", ["toy", "paper_stage2"])
@pytest.mark.parametrize("ablation", _options("ablation"))
def test_every_ablation_composes_on_toy_and_paper(experiment, ablation, tmp_path):
    """An ablation changes exactly what its file sets (and declares ablation_meta, fyc/research/toy_study.py)."""
    from fyc.research.toy_study import load_ablations

    base = compose("train", [f"experiment={experiment}", f"paths.output_dir={tmp_path}"])
    cfg = compose("train", [f"experiment={experiment}", f"ablation={ablation}", f"paths.output_dir={tmp_path}"])
    OmegaConf.resolve(cfg)
    assert load_ablations()[ablation].changes  # declared, with the metric it should hurt
    body = OmegaConf.to_container(OmegaConf.load(CONFIGS / "ablation" / f"{ablation}.yaml"))
    assert cfg.ablation_meta == body.pop("ablation_meta")  # lands in one harmless key
    declared = _flatten(body)
    before = _flatten(OmegaConf.to_container(base, resolve=True))
    after = _flatten(OmegaConf.to_container(cfg, resolve=True))
    changed = {key for key in before.keys() | after.keys()
               if before.get(key) != after.get(key) and not key.startswith("ablation_meta.")}
    undeclared = {key for key in changed if not any(key == d or key.startswith(d + ".") for d in declared)}
    assert not undeclared, f"{ablation} changes keys its file does not set: {sorted(undeclared)}"
    assert all(after[key] == value for key, value in declared.items()), (ablation, declared)


def test_paper_recipe_values(tmp_path):
    """The two paper stages carry the paper's numbers [P §5.1] and stage 2 starts from stage 1."""
    from fyc.training.run import check_global_batch_size

    s1 = compose("train", ["experiment=paper_stage1", f"paths.output_dir={tmp_path}"])
    s2 = compose("train", ["experiment=paper_stage2", f"paths.output_dir={tmp_path}"])
    OmegaConf.resolve(s1)
    OmegaConf.resolve(s2)
    assert (s1.trainer.max_steps, s2.trainer.max_steps) == (60000, 30000)
    assert s1.model.optimizer.lr == 1e-4 and s1.model.first_frame_masking.ratio == 0.7
    d = s1.data.train_dataset
    assert (d.resolution, d.num_frames, d.frame_stride) == (512, 16, 4)
    assert s1.data.batch_size * s1.trainer.devices * s1.trainer.num_nodes == s1.global_batch_size == 32
    assert not s1.model.unet.motion_augmented_attention and s2.model.unet.motion_augmented_attention
    assert s2.model.init_from.endswith("paper_stage1/checkpoints/last.ckpt") and s2.data.train_dataset.require_short_prompt
    check_global_batch_size(s1)
    with pytest.raises(ValueError, match="global_batch_size=32"):
        check_global_batch_size(compose("train", ["experiment=paper_stage1", "trainer.devices=4"]))
    check_global_batch_size(compose("train", ["experiment=paper_stage1", "trainer.devices=4",
                                              "trainer.accumulate_grad_batches=2"]))


def test_distributed_trainer_configs(tmp_path, monkeypatch):
    """ddp / fsdp / deepspeed_zero2 name real Lightning strategies; DeepSpeed missing gives an actionable error."""
    import importlib.util

    from fyc.training.run import check_strategy_available

    targets = {}
    for option in ("ddp", "fsdp", "deepspeed_zero2"):
        cfg = compose("train", [f"trainer={option}", "trainer.num_nodes=2", f"paths.output_dir={tmp_path}"])
        assert cfg.trainer.num_nodes == 2 and cfg.trainer.precision == "bf16-mixed"
        targets[option] = hydra.utils.get_class(cfg.trainer.strategy._target_).__name__
        if option != "deepspeed_zero2":
            assert hydra.utils.instantiate(cfg.trainer.plugins[0]).__class__.__name__ == "AtomicCheckpointIO"
    assert targets == {"ddp": "DDPStrategy", "fsdp": "FSDPStrategy", "deepspeed_zero2": "DeepSpeedStrategy"}
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "deepspeed" else real_find_spec(name, *a))
    with pytest.raises(ImportError, match="pip install deepspeed"):
        check_strategy_available(compose("train", ["trainer=deepspeed_zero2"]).trainer.strategy)
    check_strategy_available(compose("train", ["trainer=ddp"]).trainer.strategy)
