"""A Hydra sweep names its job folders by their overrides and ends with one table comparing its jobs
(configs/hydra/default.yaml, fyc/training/sweep_report.py)."""
from __future__ import annotations

import subprocess
import sys

import pytest
from omegaconf import OmegaConf

from conftest import ROOT
from fyc.training.sweep_report import SweepReport, sweep_table


def _fake_job(sweep_dir, name, overrides, rows=None, version=0):
    job = sweep_dir / name
    (job / ".hydra").mkdir(parents=True)
    OmegaConf.save(OmegaConf.create(overrides), job / ".hydra" / "overrides.yaml")
    if rows is not None:
        csv_dir = job / "csv" / f"version_{version}"
        csv_dir.mkdir(parents=True)
        header = "epoch,step,train/loss,train/lr,val/loss"
        (csv_dir / "metrics.csv").write_text("\n".join([header, *rows]) + "\n")
    return job


def test_table_has_one_row_per_job_with_differing_overrides_and_final_metrics(tmp_path):
    _fake_job(tmp_path, "ablation=full,experiment=toy", ["experiment=toy", "ablation=full"],
              ["0,0,0.9,0.001,", "0,1,0.5,0.001,", "0,1,,,0.7"])
    _fake_job(tmp_path, "ablation=no_ma,experiment=toy", ["experiment=toy", "ablation=no_ma"],
              ["0,0,0.8,0.001,", "0,1,0.6,0.001,", "0,1,,,0.75"])
    _fake_job(tmp_path, "ablation=broken,experiment=toy", ["experiment=toy", "ablation=broken"])  # no metrics
    lines = sweep_table(tmp_path).splitlines()
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    assert header == ["job folder", "ablation", "val/loss", "train/loss", "last step"]  # experiment is the same in all
    rows = {cells[0]: cells[1:] for cells in ([c.strip() for c in line.strip("|").split("|")] for line in lines[2:])}
    assert rows["ablation=full,experiment=toy"] == ["full", "0.7", "0.5", "1"]  # last value of each column
    assert rows["ablation=no_ma,experiment=toy"] == ["no_ma", "0.75", "0.6", "1"]
    assert rows["ablation=broken,experiment=toy"] == ["broken", "–", "–", "–"]


def test_callback_writes_the_report_into_the_sweep_dir(tmp_path, capsys):
    _fake_job(tmp_path, "seed=0", ["seed=0"], ["0,3,0.25,0.1,0.5"])
    _fake_job(tmp_path, "seed=1", ["seed=1"], ["0,3,0.125,0.1,0.25"])
    SweepReport().on_multirun_end(OmegaConf.create({"hydra": {"sweep": {"dir": str(tmp_path)}}}))
    report = (tmp_path / "sweep_report.md").read_text()
    assert "| seed=1 | 1 | 0.25 | 0.125 | 3 |" in report
    assert "sweep report:" in capsys.readouterr().out


def test_sweep_subdir_is_named_by_overrides_without_paths(tmp_path):
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    with initialize_config_dir(version_base="1.3", config_dir=str(ROOT / "configs")):
        cfg = compose("train", ["experiment=toy", f"paths.toy_root={tmp_path}"], return_hydra_config=True)
    assert cfg.hydra.sweep.subdir == "experiment=toy"  # paths.toy_root is left out of the name
    excluded = set(cfg.hydra.job.config.override_dirname.exclude_keys)
    assert {"paths.toy_root", "hydra.sweep.dir", "trainer.devices"} <= excluded and "ablation" not in excluded
    assert cfg.hydra.callbacks.sweep_report._target_ == "fyc.training.sweep_report.SweepReport"


@pytest.mark.slow
def test_two_job_toy_sweep_ends_with_a_table(toy_root, toy_components, tmp_path):
    """The documented sweep command, two ablations on the toy world, a few steps each."""
    sweep_dir = tmp_path / "sweep"
    proc = subprocess.run(
        [sys.executable, "train.py", "-m", "experiment=toy", "debug=default", "logger=csv", "export_pipeline=false",
         "callbacks.model_checkpoint=null", f"paths.toy_root={toy_root}", f"hydra.sweep.dir={sweep_dir}",
         "ablation=full,no_mask_channel"],
        cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    folders = sorted(p.name for p in sweep_dir.iterdir() if p.is_dir())
    # Named by the overrides (sorted by key), paths left out: ablation=full,callbacks...,experiment=toy,...
    assert [name.split(",")[0] for name in folders] == ["ablation=full", "ablation=no_mask_channel"], folders
    assert all("experiment=toy" in name and "toy_root" not in name for name in folders), folders
    report = (sweep_dir / "sweep_report.md").read_text()
    rows = [line for line in report.splitlines() if line.startswith("| ablation=")]
    assert len(rows) == 2 and "train/loss" in report, report
    assert all("–" not in row.split("|")[3] for row in rows), report  # every job has a final training loss
