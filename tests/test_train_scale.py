"""Training at scale on the toy world: exact resume, export, 2-process DDP, validation samples, ablations,
condition dropout statistics, gradient routing, atomic checkpoints."""
from __future__ import annotations

import csv
import logging
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from conftest import ROOT, compose

# Exact-resume run: 12 training clips / batch 4 = 3 batches per epoch; 4 steps cross an epoch boundary and the
# interrupted run stops mid-epoch (after step 2), so the data order must resume inside an epoch.
RESUME_STEPS = 4
RESUME_OVERRIDES = [
    "~logger", "callbacks.lr_monitor=null", "callbacks.validation_samples=null", "export_pipeline=false",
    "trainer.val_check_interval=100", "trainer.limit_val_batches=0", "trainer.log_every_n_steps=1",
    "callbacks.model_checkpoint.every_n_train_steps=2", f"model.lr_scheduler.num_training_steps={RESUME_STEPS}",
    "model.lr_scheduler.num_warmup_steps=1", "model.optimizer.lr=1e-3", "+model.ema.decay=0.9",
    "+model.ema.warmup=true", "model.text_embedding_cache=64",
]


def _toy_cfg(toy_root, out_dir, *overrides):
    return compose("train", ["experiment=toy", f"paths.toy_root={toy_root}", f"paths.output_dir={out_dir}",
                             *overrides])


def _trained_state(ckpt: Path) -> dict:
    checkpoint = torch.load(ckpt, map_location="cpu", weights_only=True)
    return {"weights": checkpoint["state_dict"], "ema": checkpoint["ema"]["shadow"],
            "optimizer": checkpoint["optimizer_states"][0]["state"], "step": checkpoint["global_step"],
            "lr": checkpoint["lr_schedulers"][0]["last_epoch"], "loops": checkpoint["loops"]}


@pytest.fixture(scope="module")
def resume_runs(toy_root, toy_components, tmp_path_factory):
    """(uninterrupted 2N-step checkpoint, N-step checkpoint, resumed-to-2N checkpoint) of the same toy config."""
    from fyc.training.run import train

    base = tmp_path_factory.mktemp("resume")
    full, part = base / "full", base / "part"
    train(_toy_cfg(toy_root, full, *RESUME_OVERRIDES, f"trainer.max_steps={RESUME_STEPS}"))
    train(_toy_cfg(toy_root, part, *RESUME_OVERRIDES, f"trainer.max_steps={RESUME_STEPS // 2}"))
    interrupted = part / "checkpoints" / "interrupted.ckpt"
    shutil.copy(part / "checkpoints" / "last.ckpt", interrupted)  # the resumed run overwrites last.ckpt
    records = []  # what the resumed run logs
    handler = logging.Handler(logging.INFO)
    handler.emit = lambda record: records.append(record.getMessage())
    run_log = logging.getLogger("fyc.training.run")
    run_log.addHandler(handler)
    level = run_log.level
    run_log.setLevel(logging.INFO)
    try:
        train(_toy_cfg(toy_root, part, *RESUME_OVERRIDES, f"trainer.max_steps={RESUME_STEPS}", "ckpt_path=last"))
    finally:
        run_log.removeHandler(handler)
        run_log.setLevel(level)
    resume_runs_log.extend(records)
    return full / "checkpoints" / "last.ckpt", interrupted, part / "checkpoints" / "last.ckpt"


resume_runs_log: list[str] = []


def test_resumed_run_logs_checkpoint_step_and_config_changes(resume_runs):
    """The resumed run names the checkpoint and step it resumed from, and the config keys that changed."""
    assert any("resuming from" in line and "interrupted" not in line and f"at step {RESUME_STEPS // 2}" in line
               for line in resume_runs_log), resume_runs_log
    assert any("config changes since the checkpoint" in line and "trainer.max_steps: 2 -> 4" in line
               for line in resume_runs_log), resume_runs_log


def test_resume_continues_exactly(resume_runs):
    """N steps, stop, resume N more == 2N uninterrupted: weights, EMA, optimizer moments, LR schedule, step."""
    full_ckpt, interrupted_ckpt, resumed_ckpt = resume_runs
    interrupted, full, resumed = (_trained_state(p) for p in (interrupted_ckpt, full_ckpt, resumed_ckpt))
    assert interrupted["step"] == RESUME_STEPS // 2 and full["step"] == resumed["step"] == RESUME_STEPS
    assert full["lr"] == resumed["lr"]
    # Only trainable weights are stored (frozen VAE/text encoder reload from the pretrained paths).
    assert not any(k.startswith(("vae.", "text_encoder.")) for k in full["weights"])
    assert full["weights"].keys() == resumed["weights"].keys() and len(full["weights"]) > 10
    for key, value in full["weights"].items():
        assert torch.equal(value, resumed["weights"][key]), key
    changed = [k for k, v in full["weights"].items() if not torch.equal(v, interrupted["weights"][k])]
    assert changed, "the last N steps changed nothing: the comparison would be vacuous"
    for key, value in full["ema"].items():
        assert torch.equal(value, resumed["ema"][key]), f"ema {key}"
    for index, state in full["optimizer"].items():
        for name in ("exp_avg", "exp_avg_sq"):
            assert torch.equal(state[name], resumed["optimizer"][index][name]), (index, name)


def test_checkpoint_resume_state_records_data_position(resume_runs):
    """The interrupted checkpoint records the mid-epoch data position that the resumed run skips to."""
    _, interrupted_ckpt, _ = resume_runs
    checkpoint = torch.load(interrupted_ckpt, map_location="cpu", weights_only=True)
    assert checkpoint["loops"]["fit_loop"]["state_dict"]["combined_loader"] == [{"epoch": 0, "batches_consumed": 2}]
    assert "RNGStateCallback" in checkpoint["callbacks"]
    assert "fyc_config" in checkpoint and checkpoint["fyc_config"]["model"]["ema"]["decay"] == 0.9


def test_export_script_unet_and_pipeline(resume_runs, tmp_path):
    """scripts/export.py turns the checkpoint into a FollowYourClickUNet folder holding the EMA weights, and into a
    pipeline folder that FollowYourClickPipeline loads; --weights raw gives the raw weights."""
    import importlib.util

    from fyc.models.loading import load_fyc_unet_from_folder
    from fyc.pipelines import FollowYourClickPipeline

    full_ckpt, _, _ = resume_runs
    spec = importlib.util.spec_from_file_location("export_script", ROOT / "scripts" / "export.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    state = _trained_state(full_ckpt)

    unet_dir = script.main(["--ckpt", str(full_ckpt), "--out", str(tmp_path / "unet")])
    assert (unet_dir / "diffusion_pytorch_model.safetensors").is_file()
    unet = load_fyc_unet_from_folder(unet_dir)
    exported = unet.state_dict()
    for name, value in state["ema"].items():
        assert torch.equal(exported[name], value), name
    raw_dir = script.main(["--ckpt", str(full_ckpt), "--out", str(tmp_path / "raw"), "--weights", "raw"])
    raw = load_fyc_unet_from_folder(raw_dir).state_dict()
    name = next(n for n in state["ema"] if not torch.equal(state["ema"][n], state["weights"][f"unet.{n}"]))
    assert torch.equal(raw[name], state["weights"][f"unet.{name}"]) and not torch.equal(raw[name], exported[name])

    pipe_dir = script.main(["--ckpt", str(full_ckpt), "--out", str(tmp_path / "pipe"), "--pipeline"])
    pipe = FollowYourClickPipeline.from_pretrained(pipe_dir)
    assert torch.equal(pipe.unet.state_dict()[name], exported[name])


def test_init_from_checkpoint_loads_trained_weights(resume_runs, toy_components):
    """model.init_from (stage 2 from stage 1) starts the UNet from a checkpoint's (EMA) weights; weights that do not
    fit the UNet are refused."""
    from fyc.models.loading import load_fyc_unet
    from fyc.training.module import load_unet_weights

    full_ckpt, _, _ = resume_runs
    shadow = _trained_state(full_ckpt)["ema"]
    build = lambda ma: load_fyc_unet(str(toy_components), str(toy_components / "motion_adapter"),  # noqa: E731
                                     motion_augmented_attention=ma, ma_num_attention_heads=2)
    with pytest.raises(ValueError, match="unexpected"):  # MA weights cannot go into a UNet without MA
        load_unet_weights(build(False), full_ckpt)
    unet = build(True)
    name = next(iter(shadow))
    assert not torch.equal(unet.state_dict()[name], shadow[name])
    load_unet_weights(unet, full_ckpt)
    assert all(torch.equal(unet.state_dict()[n], v) for n, v in shadow.items())


def test_ddp_two_cpu_processes(toy_root, toy_components, tmp_path):
    """The documented multi-GPU command, on 2 CPU processes (gloo): both ranks train, rank 0 checkpoints/exports."""
    proc = subprocess.run(
        [sys.executable, "train.py", "experiment=toy", "trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2",
         "trainer.precision=32-true", "trainer.max_steps=2", "trainer.val_check_interval=2",
         "trainer.limit_val_batches=1", "~logger", "callbacks.lr_monitor=null", "callbacks.validation_samples=null",
         "callbacks.model_checkpoint.every_n_train_steps=2", f"paths.toy_root={toy_root}", f"hydra.run.dir={tmp_path}"],
        cwd=ROOT, capture_output=True, text=True, timeout=300, env={**_env(), "OMP_NUM_THREADS": "1"})
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-4000:]
    assert "MEMBER: 1/2" in output and "MEMBER: 2/2" in output, output[-2000:]
    checkpoint = torch.load(tmp_path / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert checkpoint["global_step"] == 2
    assert (tmp_path / "pipeline" / "unet" / "diffusion_pytorch_model.safetensors").is_file()


def _env():
    import os

    return dict(os.environ)


def test_toy_ablation_runs_and_writes_validation_samples(toy_root, toy_components, tmp_path):
    """ablation=no_ma trains 2 steps on the toy world; the validation-sample callback writes mp4s, logs them to
    wandb (offline) as videos and counts them in the CSV log."""
    from fyc.data.video_io import read_video
    from fyc.training.run import train

    cfg = _toy_cfg(toy_root, tmp_path, "ablation=no_ma", "logger=wandb", "logger.wandb.offline=true",
                   "+logger.csv._target_=lightning.pytorch.loggers.CSVLogger", f"+logger.csv.save_dir={tmp_path}",
                   "trainer.max_steps=2", "trainer.val_check_interval=2", "trainer.limit_val_batches=1",
                   "trainer.log_every_n_steps=1", "callbacks.validation_samples.every_n_steps=2",
                   "callbacks.validation_samples.num_items=2", "callbacks.validation_samples.num_inference_steps=2",
                   "export_pipeline=false")
    result = train(cfg)
    assert torch.isfinite(torch.tensor(result["metrics"]["train/loss"]))
    videos = sorted((tmp_path / "samples" / "step_0000002").glob("*.mp4"))
    assert [v.name for v in videos] == ["00.mp4", "01.mp4"]
    frames = read_video(videos[0])
    assert frames.shape == (8, 32, 32, 3) and frames.dtype.name == "uint8"
    assert list(tmp_path.glob("wandb/offline-run-*/files/media/videos/val/samples_*.mp4")), "no wandb videos"
    rows = list(csv.DictReader(next(tmp_path.glob("lightning_logs/**/metrics.csv")).open()))
    assert any(r.get("val/samples_written") == "2.0" for r in rows)
    logged = {k for r in rows for k, v in r.items() if v}
    assert {"train/grad_norm", "train/lr", "train/samples_per_s", "train/peak_mem_gb"} <= logged


# ---------------------------------------------------------------------------------------------------------- fast units


@pytest.fixture(scope="module")
def toy_module(toy_root, toy_components, tmp_path_factory):
    import hydra

    cfg = _toy_cfg(toy_root, tmp_path_factory.mktemp("mod"), "model.trainable_groups=[motion_modules,conv_in]")
    return hydra.utils.instantiate(cfg.model, _convert_="all")


def _fake_batch(batch: int, frames: int = 8, size: int = 32) -> dict:
    g = torch.Generator().manual_seed(0)
    return {"pixel_values": torch.rand(batch, 3, frames, size, size, generator=g) * 2 - 1,
            "motion_mask": (torch.rand(batch, 1, size, size, generator=g) > 0.5).float(),
            "motion_strength": torch.rand(batch, generator=g) * 4, "frame_stride": torch.ones(batch),
            "caption": [f"a red ball moves left {i % 3}" for i in range(batch)],
            "short_prompt": ["move left"] * batch}


def test_condition_dropout_rates_are_honoured(toy_module, monkeypatch):
    """Per-condition dropout frequencies match the configured rates (binomial 5-sigma bounds) and are independent;
    the module really feeds the null prompt / zero first frame to the UNet for the dropped samples."""
    from fyc.training.conditioning import ConditionDropout

    rates = {"caption": 0.1, "short_prompt": 0.3, "first_frame": 0.05}
    n = 40_000
    drop = ConditionDropout(null_condition=0.0, **rates).draw(n, generator=torch.Generator().manual_seed(1))
    for name, p in rates.items():
        assert abs(drop[name].float().mean().item() - p) < 5 * (p * (1 - p) / n) ** 0.5, name
    joint = (drop["caption"] & drop["short_prompt"]).float().mean().item()
    assert abs(joint - 0.03) < 5 * (0.03 * 0.97 / n) ** 0.5

    module = toy_module
    seen = {}

    def fake_unet(sample, timestep, **kwargs):
        seen.update(kwargs)
        return type("Out", (), {"sample": torch.zeros_like(sample)})()

    monkeypatch.setattr(module.unet, "forward", fake_unet)
    monkeypatch.setattr(module, "condition_dropout", ConditionDropout(null_condition=0.0, caption=0.5, short_prompt=0.2,
                                                                   first_frame=0.3))
    batch = 400
    module.diffusion_loss(_fake_batch(batch, frames=2), generator=torch.Generator().manual_seed(2))
    null = module._null(1)[0]
    is_null = lambda t: torch.tensor([torch.equal(row, null) for row in t])  # noqa: E731
    spatial_rate = is_null(seen["encoder_hidden_states"]).float().mean().item()
    motion_rate = is_null(seen["motion_prompt_embeds"]).float().mean().item()
    first_rate = (seen["first_frame_latent"].flatten(1).abs().sum(1) == 0).float().mean().item()
    for rate, p in ((spatial_rate, 0.5), (motion_rate, 0.2), (first_rate, 0.3)):
        assert abs(rate - p) < 5 * (p * (1 - p) / batch) ** 0.5, (rate, p)


def test_only_chosen_groups_receive_gradients(toy_module):
    """With trainable_groups=[motion_modules, conv_in], exactly those parameters get gradients."""
    from fyc.models.trainable import parameter_group_of

    module = toy_module
    module.unet.zero_grad(set_to_none=True)
    loss = module.diffusion_loss(_fake_batch(2), generator=torch.Generator().manual_seed(0))
    loss.backward()
    grads = {}
    for name, param in module.unet.named_parameters():
        group = parameter_group_of(name)
        if param.grad is not None:
            grads.setdefault(group, 0.0)
            grads[group] += param.grad.abs().sum().item()
    assert set(grads) == {"motion_modules", "conv_in"}, grads
    assert all(total > 0 for total in grads.values()), grads
    assert all(p.grad is None for p in module.vae.parameters()) and all(
        p.grad is None for p in module.text_encoder.parameters())
    module.unet.zero_grad(set_to_none=True)


def test_atomic_checkpoint_io_keeps_old_file_on_failure(tmp_path, monkeypatch):
    """A write that dies midway leaves the previous checkpoint intact and no temporary file behind."""
    from fyc.training.checkpoint_io import AtomicCheckpointIO

    io = AtomicCheckpointIO()
    path = tmp_path / "last.ckpt"
    io.save_checkpoint({"step": 1, "w": torch.ones(3)}, path)

    def dying_save(obj, handle):
        handle.write(b"partial")
        raise OSError("disk quota exceeded")

    monkeypatch.setattr(torch, "save", dying_save)
    with pytest.raises(OSError, match="quota"):
        io.save_checkpoint({"step": 2}, path)
    monkeypatch.undo()
    assert io.load_checkpoint(path)["step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]


def test_ema_warmup_and_swap():
    """EMA follows s <- d s + (1-d) p with the warm-up decay; swapped_in restores the raw weights afterwards."""
    from fyc.training.ema import EMAWeights

    p = torch.nn.Parameter(torch.zeros(3))
    ema = EMAWeights({"p": p}, decay=0.9, warmup=True)
    with torch.no_grad():
        p.fill_(1.0)
    ema.update({"p": p})  # d = min(0.9, 1/10) = 0.1
    assert torch.allclose(ema.shadow["p"], torch.full((3,), 0.9))
    with ema.swapped_in({"p": p}):
        assert torch.allclose(p, torch.full((3,), 0.9))
    assert torch.equal(p.detach(), torch.ones(3))


def test_loss_snr_cap_scales_each_sample(toy_module, toy_root, toy_components, tmp_path, monkeypatch):
    """model.loss_snr_cap=γ scales each sample's v-loss by min(1, γ / (SNR_t + 1)) = min(1, γ (1 - ᾱ_t)); validation
    (apply_weighting=False) keeps the plain MSE; γ <= 0 is refused with the key named."""
    import hydra

    module = toy_module
    seen = {}

    def unit_error_unet(sample, timestep, **kwargs):  # every sample's MSE against the zero target below is 1
        seen["t"] = timestep
        return type("Out", (), {"sample": torch.ones_like(sample)})()

    monkeypatch.setattr(module.unet, "forward", unit_error_unet)
    monkeypatch.setattr(module.noise_scheduler, "get_velocity", lambda latents, noise, t: torch.zeros_like(latents))
    batch = _fake_batch(64, frames=2)
    assert module.diffusion_loss(batch, generator=torch.Generator().manual_seed(3)).item() == pytest.approx(1.0)
    monkeypatch.setattr(module, "loss_snr_cap", 2.0)
    loss = module.diffusion_loss(batch, generator=torch.Generator().manual_seed(3)).item()
    alpha_bar = module.noise_scheduler.alphas_cumprod[seen["t"]]
    expected = (2.0 * (1 - alpha_bar)).clamp(max=1.0)
    assert loss == pytest.approx(expected.mean().item(), rel=1e-5)
    assert 0.3 < loss < 0.99 and expected.min() < 0.5 and expected.max() == 1.0  # the draw spans both regimes
    assert module.diffusion_loss(batch, generator=torch.Generator().manual_seed(3),
                                 apply_weighting=False).item() == pytest.approx(1.0)
    with pytest.raises(Exception, match="loss_snr_cap"):
        hydra.utils.instantiate(_toy_cfg(toy_root, tmp_path, "model.loss_snr_cap=0").model, _convert_="all")


def test_first_frame_residual_target(toy_module, monkeypatch):
    """model.unet.first_frame_residual: the loss noises and targets latents minus the *clean* first-frame latent
    (frame 0 of the target is exactly zero even with first-frame masking on), while the UNet still gets the masked
    first-frame latent as its condition; off, the target is the latent itself."""
    from fyc.training.conditioning import encode_video

    module = toy_module
    batch = _fake_batch(2, frames=3)
    latents = encode_video(module.vae, batch["pixel_values"])
    seen = {}

    def recording_add_noise(original, noise, timesteps):
        seen["clean"] = original.clone()
        return original + noise

    def recording_unet(sample, timestep, **kwargs):
        seen["first_frame_latent"] = kwargs["first_frame_latent"]
        return SimpleNamespace(sample=torch.zeros_like(sample))

    monkeypatch.setattr(module.noise_scheduler, "add_noise", recording_add_noise)
    monkeypatch.setattr(module.unet, "forward", recording_unet)
    monkeypatch.setattr(module, "first_frame_masking", {"ratio": 0.5, "patch_size": 1, "prob": 1.0})
    internal = module.unet._internal_dict
    try:
        module.unet.register_to_config(first_frame_residual=False)
        module.diffusion_loss(batch, generator=torch.Generator().manual_seed(0), apply_dropout=False)
        torch.testing.assert_close(seen["clean"], latents)
        module.unet.register_to_config(first_frame_residual=True)
        module.diffusion_loss(batch, generator=torch.Generator().manual_seed(0), apply_dropout=False)
    finally:
        module.unet._internal_dict = internal
    torch.testing.assert_close(seen["clean"], latents - latents[:, :, :1])
    assert seen["clean"][:, :, 0].abs().max() == 0 and seen["clean"][:, :, 1:].abs().mean() > 0.01
    masked = seen["first_frame_latent"]
    assert (masked == 0).float().mean() > 0.3 and not torch.equal(masked, latents[:, :, 0])
