"""Preflight: check everything a training config needs before any model loads, and report all problems at once.

Checked: pretrained weights (local folders present, hub ids cached or reachable), ``model.init_from``, accelerator
and device count, strategy dependencies, ``global_batch_size``, data (CSV and its columns, video root, shard
index, motion-label sidecar), output folder writable, wandb login, processes x loader workers against this
machine's cores and memory, and the checkpoint to resume (``fyc.training.run_guard``). Each problem names the
config key or command that fixes it. ``python train.py experiment=<name> preflight.only=true`` runs only the checks;
``train.py`` runs them before every run (``preflight.enabled=false`` skips them).
"""
from __future__ import annotations

import csv
import importlib.util
import os
import string
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from omegaconf import DictConfig

from fyc.training.run_guard import ResumeError, ResumePlan, describe_init_source, plan_resume

#: The UNet, VAE, text encoder and tokenizer of an SD-1.5-layout folder (``pretrained.model``).
PIPELINE_SUBFOLDERS = ("unet", "vae", "text_encoder", "tokenizer")


@dataclass
class Finding:
    """One problem: the config ``key`` (or area) at fault, what is wrong, and the key or command that fixes it."""

    key: str
    problem: str
    fix: str


@dataclass
class Machine:
    """What this machine offers a training run: usable CPU cores, available host memory (GiB), CUDA GPUs."""

    cpu_cores: int
    memory_available_gb: float
    gpu_count: int

    @classmethod
    def detect(cls) -> "Machine":
        from lightning.fabric.accelerators.cuda import num_cuda_devices  # does not initialise CUDA (fork-safe)

        return cls(cpu_cores=_cpu_cores(), memory_available_gb=_memory_available_gb(), gpu_count=num_cuda_devices())


@dataclass
class PreflightReport:
    """``problems`` stop the run; ``warnings`` do not; ``resume`` is the checkpoint plan (None when refused)."""

    problems: list[Finding] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    resume: ResumePlan | None = None

    @property
    def ok(self) -> bool:
        return not self.problems

    def format(self, title: str = "preflight") -> str:
        lines = [f"{title}: " + (f"{len(self.problems)} problem(s)" if self.problems else "no problems")]
        for index, finding in enumerate(self.problems, 1):
            lines += [f"  {index}. [{finding.key}] {finding.problem}", f"     fix: {finding.fix}"]
        if self.warnings:
            lines.append("warnings:")
            lines += [f"  - {warning}" for warning in self.warnings]
        if self.resume is not None:
            lines += [f"resume: {line}" for line in self.resume.describe()]
        if any(finding.key != "ckpt_path" for finding in self.problems):
            lines.append("(preflight.enabled=false skips these checks, except the resume check)")
        return "\n".join(lines)


class PreflightError(RuntimeError):
    """Raised by ``train`` when the preflight found problems; ``report`` holds them."""

    def __init__(self, report: PreflightReport, title: str = "preflight"):
        super().__init__(report.format(title))
        self.report = report


# ------------------------------------------------------------------------------------------------------ the machine


def _cpu_cores() -> int:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:  # a container's CPU quota (cgroup v2): "max 100000" or "200000 100000"
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()
        if quota != "max":
            cores = min(cores, max(1, int(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return cores


def _memory_available_gb() -> float:
    available = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                available = int(line.split()[1]) * 1024
    except OSError:
        pass
    if available is None:
        available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    try:  # a container's memory limit (cgroup v2)
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if limit != "max":
            used = int(Path("/sys/fs/cgroup/memory.current").read_text())
            available = min(available, int(limit) - used)
    except (OSError, ValueError):
        pass
    return available / 2**30


# ---------------------------------------------------------------------------------------------------------- weights


def _is_hub_id(value: str) -> bool:
    """``org/name`` (or ``name``) that is not an existing or obviously local path."""
    if Path(value).expanduser().exists() or value.startswith(("/", ".", "~")) or value.count("/") > 1:
        return False
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(value)
    except HFValidationError:
        return False
    return True


def _hub_offline() -> bool:
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE) or os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes")


def _hub_problem(repo_id: str, timeout: float) -> str | None:
    """None when ``repo_id`` is in the local Hugging Face cache or the hub answers for it; else what is wrong."""
    from huggingface_hub import HfApi, snapshot_download
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError

    try:
        snapshot_download(repo_id, local_files_only=True)
        return None
    except Exception:  # not cached (LocalEntryNotFoundError and friends)
        pass
    if _hub_offline():
        return f"hub id {repo_id} is not in the local Hugging Face cache and HF_HUB_OFFLINE=1 forbids downloading it"
    try:
        HfApi().model_info(repo_id, timeout=timeout)
        return None
    except (RepositoryNotFoundError, GatedRepoError) as error:
        return f"hub id {repo_id}: no such repository, or a gated/private one ({type(error).__name__})"
    except Exception as error:  # no network: ConnectionError, timeouts, DNS failures
        return (f"hub id {repo_id} is not in the local Hugging Face cache and the hub is unreachable from this "
                f"machine ({type(error).__name__})")


def _under_toy_root(path: str, cfg: DictConfig) -> bool:
    toy_root = str((cfg.get("paths") or {}).get("toy_root") or "")
    return bool(toy_root) and str(path).startswith(toy_root)


def _toy_root_note(path: str, cfg: DictConfig) -> str:
    toy_root = Path(str(cfg.paths.toy_root)) if _under_toy_root(path, cfg) else None
    return f" (paths.toy_root={toy_root} does not exist)" if toy_root is not None and not toy_root.exists() else ""


def _toy_fix(cfg: DictConfig) -> str:
    root = cfg.paths.toy_root
    return (f"paths.toy_root=<an existing toy world>, or make one there: python scripts/make_toy_webvid.py --out "
            f"{root} && python scripts/make_toy_components.py --out {root}/components")


def _weight_sources(cfg: DictConfig) -> dict[str, dict]:
    """Distinct weight locations the model config loads → the keys naming them and the subfolders it reads."""
    model, pretrained = cfg.model, cfg.get("pretrained") or {}
    entries = [("unet", "pretrained_model_name_or_path", "unet"), ("unet", "motion_adapter_name_or_path", None),
               ("vae", "pretrained_model_name_or_path", "vae"),
               ("text_encoder", "pretrained_model_name_or_path", "text_encoder"),
               ("tokenizer", "pretrained_model_name_or_path", "tokenizer")]
    sources: dict[str, dict] = {}
    for part, arg, default_subfolder in entries:
        node = model.get(part)
        value = node.get(arg) if node is not None else None
        if not value:
            continue
        value = str(value)
        key = f"model.{part}.{arg}"
        if value == str(pretrained.get("model")):
            key = "pretrained.model"
        elif value == str(pretrained.get("motion_adapter")):
            key = "pretrained.motion_adapter"
        entry = sources.setdefault(value, {"key": key, "subfolders": set()})
        subfolder = node.get("subfolder", default_subfolder) if part != "unet" or arg.startswith("pretrained") else None
        if subfolder:
            entry["subfolders"].add(subfolder)
    return sources


def check_weights(cfg: DictConfig, hub_timeout: float = 5.0) -> list[Finding]:
    """Every pretrained location: a local folder that exists (with the subfolders the model reads), or a hub id that
    is cached or reachable."""
    findings = []
    for value, entry in _weight_sources(cfg).items():
        key = entry["key"]
        if _is_hub_id(value):
            problem = _hub_problem(value, hub_timeout)
            if problem:
                findings.append(Finding(key, problem, (
                    f"{key}=<local diffusers folder> (e.g. from `hf download {value} --local-dir <folder>` on a "
                    f"machine with network); on a machine without internet, fill the Hugging Face cache elsewhere "
                    f"and set HF_HUB_OFFLINE=1")))
            continue
        folder = Path(value).expanduser()
        fix = _toy_fix(cfg) if _under_toy_root(value, cfg) else f"{key}=<existing local folder or hub id>"
        if not folder.is_dir():
            findings.append(Finding(key, f"local weights folder not found: {folder}{_toy_root_note(value, cfg)}",
                                    fix))
            continue
        missing = sorted(s for s in entry["subfolders"] if not (folder / s).is_dir())
        if missing and not (folder / "config.json").is_file():
            findings.append(Finding(key, f"{folder} lacks the subfolder(s) {missing} of a diffusers pipeline folder",
                                    fix))
    vae_class = str((cfg.get("pretrained") or {}).get("vae_class") or "")
    if vae_class and importlib.util.find_spec(vae_class.rsplit(".", 1)[0]) is None:
        findings.append(Finding("pretrained.vae_class", f"module of {vae_class} not found",
                                "pretrained.vae_class=diffusers.AutoencoderKL"))
    init_from = cfg.model.get("init_from")
    if init_from and not Path(init_from).exists():
        findings.append(Finding("model.init_from", f"initial weights not found: {init_from}", (
            "train the stage it comes from first (paper_stage2 reads paper_stage1's last.ckpt), or "
            "model.init_from=<a .ckpt, exported pipeline or unet folder>, or model.init_from=null")))
    return findings


# ---------------------------------------------------------------------------------------------- devices and strategy


def _strategy_name(strategy: Any) -> str:
    if isinstance(strategy, (dict, DictConfig)):
        return str(strategy.get("_target_", ""))
    return strategy if isinstance(strategy, str) else type(strategy).__name__


def check_strategy_available(strategy) -> None:
    """Fail early, with the fix, when a config names a strategy whose optional dependency is missing."""
    if "deepspeed" in _strategy_name(strategy).lower() and importlib.util.find_spec("deepspeed") is None:
        raise ImportError("trainer=deepspeed_zero2 needs the optional dependency DeepSpeed, which is not installed: "
                          "`pip install deepspeed` (needs a CUDA toolkit), or use trainer=ddp / trainer=fsdp")


def check_global_batch_size(cfg: DictConfig) -> None:
    """``global_batch_size`` (when set) must equal batch_size x devices x num_nodes x accumulate_grad_batches."""
    expected = cfg.get("global_batch_size")
    devices = cfg.trainer.get("devices", 1)
    if expected is None or not isinstance(devices, int) or devices < 1:
        return
    actual = (cfg.data.batch_size * devices * cfg.trainer.get("num_nodes", 1)
              * cfg.trainer.get("accumulate_grad_batches", 1))
    if actual != expected:
        raise ValueError(
            f"global_batch_size={expected} but data.batch_size ({cfg.data.batch_size}) x trainer.devices ({devices}) x "
            f"trainer.num_nodes ({cfg.trainer.get('num_nodes', 1)}) x trainer.accumulate_grad_batches "
            f"({cfg.trainer.get('accumulate_grad_batches', 1)}) = {actual}; adjust one of them "
            f"(or set global_batch_size=null)")


def _uses_gpu(cfg: DictConfig, machine: Machine) -> bool:
    accelerator = str(cfg.trainer.get("accelerator", "auto")).lower()
    return accelerator in ("gpu", "cuda") or (accelerator == "auto" and machine.gpu_count > 0)


def _processes_per_node(cfg: DictConfig, machine: Machine) -> int:
    devices = cfg.trainer.get("devices", 1)
    if isinstance(devices, int) and devices > 0:
        return devices
    if isinstance(devices, (list, tuple)) or (hasattr(devices, "__len__") and not isinstance(devices, str)):
        return len(devices)
    return max(machine.gpu_count, 1) if _uses_gpu(cfg, machine) else 1


def _accumulation_for(cfg: DictConfig, devices: int) -> int | None:
    """``trainer.accumulate_grad_batches`` that keeps ``global_batch_size`` on ``devices`` (None: none does)."""
    expected = cfg.get("global_batch_size")
    per_step = cfg.data.batch_size * devices * cfg.trainer.get("num_nodes", 1)
    if expected is None or not per_step or expected % per_step:
        return None
    return expected // per_step


def _devices_fix(cfg: DictConfig, devices: int) -> str:
    accumulate = _accumulation_for(cfg, devices)
    if cfg.get("global_batch_size") is None:
        return f"trainer.devices={devices}"
    if accumulate is None:
        return (f"trainer.devices={devices}, and data.batch_size / trainer.accumulate_grad_batches that keep "
                f"global_batch_size={cfg.global_batch_size}")
    return (f"trainer.devices={devices} trainer.accumulate_grad_batches={accumulate} (keeps "
            f"global_batch_size={cfg.global_batch_size})")


def check_devices(cfg: DictConfig, machine: Machine) -> list[Finding]:
    """Accelerator present, enough GPUs (or cores) for ``trainer.devices``, strategy dependency, global batch."""
    findings = []
    accelerator = str(cfg.trainer.get("accelerator", "auto")).lower()
    devices = cfg.trainer.get("devices", 1)
    if accelerator in ("gpu", "cuda") and machine.gpu_count == 0:
        findings.append(Finding("trainer.accelerator", f"trainer.accelerator={accelerator} but this machine has no "
                                "CUDA GPU (torch.cuda.is_available() is False)",
                                "run on a GPU machine; on a CPU only small models train: trainer=cpu "
                                "trainer.devices=1 (e.g. experiment=toy)"))
    if isinstance(devices, int) and devices > 0:
        if _uses_gpu(cfg, machine) or accelerator in ("gpu", "cuda"):
            if devices > machine.gpu_count:
                fit = max(machine.gpu_count, 1)
                findings.append(Finding("trainer.devices", f"trainer.devices={devices} GPU processes but this machine "
                                        f"has {machine.gpu_count} GPU(s)",
                                        _devices_fix(cfg, fit)))
        elif devices > machine.cpu_cores:
            findings.append(Finding("trainer.devices", f"trainer.devices={devices} CPU training processes on "
                                    f"{machine.cpu_cores} CPU core(s) (an experiment's devices survive trainer=cpu)",
                                    _devices_fix(cfg, 1)))
    try:
        check_strategy_available(cfg.trainer.get("strategy"))
    except ImportError as error:
        findings.append(Finding("trainer.strategy", str(error).split(":")[0],
                                "pip install deepspeed (needs a CUDA toolkit), or trainer=ddp / trainer=fsdp"))
    try:
        check_global_batch_size(cfg)
    except ValueError as error:
        accumulate = _accumulation_for(cfg, devices) if isinstance(devices, int) and devices > 0 else None
        fix = "adjust data.batch_size / trainer.devices / trainer.accumulate_grad_batches, or global_batch_size=null"
        findings.append(Finding("global_batch_size", str(error).split(";")[0],
                                f"trainer.accumulate_grad_batches={accumulate}, or {fix}" if accumulate else fix))
    return findings


def _frame_bytes(spec: Any) -> int:
    resolution = spec.get("resolution", 256) if spec is not None else 256
    height, width = (resolution, resolution) if isinstance(resolution, int) else tuple(resolution)
    return 3 * int(spec.get("num_frames", 16) if spec is not None else 16) * int(height) * int(width) * 4


def check_resources(cfg: DictConfig, machine: Machine, settings: Any) -> list[Finding]:
    """Training processes x (loader workers + 1) against cores; their estimated host memory against what is free."""
    findings = []
    processes = _processes_per_node(cfg, machine)
    workers = int(cfg.data.get("num_workers", 0) or 0)
    per_core = float(settings.get("max_processes_per_core", 2))
    if "SLURM_CPUS_PER_TASK" in os.environ and "SLURM_LOCALID" in os.environ:
        # srun binds each training process (task) to its own --cpus-per-task cores: check one process.
        if workers + 1 > machine.cpu_cores * per_core:
            findings.append(Finding(
                "data.num_workers", f"data.num_workers ({workers}) + 1 processes per task on the task's "
                f"{machine.cpu_cores} CPU core(s) (more than {per_core:g} per core)",
                f"data.num_workers={max(int(machine.cpu_cores * per_core) - 1, 0)} or sbatch --cpus-per-task=<more>"))
    elif processes * (workers + 1) > machine.cpu_cores * per_core:
        limit = int(machine.cpu_cores * per_core)
        fits = [f"data.num_workers={limit // processes - 1}"] if limit // processes >= 1 else []
        if processes > 1 and limit // (workers + 1) >= 1:
            fits.append(f"trainer.devices={limit // (workers + 1)}")
        fits = fits or [f"trainer.devices=1 data.num_workers={max(limit - 1, 0)}"]
        findings.append(Finding(
            "trainer.devices" if processes > 1 else "data.num_workers",
            f"trainer.devices ({processes}) x (data.num_workers ({workers}) + 1) = {processes * (workers + 1)} "
            f"processes on {machine.cpu_cores} CPU core(s) (more than {per_core:g} per core)",
            " or ".join(fits) + f" (devices x (num_workers + 1) <= {limit}; preflight.max_processes_per_core)"))
    prefetch = int(cfg.data.get("prefetch_factor", 2) or 2) if workers else 0
    batch_gb = cfg.data.batch_size * _frame_bytes(cfg.data.get("train_dataset")) / 2**30
    per_process = float(settings.get("process_memory_gb", 1)) + workers * prefetch * batch_gb
    needed = processes * per_process
    if needed > machine.memory_available_gb:
        base = float(settings.get("process_memory_gb", 1))
        fits = []
        if processes > 1 and machine.memory_available_gb // per_process >= 1:
            fits.append(f"trainer.devices={int(machine.memory_available_gb // per_process)}")
        if workers and prefetch and machine.memory_available_gb / processes > base:
            affordable = int((machine.memory_available_gb / processes - base) / (prefetch * batch_gb))
            fits.append(f"data.num_workers={min(workers - 1, affordable)}")
        fits = fits or [f"fewer training processes than {processes} (trainer.devices), on a machine with more memory"]
        findings.append(Finding(
            "trainer.devices" if processes > 1 else "data.num_workers",
            f"about {needed:.1f} GiB of host memory needed ({processes} process(es) x ({base:g} GiB + {workers} "
            f"loader worker(s) x {prefetch} prefetched batches of {batch_gb:.2f} GiB)) but "
            f"{machine.memory_available_gb:.1f} GiB is available",
            " or ".join(fits) + " (preflight.process_memory_gb: the estimate per training process)"))
    return findings


# ------------------------------------------------------------------------------------------------------------- data


def _required_columns(spec: Any) -> set[str]:
    template = spec.get("path_template", "{page_dir}/{videoid}.mp4")
    required = {"videoid", spec.get("caption_column", "name")}
    required |= {f for _, f, _, _ in string.Formatter().parse(template) if f}
    if spec.get("require_short_prompt", False):
        required.add(spec.get("short_prompt_column", "short_prompt"))
    return required


def _data_fix(cfg: DictConfig, path: str, key: str) -> str:
    if _under_toy_root(path, cfg):
        return _toy_fix(cfg)
    return (f"put the data there (data/README.md; paths.data_dir=<folder> moves every data path), or "
            f"{key}=<existing path>")


def _check_dataset(cfg: DictConfig, prefix: str, spec: Any) -> list[Finding]:
    if spec is None:
        return []
    if spec.get("shards") is not None:
        folder = Path(spec.shards)
        if not (folder / "index.json").is_file():
            what = "does not exist" if not folder.exists() else "has no index.json"
            return [Finding(f"{prefix}.shards", f"shard folder {folder} {what}",
                            f"python scripts/make_webvid_shards.py --csv <csv> --out {folder} (data/README.md), or "
                            f"{prefix}.shards=<shard folder>")]
        return []
    findings = []
    csv_path = Path(spec.csv_path)
    if not csv_path.is_file():
        findings.append(Finding(f"{prefix}.csv_path", f"CSV not found: {csv_path}{_toy_root_note(str(csv_path), cfg)}",
                                _data_fix(cfg, str(csv_path), f"{prefix}.csv_path")))
    else:
        with open(csv_path, newline="") as handle:
            header = next(csv.reader(handle), [])
        missing = sorted(_required_columns(spec) - set(header))
        if missing:
            findings.append(Finding(f"{prefix}.csv_path", f"{csv_path} lacks the column(s) {missing} (has {header})",
                                    f"a CSV with those columns (data/README.md), or {prefix}.path_template / "
                                    f"caption_column / require_short_prompt matching this one"))
    video_root = Path(spec.get("video_root") or csv_path.parent)
    if csv_path.is_file() and not video_root.is_dir():
        findings.append(Finding(f"{prefix}.video_root", f"video folder not found: {video_root}",
                                _data_fix(cfg, str(video_root), f"{prefix}.video_root")))
    labels = spec.get("motion_labels", "flow")
    sidecar = None
    if labels == "sidecar":
        sidecar = Path(spec.get("motion_sidecar") or csv_path.with_name(csv_path.stem + ".motion.parquet"))
    elif labels not in (None, "flow"):
        sidecar = Path(labels)
    if sidecar is not None and csv_path.is_file():
        parts = sidecar.with_name(sidecar.name + ".parts")
        if not sidecar.exists() and not any(parts.glob("*.parquet")):
            findings.append(Finding(f"{prefix}.motion_sidecar", f"motion-label sidecar not found: {sidecar}",
                                    f"python scripts/annotate_motion.py --csv {csv_path} --video-root {video_root} "
                                    f"--out {sidecar}, or {prefix}.motion_labels=flow (labels computed on the fly)"))
    return findings


def check_data(cfg: DictConfig) -> list[Finding]:
    """Training and validation data: CSV (+ columns), video root, shard index, motion-label sidecar."""
    return (_check_dataset(cfg, "data.train_dataset", cfg.data.get("train_dataset"))
            + _check_dataset(cfg, "data.val_dataset", cfg.data.get("val_dataset")))


# ----------------------------------------------------------------------------------------------- outputs, loggers


def _not_writable(folder: Path) -> str | None:
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        return f"{existing} is not a folder"
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as error:
        return f"cannot write in {existing} ({error.strerror or error})"
    return None


def check_outputs(cfg: DictConfig) -> list[Finding]:
    """The run folder and checkpoint folder are writable; a wandb logger is logged in or offline."""
    findings = []
    folders = {"paths.output_dir": cfg.paths.output_dir}
    checkpoint_cfg = (cfg.get("callbacks") or {}).get("model_checkpoint")
    if checkpoint_cfg and checkpoint_cfg.get("dirpath"):
        folders["callbacks.model_checkpoint.dirpath"] = checkpoint_cfg.dirpath
    for key, folder in folders.items():
        problem = _not_writable(Path(folder))
        if problem:
            findings.append(Finding(key, f"output folder {folder}: {problem}",
                                    "hydra.run.dir=<writable folder> (or paths.log_dir=<writable folder>)"))
    wandb_cfg = (cfg.get("logger") or {}).get("wandb")
    mode = os.environ.get("WANDB_MODE", "").lower()
    if wandb_cfg and not wandb_cfg.get("offline", False) and mode not in ("offline", "disabled", "dryrun"):
        netrc = Path(os.environ.get("NETRC", Path.home() / ".netrc"))
        logged_in = bool(os.environ.get("WANDB_API_KEY")) or (
            netrc.is_file() and "api.wandb.ai" in netrc.read_text(errors="ignore"))
        if not logged_in:
            findings.append(Finding("logger.wandb", "wandb is not logged in (no WANDB_API_KEY, no api.wandb.ai "
                                    "entry in ~/.netrc)",
                                    "wandb login, or WANDB_MODE=offline (then `wandb sync`), or logger=csv"))
    return findings


def validation_warnings(cfg: DictConfig) -> list[str]:
    """Validation that will never run: ``trainer.val_check_interval`` (steps) beyond ``trainer.max_steps``."""
    trainer = cfg.trainer
    interval, max_steps = trainer.get("val_check_interval"), trainer.get("max_steps")
    if cfg.data.get("val_dataset") is None or trainer.get("limit_val_batches") == 0:
        return []
    if isinstance(interval, int) and isinstance(max_steps, int) and 0 < max_steps < interval:
        return [f"validation never runs: trainer.val_check_interval={interval} > trainer.max_steps={max_steps} "
                f"(no val/loss, no validation samples); set trainer.val_check_interval={max_steps} or lower"]
    return []


# --------------------------------------------------------------------------------------------------------- the run


def run_preflight(cfg: DictConfig, machine: Machine | None = None) -> PreflightReport:
    """Run every check on ``cfg`` (nothing is loaded or written) and collect problems and warnings."""
    settings = cfg.get("preflight") or {}
    machine = machine or Machine.detect()
    report = PreflightReport()
    checks: list[tuple[str, Callable[[], list[Finding]]]] = [
        ("weights", lambda: check_weights(cfg, float(settings.get("hub_timeout_s", 5)))),
        ("devices", lambda: check_devices(cfg, machine)),
        ("data", lambda: check_data(cfg)),
        ("outputs", lambda: check_outputs(cfg)),
        ("resources", lambda: check_resources(cfg, machine, settings)),
    ]
    for name, check in checks:
        try:
            report.problems += check()
        except Exception as error:  # a check that cannot run is itself a finding, never a crash of the report
            report.problems.append(Finding(name, f"the {name} check failed: {type(error).__name__}: {error}",
                                           "fix the config values it reads"))
    try:
        report.resume = plan_resume(cfg)
    except ResumeError as error:
        report.problems.append(Finding(error.key, error.problem, error.fix))
    report.warnings += validation_warnings(cfg) + describe_init_source(cfg)
    return report
