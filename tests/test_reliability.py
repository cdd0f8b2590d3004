"""Bad input never costs finished work or runs foreign code (training side): safe checkpoint loading, resume that
says what it does (and refuses a changed model or data), preflight that lists every problem at once, a checkpoint
writer that leaves no partial files, a warning when validation never runs.

The other two sides live beside this file: evaluation that keeps its work and safe manifest ids in
``test_reliability_eval.py``; numeric arguments, clicks and output paths of the pipeline and CLIs in
``test_reliability_inputs.py`` (``pytest tests/test_reliability*.py`` runs all three)."""
from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from conftest import ROOT, compose


class _Payload:
    """Unpickling this calls ``open(marker, "w")``: the marker file appears iff the pickle's code ran."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return open, (self.marker, "w")


def _crafted(tmp_path: Path) -> tuple[Path, Path, Path]:
    marker = tmp_path / "payload_ran"
    torch_file = tmp_path / "crafted.ckpt"
    torch.save({"state_dict": {"unet.w": torch.ones(2)}, "global_step": 1, "x": _Payload(marker)}, torch_file)
    pickle_file = tmp_path / "crafted.pkl"
    pickle_file.write_bytes(pickle.dumps({"state_dict": {}, "x": _Payload(marker)}))
    assert not marker.exists()
    return torch_file, pickle_file, marker


def _load_script(name: str):
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"{name}_script", ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ------------------------------------------------------------------------------------------------- 1: safe loading


def test_crafted_checkpoint_is_refused_and_runs_nothing(tmp_path, capsys):
    """A checkpoint whose pickle calls a function is refused by every loader (fyc's, Lightning's resume path,
    model.init_from, scripts/export.py, scripts/export_toy_base.py) and its payload never runs."""
    from fyc.training.checkpoint_io import AtomicCheckpointIO, UnsafeCheckpointError, load_checkpoint
    from fyc.training.module import read_unet_state_dict

    torch_file, pickle_file, marker = _crafted(tmp_path)
    for path in (torch_file, pickle_file):
        with pytest.raises(UnsafeCheckpointError, match="refused"):
            load_checkpoint(path)
        with pytest.raises(UnsafeCheckpointError):
            AtomicCheckpointIO().load_checkpoint(path, weights_only=False)  # what Trainer.fit(ckpt_path=) calls
        with pytest.raises(UnsafeCheckpointError):
            read_unet_state_dict(path)  # model.init_from
    with pytest.raises(SystemExit) as exit_info:
        _load_script("export").main(["--ckpt", str(torch_file), "--out", str(tmp_path / "out")])
    assert exit_info.value.code == 2 and "refused to load" in capsys.readouterr().err
    with pytest.raises(UnsafeCheckpointError):  # scripts/export_toy_base.py
        _load_script("export_toy_base").main(["--ckpt", str(torch_file), "--components", str(tmp_path),
                                              "--out", str(tmp_path / "base")])
    assert not marker.exists(), "the crafted pickle's code ran"
    assert not (tmp_path / "out").exists() and not (tmp_path / "base").exists()


def test_checkpoint_written_by_the_writer_loads_safely(tmp_path):
    """Tensors, nested containers, RNG-like tuples and strings round-trip through the atomic writer and the safe
    loader (no allow-listed classes needed); a truncated file is reported as such."""
    from fyc.training.checkpoint_io import AtomicCheckpointIO, load_checkpoint

    state = {"state_dict": {"unet.w": torch.arange(4.0)}, "global_step": 7, "python": (3, (1, 2), None),
             "fyc_config": {"data": {"train_dataset": {"resolution": 32}}}, "name": "MT19937"}
    path = tmp_path / "last.ckpt"
    AtomicCheckpointIO().save_checkpoint(state, path)
    loaded = load_checkpoint(path)
    assert torch.equal(loaded["state_dict"]["unet.w"], state["state_dict"]["unet.w"])
    assert loaded["python"] == (3, (1, 2), None) and loaded["fyc_config"] == state["fyc_config"]
    truncated = tmp_path / "truncated.ckpt"
    truncated.write_bytes(path.read_bytes()[:200])
    with pytest.raises(ValueError, match="truncated"):
        load_checkpoint(truncated)


# ------------------------------------------------------------------------------- 7: checkpoint writer's temp files


def test_checkpoint_writer_creates_no_file_while_serialising(tmp_path, monkeypatch):
    """Pickling (the slow part, where a crash or kill happens) runs before any file exists, so a crash leaves no
    0-byte or partial temp file."""
    from fyc.training import checkpoint_io

    seen = []
    real_save = torch.save

    def watching_save(obj, target):
        seen.extend(p.name for p in tmp_path.iterdir())
        return real_save(obj, target)

    monkeypatch.setattr(torch, "save", watching_save)
    checkpoint_io.AtomicCheckpointIO().save_checkpoint({"w": torch.ones(2)}, tmp_path / "last.ckpt")
    assert seen == [] and [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_stale_temp_files_are_cleaned(train_cfg_factory, tmp_path):
    """Temp files of a killed writer are removed (those of live processes kept), also by train() at start."""
    from fyc.training.checkpoint_io import clean_stale_temp_files
    from fyc.training.preflight import PreflightError
    from fyc.training.run import train

    folder = tmp_path / "train" / "checkpoints"
    folder.mkdir(parents=True)
    stale, live = folder / f".last.ckpt.tmp-{_dead_pid()}", folder / f".last.ckpt.tmp-{os.getpid()}"
    stale.touch()
    live.touch()
    assert clean_stale_temp_files(folder) == [stale] and live.exists() and not stale.exists()
    stale.touch()
    with pytest.raises(PreflightError):  # a missing toy world: fails in preflight, after the cleanup
        train(train_cfg_factory(f"paths.toy_root={tmp_path / 'missing'}"))
    assert not stale.exists() and live.exists()


# -------------------------------------------------------------------------------------------------------- 5: resume


def _touch_ckpt(path: Path, mtime: float) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    os.utime(path, (mtime, mtime))
    return path


def test_ckpt_path_last_without_checkpoint_names_where_it_looked(tmp_path):
    """ckpt_path=last with no checkpoint anywhere is an error naming the folders (it used to train from step 0);
    auto starts fresh; a missing explicit path is an error."""
    from fyc.training.run_guard import ResumeError, resolve_ckpt_path

    run, experiment = tmp_path / "exp" / "runs" / "now", tmp_path / "exp"
    run.mkdir(parents=True)
    with pytest.raises(ResumeError) as error:
        resolve_ckpt_path("last", run, experiment)
    assert str(run) in str(error.value) and str(experiment) in str(error.value) and "ckpt_path=null" in str(error.value)
    assert resolve_ckpt_path("auto", run, experiment) is None and resolve_ckpt_path(None, run) is None
    with pytest.raises(ResumeError, match="no such file"):
        resolve_ckpt_path(str(tmp_path / "nope.ckpt"), run)


def test_ckpt_path_last_finds_newest_across_run_folders(tmp_path):
    """Timestamped run folders: last = the newest checkpoint under the experiment folder (a run's last.ckpt or
    hpc_ckpt, its step files only without a last.ckpt); the run folder's own checkpoint (a restarted run) wins;
    auto only looks in the run folder."""
    from fyc.training.run_guard import resolve_ckpt_path

    experiment = tmp_path / "exp"
    _touch_ckpt(experiment / "runs" / "a" / "checkpoints" / "last.ckpt", 1_000)
    newest = _touch_ckpt(experiment / "runs" / "b" / "hpc_ckpt_3.ckpt", 3_000)
    _touch_ckpt(experiment / "runs" / "b" / "checkpoints" / "last.ckpt", 2_000)
    _touch_ckpt(experiment / "runs" / "b" / "checkpoints" / "copy_of_last.ckpt", 4_000)  # not a resume point
    only_steps = _touch_ckpt(experiment / "runs" / "d" / "checkpoints" / "step_0000002.ckpt", 2_500)  # save_last=false
    run = experiment / "runs" / "c"
    run.mkdir()
    assert resolve_ckpt_path("last", run, experiment) == str(newest)
    os.utime(only_steps, (5_000, 5_000))
    assert resolve_ckpt_path("last", run, experiment) == str(only_steps)
    assert resolve_ckpt_path("auto", run, experiment) is None
    own = _touch_ckpt(run / "checkpoints" / "last.ckpt", 500)
    assert resolve_ckpt_path("last", run, experiment) == str(own) == resolve_ckpt_path("auto", run, experiment)


def _recorded_checkpoint(cfg, path: Path, step: int = 3) -> Path:
    """A checkpoint as train.py records it (step, epoch, resolved run config), without weights."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"global_step": step, "epoch": 0, "fyc_config": OmegaConf.to_container(cfg, resolve=True)}, path)
    return path


def test_resume_refused_after_resolution_change(train_cfg_factory, tmp_path):
    """A checkpoint trained at another resolution is refused before any model loads (naming the key and the fix);
    resume.force=true resumes and records the forced change; other changes are only listed."""
    from fyc.training.preflight import PreflightError
    from fyc.training.run import train
    from fyc.training.run_guard import plan_resume

    ckpt = _recorded_checkpoint(train_cfg_factory(), tmp_path / "train" / "checkpoints" / "last.ckpt")
    changed = train_cfg_factory("ckpt_path=last", "data.train_dataset.resolution=16")
    with pytest.raises(PreflightError) as error:
        train(changed)
    message = str(error.value)
    assert "data.train_dataset.resolution: 32 -> 16" in message and "resume.force=true" in message
    assert not (tmp_path / "train" / "config.yaml").exists(), "the run went past the checks"

    forced = plan_resume(train_cfg_factory("ckpt_path=last", "data.train_dataset.resolution=16", "resume.force=true"))
    assert forced.ckpt_path == str(ckpt) and forced.step == 3
    assert any("resolution" in change for change in forced.forced)
    longer = plan_resume(train_cfg_factory("ckpt_path=last", "trainer.max_steps=1200", "model.optimizer.lr=5e-4"))
    assert not longer.forced and {c.split(":")[0] for c in longer.changed} >= {"trainer.max_steps",
                                                                                "model.optimizer.lr"}
    assert "resuming from" in longer.describe()[0] and "at step 3" in longer.describe()[0]


def test_config_differences_ignore_run_folder_and_launch_keys():
    """Paths inside each run's own output folder and the launch keys (ckpt_path, resume, preflight) never count as
    changes; guarded prefixes are matched per key segment."""
    from fyc.training.run_guard import config_differences

    saved = {"paths": {"output_dir": "/logs/a"}, "ckpt_path": None, "callbacks": {"ckpt": {"dirpath": "/logs/a/c"}},
             "model": {"unet": {"heads": 8}, "unet_extra": 1}}
    current = {"paths": {"output_dir": "/logs/b"}, "ckpt_path": "last", "callbacks": {"ckpt": {"dirpath": "/logs/b/c"}},
               "model": {"unet": {"heads": 4}, "unet_extra": 2}}
    guarded, other = config_differences(saved, current, ["model.unet"])
    assert guarded == ["model.unet.heads: 8 -> 4"] and other == ["model.unet_extra: 1 -> 2"]


def test_init_from_an_unfinished_run_is_warned(train_cfg_factory, tmp_path):
    """Stage 2 initialised from a checkpoint that stopped before its max_steps, at another resolution, is named."""
    from fyc.training.run_guard import describe_init_source

    source = _recorded_checkpoint(train_cfg_factory("trainer.max_steps=600", "data.train_dataset.resolution=16"),
                                  tmp_path / "stage1" / "last.ckpt", step=2)
    warnings = describe_init_source(train_cfg_factory(f"model.init_from={source}"))
    assert any("step 2 of its run's trainer.max_steps=600" in w for w in warnings)
    assert any("data.train_dataset.resolution=16" in w for w in warnings)


# ----------------------------------------------------------------------------------------------------- 6: preflight

NO_GPU_SMALL_MACHINE = dict(cpu_cores=2, memory_available_gb=16.0, gpu_count=0)


def test_preflight_lists_every_problem_at_once(tmp_path):
    """The paper recipe on a small CPU machine without weights or data: every problem in one report, each with
    the key or command that fixes it (weights with the pretrained.model= and offline hints, no GPU, too many
    devices, missing CSVs, processes vs cores and memory)."""
    from fyc.training.preflight import Machine, run_preflight

    # Hub ids no machine has cached (HF_HUB_OFFLINE=1 in tests): the paper's ones may be in a developer's cache.
    cfg = compose("train", ["experiment=paper_stage1", f"paths.data_dir={tmp_path / 'data'}",
                            "pretrained.model=fyc-tests/not-cached", "pretrained.motion_adapter=fyc-tests/no-adapter",
                            f"paths.output_dir={tmp_path / 'out'}", f"resume.search_dir={tmp_path / 'out'}"])
    report = run_preflight(cfg, Machine(**NO_GPU_SMALL_MACHINE))
    keys = [finding.key for finding in report.problems]
    assert {"pretrained.model", "pretrained.motion_adapter", "trainer.accelerator", "trainer.devices",
            "data.train_dataset.csv_path", "data.val_dataset.csv_path"} <= set(keys), report.format()
    assert keys.count("trainer.devices") == 3  # GPUs, cores, memory
    weights = next(f for f in report.problems if f.key == "pretrained.model")
    assert "pretrained.model=" in weights.fix and "HF_HUB_OFFLINE" in weights.fix + weights.problem
    devices = next(f for f in report.problems if f.key == "trainer.devices")
    assert "trainer.devices=1 trainer.accumulate_grad_batches=8" in devices.fix
    assert all(finding.fix for finding in report.problems)
    text = report.format()
    assert text.count("fix:") == len(report.problems) >= 8


def test_preflight_missing_toy_root_is_not_an_internet_problem(train_cfg_factory, tmp_path):
    """A nonexistent paths.toy_root: local folders not found, naming paths.toy_root; nothing about the hub."""
    from fyc.training.preflight import Machine, run_preflight

    cfg = train_cfg_factory(f"paths.toy_root={tmp_path / 'no_toy'}")
    report = run_preflight(cfg, Machine(**NO_GPU_SMALL_MACHINE))
    text = report.format()
    assert {f.key for f in report.problems} == {"pretrained.model", "pretrained.motion_adapter",
                                                "data.train_dataset.csv_path", "data.val_dataset.csv_path"}, text
    assert "paths.toy_root" in text and "does not exist" in text
    assert not any(word in text.lower() for word in ("hub", "internet", "unreachable", "connection"))


def test_preflight_passes_on_the_toy_world_and_checks_sidecar_and_columns(train_cfg_factory, tmp_path):
    """The toy recipe on a CPU passes; a missing motion-label sidecar and a CSV without the needed columns are
    named with the command that makes them."""
    from fyc.training.preflight import Machine, run_preflight

    machine = Machine(**NO_GPU_SMALL_MACHINE)
    assert run_preflight(train_cfg_factory(), machine).ok
    sidecar = run_preflight(train_cfg_factory("data.train_dataset.motion_labels=sidecar"), machine)
    assert [f.key for f in sidecar.problems] == ["data.train_dataset.motion_sidecar"]
    assert "scripts/annotate_motion.py" in sidecar.problems[0].fix
    bad_csv = tmp_path / "bad.csv"
    bad_csv.write_text("id,caption\n1,a\n")
    columns = run_preflight(train_cfg_factory(f"data.train_dataset.csv_path={bad_csv}"), machine)
    assert [f.key for f in columns.problems] == ["data.train_dataset.csv_path"]
    assert "videoid" in columns.problems[0].problem


def test_preflight_only_checks_without_loading(train_cfg_factory, tmp_path):
    """preflight.only=true returns the report and writes nothing (no config.yaml, no checkpoints)."""
    from fyc.training.run import train

    result = train(train_cfg_factory("preflight.only=true"))
    assert result["preflight"].ok and result["metrics"] == {}
    assert not (tmp_path / "train").exists()


def test_validation_that_never_runs_is_warned(train_cfg_factory):
    from fyc.training.preflight import validation_warnings

    warnings = validation_warnings(train_cfg_factory("trainer.max_steps=100"))  # toy: val_check_interval=200
    assert len(warnings) == 1 and "trainer.val_check_interval=200 > trainer.max_steps=100" in warnings[0]
    assert validation_warnings(train_cfg_factory("trainer.max_steps=100", "trainer.limit_val_batches=0")) == []
    assert validation_warnings(train_cfg_factory("trainer.max_steps=400")) == []


@pytest.mark.slow
def test_train_cli_preflight_only_paper_stage1(tmp_path):
    """The documented command: `python train.py experiment=paper_stage1 preflight.only=true` prints every problem
    and exits 1, within seconds (no model is loaded)."""
    proc = subprocess.run(
        [sys.executable, "train.py", "experiment=paper_stage1", "preflight.only=true", f"paths.data_dir={tmp_path}",
         f"hydra.run.dir={tmp_path / 'run'}", "trainer.devices=999"],
        cwd=ROOT, capture_output=True, text=True, timeout=300, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert proc.returncode == 1, proc.stderr[-3000:]
    for key in ("[pretrained.model]", "[trainer.devices]", "[data.train_dataset.csv_path]"):
        assert key in proc.stdout, proc.stdout
