"""The toy study's evaluation pieces (fyc/research/toy_study.py) and research/toy_study.py end to end (tiny)."""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fyc.data.annotate import read_sidecar
from fyc.data.video_io import read_video
from fyc.eval.manifest import ManifestItem, load_manifest
from fyc.research.toy_study import oracle_items, per_item_spearman, strength_sweep_items, study_table

ROOT = Path(__file__).resolve().parents[1]


def test_strength_sweep_items_scale_the_label_and_keep_the_group():
    items = [ManifestItem(id="a", image="a.png", mask="a_mask.png", prompt="move left", strength=1.5,
                          extra={"gt_kind": "translate"})]
    swept = strength_sweep_items(items, [0.5, 2])
    assert [s.id for s in swept] == ["a@x0.5", "a@x2"]
    assert [s.strength for s in swept] == [0.75, 3.0]
    assert all(s.extra["sweep_of"] == "a" and s.extra["gt_kind"] == "translate" for s in swept)
    assert items[0].extra == {"gt_kind": "translate"}  # the input is not modified
    with pytest.raises(ValueError, match="2 distinct factors"):
        strength_sweep_items(items, [1, 1])
    with pytest.raises(ValueError, match="b: a strength sweep needs"):
        strength_sweep_items([ManifestItem(id="b", image="b.png", prompt="spin")], [0.5, 1])


def test_strength_sweep_rows_share_one_sampling_seed(toy_benchmark, tmp_path):
    """Only the requested strength may differ between a sweep's rows: generate_videos gives them their first
    row's seed (a model blind to the strength then makes identical videos and scores ρ = 0, not seed noise)."""
    from types import SimpleNamespace

    from fyc.pipelines.generate import generate_videos, item_seeds

    items = load_manifest(toy_benchmark)[:2]
    swept = strength_sweep_items(items, [0.5, 1, 2])
    assert item_seeds(swept, 10) == [10, 10, 10, 13, 13, 13]
    assert item_seeds(items, 10) == [10, 11]  # no sweep: item k uses seed + k, as before

    calls = []

    class RecordingPipeline:
        def set_progress_bar_config(self, **kwargs):
            pass

        def __call__(self, image, strength, generator, num_frames, **kwargs):
            calls.append((strength, generator.initial_seed()))
            return SimpleNamespace(frames=[np.zeros((num_frames,) + image.shape, np.float32)])

    done = generate_videos(RecordingPipeline(), swept, tmp_path / "videos", num_frames=2, seed=10)
    assert [seed for _, seed in calls] == [10, 10, 10, 13, 13, 13]
    assert len({strength for strength, _ in calls[:3]}) == 3
    assert all(Path(item.video).is_file() for item in done)


def test_per_item_spearman_is_within_each_group():
    # Within each item the measured motion follows the request perfectly, but item b moves 10x more overall:
    # pooled over items that mixes objects; per item it is exactly 1.
    rows = [{"sweep_of": g, "strength": s, "realised_strength": s * scale}
            for g, scale in (("a", 1.0), ("b", 10.0)) for s in (3.0, 1.0, 2.0)]
    assert per_item_spearman(rows) == pytest.approx(1.0)
    rows[0]["realised_strength"], rows[1]["realised_strength"] = rows[1]["realised_strength"], rows[0]["realised_strength"]
    assert per_item_spearman(rows) == pytest.approx((-1.0 + 1.0) / 2)
    assert math.isnan(per_item_spearman([{"strength": 1.0, "realised_strength": 1.0}]))


def test_study_table_has_a_row_per_variant_and_dashes_for_missing():
    table = study_table({"full": {"motion_leakage": 0.1234, "direction_accuracy": 1.0},
                         "no_ma": {"motion_leakage": float("nan")}})
    lines = table.strip().splitlines()
    assert len(lines) == 4 and lines[2].startswith("| full | 0.123 |") and "1.000" in lines[2]
    assert lines[3].startswith("| no_ma | – |")


def test_oracle_items_are_the_true_videos_at_the_generated_size(toy_benchmark, tmp_path):
    items = load_manifest(toy_benchmark)
    oracle = oracle_items(items[:2], tmp_path, num_frames=4, size=(20, 20))
    for item, true in zip(oracle, items[:2]):
        video = read_video(item.video)
        reference = read_video(true.reference_video, range(4), size=(20, 20))
        assert video.shape == (4, 20, 20, 3)
        assert np.abs(video.astype(int) - reference.astype(int)).max() <= 3  # near-lossless re-encode


@pytest.mark.slow
def test_toy_study_script_runs_two_variants(tmp_path):
    out = tmp_path / "study"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "research/toy_study.py", "--out", str(out), "--variants", "full", "no_strength_embedding",
           "--train-videos", "8", "--val-videos", "2", "--steps", "4", "--eval-steps", "2", "--factors", "0.5", "1",
           "--directional-videos", "2", "--balanced-translation", "--video-frames", "8",
           "--parallel", "2", "--",  # both variants train at once, each logging to <run>/train.out
           "trainer.val_check_interval=4", "callbacks.validation_samples.num_items=1",
           "callbacks.validation_samples.num_inference_steps=2", "data.batch_size=2"]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    results = json.loads((out / "results.json").read_text())
    assert set(results["variants"]) == {"full", "no_strength_embedding", "oracle (true videos)"}
    full = results["variants"]["full"]
    assert full["num_samples"] == 4 and 0.0 <= full["motion_leakage"] <= 1.0
    assert -1.0 <= full["strength_spearman_per_item"] <= 1.0 or math.isnan(full["strength_spearman_per_item"])
    # The translate-only set: every item is a "move" item, so all of them are scored for direction.
    assert full["num_directional_translate"] == 2 and 0.0 <= full["direction_accuracy_translate"] <= 1.0
    assert -1.0 <= full["direction_cosine_translate"] <= 1.0
    directional = load_manifest(out / "directional" / "benchmark" / "benchmark.jsonl")
    assert all(item.prompt.startswith("move ") for item in directional)
    verdict = results["verdicts"]["no_strength_embedding"]
    assert verdict["metric"] == "strength_spearman_per_item" and isinstance(verdict["ablation_is_worse"], bool)
    # paired over the 2 held-out items' sweeps (same seeds in both variants' evaluations)
    assert verdict["paired"]["n"] == 2 and isinstance(verdict["measurably_worse"], bool)
    report = (out / "report.md").read_text()
    assert "paired ablation − full" in report
    assert "| full |" in report and "| oracle (true videos) |" in report and "translate set" in report and (out / "strength_sweep.png").stat().st_size
    assert (out / "samples.png").stat().st_size
    assert set(results["train_seconds"]) == {"full", "no_strength_embedding"}
    assert "exported pipeline" in (out / "runs" / "full" / "train.out").read_text()
    # The trainings read the object-mask sidecar (--train-mask object, the default): windows from frame 0, the
    # mask channel = the toy world's frame-0 object mask.
    assert "train.object.motion.parquet" in (out / "runs" / "full" / "config.yaml").read_text()
    sidecar = read_sidecar(out / "toy" / "train.object.motion.parquet").to_pylist()
    assert len(sidecar) == 8 and all(r["status"] == "ok" and r["frame_indices"][0] == 0 for r in sidecar)
    # --balanced-translation and --video-frames reach both toy worlds (the study's and the translate set's).
    for config in (out / "toy" / "train_config.json", out / "directional" / "val_config.json"):
        world = json.loads(config.read_text())
        assert world["balanced_translation"] is True and world["num_frames"] == 8
    # A rerun reuses the trained variants and their evaluations.
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0 and "train.py" not in proc.stdout and "evaluate.py" not in proc.stdout
    # ... unless the sampler changes: another guidance interval re-evaluates (and only evaluates).
    at = cmd.index("--")
    proc = subprocess.run(cmd[:at] + ["--guidance-interval", "500", "1000"] + cmd[at:], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "train.py" not in proc.stdout and "generation.guidance_interval=[500,1000]" in proc.stdout
    for eval_dir in (out / "eval" / "full", out / "directional" / "eval" / "full"):
        generation = json.loads((eval_dir / "results.json").read_text())["protocol"]["generation"]
        assert generation["guidance_interval"] == [500, 1000]


def _toy_study_module():
    sys.path.insert(0, str(ROOT / "research"))
    try:
        import toy_study
    finally:
        sys.path.remove(str(ROOT / "research"))
    return toy_study


def test_every_toy_study_variant_composes(tmp_path):
    """research/toy_study.py's variants (configs/ablation/*.yaml) compose on experiment=toy_study and change what they
    name: the study's full model denoises the residual to the first frame, no_first_frame_residual the video latent."""
    from omegaconf import OmegaConf

    from conftest import compose
    from fyc.eval.paired import PER_ITEM_SPEARMAN

    toy_study = _toy_study_module()
    assert set(toy_study.ABLATIONS) == {"full", "no_mask_channel", "no_strength_embedding", "no_ma",
                                        "no_first_frame_masking"}  # the default set; the rest by --variants
    assert set(toy_study.VARIANTS) == {p.stem for p in (ROOT / "configs" / "ablation").glob("*.yaml")}
    assert toy_study.VERDICT_SOURCES["strength_spearman_per_item"] == ("eval", PER_ITEM_SPEARMAN)
    configs = {}
    for name, (overrides, metric, better) in toy_study.VARIANTS.items():
        cfg = compose("train", ["experiment=toy_study", *overrides, f"paths.output_dir={tmp_path}"])
        OmegaConf.resolve(cfg)
        configs[name] = cfg.model
        assert better in (None, "low", "high") and (metric is None) == (better is None)
        assert metric is None or metric in toy_study.VERDICT_SOURCES
    assert configs["full"].unet.first_frame_residual
    assert not configs["no_first_frame_residual"].unet.first_frame_residual
    assert not configs["no_mask_channel"].unet.region_mask_channel
    assert not configs["no_strength_embedding"].unet.motion_strength_embedding
    assert not configs["no_ma"].unet.motion_augmented_attention
    assert configs["no_first_frame_masking"].first_frame_masking is None and configs["full"].first_frame_masking


def test_load_ablations_names_the_file_and_field_of_bad_metadata(tmp_path):
    from fyc.research.toy_study import load_ablations

    (tmp_path / "x.yaml").write_text("# @package _global_\nmodel: {}\n")
    with pytest.raises(ValueError, match=r"x\.yaml: no 'ablation_meta'"):
        load_ablations(tmp_path)
    (tmp_path / "x.yaml").write_text("ablation_meta: {changes: a, hurts: i1_mse, better: lower, "
                                     "verdict_source: {evaluation: eval, column: i1_mse}, toy_study: default}\n")
    with pytest.raises(ValueError, match=r"x\.yaml: ablation_meta.better='lower', expected low or high"):
        load_ablations(tmp_path)
    (tmp_path / "x.yaml").write_text("ablation_meta: {changes: a, hurts: i1_mse, better: low, verdict_source: null, "
                                     "toy_study: default}\n")
    with pytest.raises(ValueError, match="set all three or none"):
        load_ablations(tmp_path)


def test_docs_ablation_table_is_the_generated_one():
    """docs/training.md carries `python research/toy_study.py --list-ablations`'s output verbatim."""
    proc = subprocess.run([sys.executable, "research/toy_study.py", "--list-ablations"], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.count("\n| `") == len(list((ROOT / "configs" / "ablation").glob("*.yaml")))
    assert proc.stdout in (ROOT / "docs" / "training.md").read_text(), \
        "docs/training.md's ablation table is stale: paste `python research/toy_study.py --list-ablations`"
