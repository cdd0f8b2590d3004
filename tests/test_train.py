"""train.py runs on the toy world: a fast dev run through the real entry point, loss is finite and decreases."""
import subprocess
import sys

import pytest
import torch

from conftest import ROOT


def test_train_fast_dev_run(train_cfg_factory):
    from fyc.training.run import train

    cfg = train_cfg_factory("debug=fdr", "export_pipeline=false")
    result = train(cfg)
    assert torch.isfinite(torch.tensor(result["metrics"]["train/loss"]))


def test_train_steps_export_pipeline_and_learn(train_cfg_factory, tmp_path):
    """A few real optimizer steps lower the loss on a fixed batch with fixed noise and timesteps (per-step training
    losses draw new noise and timesteps, too noisy to compare), and the exported pipeline loads."""
    import hydra

    from fyc.pipelines import FollowYourClickPipeline
    from fyc.training.run import train

    cfg = train_cfg_factory("logger=csv", "trainer.max_steps=16", "trainer.val_check_interval=16",
                            "trainer.limit_train_batches=1", "trainer.log_every_n_steps=1", "model.optimizer.lr=2e-3",
                            "model.lr_scheduler.num_warmup_steps=0", "model.condition_dropout.caption=0",
                            "model.condition_dropout.short_prompt=0", "model.condition_dropout.first_frame=0",
                            "model.condition_dropout.null_condition=0")
    module = hydra.utils.instantiate(cfg.model, _convert_="all")
    datamodule = hydra.utils.instantiate(cfg.data, _convert_="all")
    datamodule.setup("fit")
    batch = next(iter(datamodule.train_dataloader()))

    def fixed_loss() -> float:
        with torch.no_grad():
            return sum(module.diffusion_loss(batch, torch.Generator().manual_seed(s), apply_dropout=False).item()
                       for s in range(8)) / 8

    before = fixed_loss()
    result = train(cfg)
    out = tmp_path / "train"
    assert (out / "checkpoints" / "last.ckpt").is_file()
    assert len(_loss_column(out)) == 16
    state = torch.load(out / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)["state_dict"]
    missing, unexpected = module.load_state_dict(state, strict=False)
    assert not unexpected and len(state) > 0
    after = fixed_loss()
    assert after < 0.9 * before, (before, after)
    pipe = FollowYourClickPipeline.from_pretrained(result["pipeline_dir"])
    assert type(pipe.unet).__name__ == "FollowYourClickUNet"


def _loss_column(out):
    import csv

    rows = list(csv.DictReader(next(out.glob("csv/**/metrics.csv")).open()))
    return [f"{r['step']},{r['train/loss']}" for r in rows if r.get("train/loss")]


@pytest.mark.slow
def test_train_entry_point_cli(toy_root, toy_components, tmp_path):
    """The documented command itself (Hydra CLI) runs and prints the exported pipeline."""
    proc = subprocess.run(
        [sys.executable, "train.py", "experiment=toy", "debug=default", f"paths.toy_root={toy_root}",
         f"hydra.run.dir={tmp_path}"],
        cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"pipeline_dir: {tmp_path}/pipeline" in proc.stdout
