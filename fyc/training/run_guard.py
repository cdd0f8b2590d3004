"""Which checkpoint a run resumes from, and whether it may.

``ckpt_path`` (configs/train.yaml):

* ``null``: a fresh start.
* ``auto``: the newest checkpoint of this run folder (a requeued or restarted job), else a fresh start. The paper
  recipes and the SLURM script use it.
* ``last``: the newest checkpoint of this run folder, else the newest under ``resume.search_dir`` (the
  experiment's folder, ``logs/<task_name>``, across its timestamped run folders); an error naming the folders
  when there is none.
* a file path: that checkpoint (an error when it does not exist).

"Checkpoints" are ``checkpoints/last.ckpt`` (any ``checkpoints/*.ckpt`` when there is no ``last.ckpt``) and SLURM's
requeue checkpoints ``hpc_ckpt_<n>.ckpt``; the newest is the one modified last.

Before resuming, the run config recorded in the checkpoint (``fyc_config``) is compared with the current one: a
change under one of ``resume.guarded_keys`` (model architecture and weights, resolution, frames, dataset) refuses
to resume unless ``resume.force=true``; other changes (steps, learning rate, logging, ...) are listed in the log.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from omegaconf import DictConfig, OmegaConf

log = logging.getLogger(__name__)

#: Keys that describe this launch, not the run: never compared.
LAUNCH_KEYS = ("ckpt_path", "resume", "preflight", "paths.output_dir")
_OUTPUT_DIR = "<output_dir>"


class ResumeError(RuntimeError):
    """Resuming is impossible or refused. ``problem`` says what, ``fix`` the key or command that fixes it."""

    def __init__(self, problem: str, fix: str, key: str = "ckpt_path"):
        super().__init__(f"{problem}\n  fix: {fix}")
        self.problem, self.fix, self.key = problem, fix, key


@dataclass
class ResumePlan:
    """What ``train`` will do: resume from ``ckpt_path`` (None = fresh start) at ``step``.

    ``forced``: guarded changes resumed anyway (``resume.force``); ``changed``: other config changes;
    ``unchecked``: the checkpoint records no run config, so nothing could be compared."""

    ckpt_path: str | None = None
    step: int | None = None
    epoch: int | None = None
    forced: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    unchecked: bool = False

    def describe(self) -> list[str]:
        """Log lines for this plan."""
        if self.ckpt_path is None:
            return ["starting from step 0 (no checkpoint to resume)"]
        lines = [f"resuming from {self.ckpt_path} at step {self.step} (epoch {self.epoch})"]
        if self.unchecked:
            lines.append("the checkpoint records no run config: model and data settings could not be compared")
        if self.forced:
            lines.append("resume.force=true: resuming despite model/data changes: " + "; ".join(self.forced))
        if self.changed:
            lines.append("config changes since the checkpoint: " + "; ".join(self.changed))
        return lines


def find_checkpoints(folder: str | Path, recursive: bool = False) -> list[Path]:
    """Resumable checkpoints of a run folder, or of every run folder below it with ``recursive``: each
    ``checkpoints/`` folder's ``last.ckpt`` (all its ``*.ckpt`` when it has none, i.e. ``save_last=false``) and
    SLURM's ``hpc_ckpt_*.ckpt``. Other files beside ``last.ckpt`` (copies, ``step_*.ckpt``) are older states."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    glob = folder.rglob if recursive else folder.glob
    found = [p for p in glob("hpc_ckpt_*.ckpt") if p.is_file()]
    checkpoint_dirs = [d for d in glob("checkpoints") if d.is_dir()]
    for checkpoint_dir in checkpoint_dirs:
        last = checkpoint_dir / "last.ckpt"
        found += [last] if last.is_file() else [p for p in checkpoint_dir.glob("*.ckpt") if p.is_file()]
    return sorted(set(found))


def newest_checkpoint(folder: str | Path, recursive: bool = False) -> Path | None:
    """The checkpoint of :func:`find_checkpoints` modified last, or None."""
    candidates = find_checkpoints(folder, recursive)
    if not candidates:
        return None
    return max(candidates, key=lambda p: p.stat().st_mtime)


def resolve_ckpt_path(ckpt_path: str | None, output_dir: str | Path,
                      search_dir: str | Path | None = None) -> str | None:
    """``ckpt_path`` config value → the checkpoint file to resume from, or None for a fresh start (module doc).

    Raises:
        ResumeError: ``last`` with no checkpoint in ``output_dir`` nor under ``search_dir``; a path that does not
            exist.
    """
    if ckpt_path is None:
        return None
    output_dir = Path(output_dir)
    if ckpt_path == "auto":
        newest = newest_checkpoint(output_dir)
        return str(newest) if newest is not None else None
    if ckpt_path == "last":
        newest = newest_checkpoint(output_dir)
        if newest is None and search_dir is not None:
            newest = newest_checkpoint(search_dir, recursive=True)
        if newest is None:
            looked = f"{output_dir}" + (f" nor under {search_dir}" if search_dir is not None else "")
            raise ResumeError(
                f"ckpt_path=last: no checkpoint (checkpoints/last.ckpt or *.ckpt, hpc_ckpt_*.ckpt) in {looked}",
                "ckpt_path=null to start from step 0, ckpt_path=<file.ckpt>, resume.search_dir=<experiment folder>, "
                "or ckpt_path=auto (resume when this run folder has a checkpoint, else start fresh)")
        return str(newest)
    if not Path(ckpt_path).is_file():
        raise ResumeError(f"ckpt_path={ckpt_path}: no such file",
                          "ckpt_path=<an existing .ckpt>, ckpt_path=last, or ckpt_path=null")
    return str(ckpt_path)


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        flat = {}
        for key, item in value.items():
            flat.update(_flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return flat
    return {prefix: value}


def _under(key: str, prefixes: Iterable[str]) -> bool:
    return any(key == p or key.startswith(p + ".") for p in prefixes)


def _normalise(flat: dict[str, Any], output_dir: str | None) -> dict[str, Any]:
    """Write this run's output folder as a placeholder, so paths inside it compare equal across run folders."""
    if not output_dir:
        return flat
    return {k: v.replace(output_dir, _OUTPUT_DIR) if isinstance(v, str) else v for k, v in flat.items()}


def config_differences(saved: dict, current: dict, guarded_keys: Iterable[str]) -> tuple[list[str], list[str]]:
    """(guarded changes, other changes) between two resolved run configs, each as ``"key: old -> new"``.

    Keys of :data:`LAUNCH_KEYS` are ignored; strings are compared with each run's ``paths.output_dir`` replaced by a
    placeholder."""
    guarded_keys = list(guarded_keys)
    old = _normalise(_flatten(saved), (saved.get("paths") or {}).get("output_dir"))
    new = _normalise(_flatten(current), (current.get("paths") or {}).get("output_dir"))
    guarded, other = [], []
    for key in sorted(old.keys() | new.keys()):
        if _under(key, LAUNCH_KEYS):
            continue
        before, after = old.get(key, "<absent>"), new.get(key, "<absent>")
        if before == after:
            continue
        (guarded if _under(key, guarded_keys) else other).append(f"{key}: {before!r} -> {after!r}")
    return guarded, other


def read_checkpoint_summary(path: str | Path) -> dict:
    """``global_step``, ``epoch`` and the recorded run config (``fyc_config``, or None) of a checkpoint, read safely
    and without loading its tensors (memory-mapped)."""
    from fyc.training.checkpoint_io import load_checkpoint

    checkpoint = load_checkpoint(path, mmap=True)
    return {"global_step": checkpoint.get("global_step"), "epoch": checkpoint.get("epoch"),
            "fyc_config": checkpoint.get("fyc_config")}


def plan_resume(cfg: DictConfig) -> ResumePlan:
    """Resolve ``cfg.ckpt_path`` and check the checkpoint's recorded run config against ``cfg`` (module doc).

    Raises:
        ResumeError: no checkpoint where one is required, an unreadable or unsafe checkpoint, or guarded config
            changes without ``resume.force``.
    """
    resume_cfg = cfg.get("resume") or {}
    path = resolve_ckpt_path(cfg.get("ckpt_path"), cfg.paths.output_dir, resume_cfg.get("search_dir"))
    if path is None:
        return ResumePlan()
    try:
        summary = read_checkpoint_summary(path)
    except ValueError as error:  # includes UnsafeCheckpointError
        raise ResumeError(f"ckpt_path={cfg.get('ckpt_path')}: cannot resume from {path}: {error}",
                          "ckpt_path=<another checkpoint>, or ckpt_path=null") from None
    plan = ResumePlan(ckpt_path=path, step=summary["global_step"], epoch=summary["epoch"])
    saved = summary["fyc_config"]
    if not saved:
        plan.unchecked = True
        return plan
    current = OmegaConf.to_container(cfg, resolve=True)
    guarded, plan.changed = config_differences(saved, current, resume_cfg.get("guarded_keys") or ())
    if guarded and not resume_cfg.get("force", False):
        raise ResumeError(
            f"ckpt_path={cfg.get('ckpt_path')}: {path} (step {plan.step}) was trained with another model or data "
            f"than this config: " + "; ".join(guarded),
            "start a new run folder (hydra.run.dir=<new folder>), or ckpt_path=null to train from step 0, or "
            "resume.force=true to resume anyway")
    plan.forced = guarded
    return plan


def describe_init_source(cfg: DictConfig) -> list[str]:
    """Warnings about ``model.init_from`` when it is a training checkpoint: one whose run stopped before its
    ``trainer.max_steps`` (a smoke test or an unfinished stage 1?), or trained at another resolution / frame
    count than this run."""
    source = cfg.model.get("init_from")
    if not source or not Path(source).is_file():
        return []
    try:
        summary = read_checkpoint_summary(source)
    except (ValueError, OSError) as error:
        return [f"model.init_from={source}: unreadable checkpoint ({error})"]
    warnings, saved, step = [], summary["fyc_config"] or {}, summary["global_step"]
    max_steps = (saved.get("trainer") or {}).get("max_steps")
    if isinstance(max_steps, int) and max_steps > 0 and step is not None and step < max_steps:
        warnings.append(f"model.init_from={source} is at step {step} of its run's trainer.max_steps={max_steps} "
                        f"(an unfinished run or a smoke test?)")
    saved_data = ((saved.get("data") or {}).get("train_dataset") or {})
    for key in ("resolution", "num_frames"):
        before, now = saved_data.get(key), cfg.data.train_dataset.get(key)
        if before is not None and before != now:
            warnings.append(f"model.init_from={source} was trained with data.train_dataset.{key}={before}, "
                            f"this run uses {now}")
    return warnings
