"""evaluate.py: score mode on known videos, and generate+score from a pipeline folder."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, compose
from fyc.eval.manifest import ManifestItem, load_manifest, write_manifest
from test_eval_metrics import build_tiny_detector, tiny_clip_dir  # noqa: F401 (fixture)


def test_toy_benchmark_manifest(toy_benchmark):
    items = load_manifest(toy_benchmark)
    assert len(items) == 4
    for item in items:
        assert item.strength is not None and item.strength > 0
        assert item.extra["gt_kind"] and item.prompt


def test_manifest_errors_name_the_problem(tmp_path):
    bad = tmp_path / "m.jsonl"
    bad.write_text('{"id": "a", "image": "x.png"}\n')
    with pytest.raises(ValueError, match="m.jsonl:1: missing required field 'prompt'"):
        load_manifest(bad)
    bad.write_text('{"id": "a", "image": "x.png", "prompt": "spin"}\n')
    with pytest.raises(ValueError, match="needs a 'mask' path or 'clicks'"):
        load_manifest(bad)


def test_manifest_paths_round_trip_from_any_cwd(tmp_path, monkeypatch):
    """Paths given relative to the writer's cwd load back to the same files, below the manifest's folder or not."""
    (tmp_path / "bench" / "images").mkdir(parents=True)
    (tmp_path / "videos").mkdir()
    for name in ("bench/images/a.png", "videos/a.mp4"):
        (tmp_path / name).write_bytes(b"x")
    monkeypatch.chdir(tmp_path)
    item = ManifestItem(id="a", image="bench/images/a.png", prompt="spin", clicks=[[1.0, 2.0]],
                        reference_video="videos/a.mp4")
    manifest = write_manifest(Path("bench") / "m.jsonl", [item])
    row = json.loads(manifest.read_text())
    assert row["image"] == "images/a.png"  # below the manifest: stays relative
    assert row["reference_video"] == str((tmp_path / "videos" / "a.mp4").resolve())
    monkeypatch.chdir(tmp_path / "videos")  # loading from elsewhere finds the same files
    loaded = load_manifest(tmp_path / "bench" / "m.jsonl")[0]
    assert Path(loaded.image).resolve() == (tmp_path / "bench" / "images" / "a.png").resolve()
    assert Path(loaded.reference_video).is_file()


def test_score_mode_on_true_videos(toy_benchmark, tmp_path):
    """Scoring the ground-truth videos themselves: only the object moves, so leakage is ~0, and the realised
    strength is the requested one (the label's definition on the same video)."""
    from fyc.eval.runner import evaluate

    items = [item for item in load_manifest(toy_benchmark)]
    for item in items:
        item.video = item.reference_video
    manifest = write_manifest(tmp_path / "true.jsonl", items)
    cfg = compose("evaluate", ["mode=score", f"manifest={manifest}", f"output_dir={tmp_path / 'eval'}",
                               f"paths.output_dir={tmp_path}"])
    paths = evaluate(cfg)
    results = json.loads(paths["results"].read_text())
    metrics = results["metrics"]
    assert metrics["num_samples"] == 4
    assert metrics["motion_leakage"] < 0.05 and metrics["num_failed"] == 0
    assert results["protocol"]["regional"]["region"] == "tracked"
    assert results["protocol"]["regional"]["flow_backend"] == "dis"
    assert results["protocol"]["regional"]["label_flow_backend"] == "farneback"
    rows = {row["id"]: row for row in map(json.loads, (tmp_path / "eval" / "per_sample.jsonl").read_text().splitlines())}
    for item in items:
        assert rows[item.id]["realised_strength"] == pytest.approx(item.strength, rel=0.1, abs=0.02)
    assert metrics["strength_spearman"] >= 0.75  # 4 items: one swapped pair of near-equal strengths reads 0.8
    assert metrics["motion_leakage_n"] == 4 and metrics["motion_leakage_se"] is not None
    assert "fvd" not in metrics and "text_align" not in metrics  # off by default: no weights needed
    assert metrics["i1_mse"] < 5.0  # first frame of the true video vs the image cut from it
    assert paths["table"].read_text().startswith("| Method |") and "(n=4)" in paths["table"].read_text()
    assert paths["per_sample"].is_file()
    # Every toy prompt names a kind ("move left", "spin", ...): each video's measured kind is recorded.
    assert metrics["num_kind"] == 4 and 0.0 <= metrics["motion_kind_accuracy"] <= 1.0
    assert "kind_measured" in paths["per_sample"].read_text().splitlines()[0]


def test_evaluate_all_from_pipeline_cli(toy_benchmark, toy_pipeline_dir, tmp_path):
    out = tmp_path / "eval"
    proc = subprocess.run(
        [sys.executable, "evaluate.py", "mode=all", f"manifest={toy_benchmark}", f"pipeline_dir={toy_pipeline_dir}",
         "generation.num_inference_steps=2", "generation.guidance_interval=[500,1000]",
         "+scheduler_overrides.set_alpha_to_one=false", f"output_dir={out}", f"hydra.run.dir={tmp_path / 'hydra'}"],
        cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"results: {out}/results.json" in proc.stdout
    results = json.loads((out / "results.json").read_text())
    assert results["protocol"]["generation"]["guidance_interval"] == [500, 1000]
    assert results["protocol"]["scheduler_overrides"] == {"set_alpha_to_one": False}
    metrics = results["metrics"]
    assert metrics["num_samples"] == 4 and "motion_leakage" in metrics
    assert len(list((out / "videos").glob("*.mp4"))) == 4


def test_score_with_tiny_clip_and_fvd_detector(toy_benchmark, tiny_clip_dir, tmp_path):
    """CLIP and FVD switched on by config: the numbers land in results.json and table.md with their protocol."""
    from fyc.eval.runner import evaluate

    detector = build_tiny_detector(tmp_path / "i3d_tiny.pt", num_features=3)  # 3 features < 4 clips
    items = load_manifest(toy_benchmark)
    for item in items:
        item.video = item.reference_video  # "generated" = first 4 frames; reference = frames 0, 2, 4, 6
    manifest = write_manifest(tmp_path / "true.jsonl", items)
    out = tmp_path / "eval"
    cfg = compose("evaluate", ["mode=score", f"manifest={manifest}", f"output_dir={out}",
                               f"paths.output_dir={tmp_path}", f"metrics.clip_model={tiny_clip_dir}",
                               f"metrics.fvd_detector={detector}",
                               "metrics.fvd.num_features=3", "metrics.fvd.num_frames=4", "metrics.fvd.frame_stride=2",
                               "metrics.fvd.resolution=24", "metrics.fvd.batch_size=3", "metrics.region=swept"])
    paths = evaluate(cfg)
    results = json.loads(paths["results"].read_text())
    metrics, protocol = results["metrics"], results["protocol"]
    for key in ("text_align", "tem_consis", "image_align"):
        assert -1.0 <= metrics[key] <= 1.0, key  # raw cosines
    assert 0.0 <= metrics["text_align_clip_s"] <= 2.5
    assert metrics["tem_consis"] > 0.5  # consecutive frames of a mostly static scene
    assert metrics["fvd"] > 0.0
    fvd = protocol["fvd"]
    assert fvd["num_real"] == fvd["num_fake"] == 4 and fvd["num_frames"] == 4
    assert fvd["reference_frame_stride"] == 2 and fvd["resolution"] == {"real": ["24x24"], "fake": ["24x24"]}
    assert fvd["detector"]["path"] == str(detector.resolve()) and len(fvd["detector"]["sha256"]) == 64
    assert protocol["clip"]["checkpoint"] == str(tiny_clip_dir) and protocol["regional"]["region"] == "swept"
    header, _, row = paths["table"].read_text().splitlines()[:3]
    for name in ("I1-MSE", "Tem-Consis", "Text-Align", "Image-Align", "FVD", "Leakage"):
        assert name in header
    cells = [c.strip() for c in row.strip("|").split("|")]
    columns = [c.strip() for c in header.strip("|").split("|")]
    assert float(cells[columns.index("FVD ↓")]) == pytest.approx(metrics["fvd"], rel=1e-3)  # one number: no SE
    assert cells[columns.index("Leakage ↓")].endswith("(n=4)") and " ± " in cells[columns.index("Leakage ↓")]
    per_sample = paths["per_sample"].read_text().splitlines()[0].split(",")
    assert {"text_align", "tem_consis", "image_align"} <= set(per_sample)


def test_score_errors_name_the_field(toy_benchmark, tmp_path):
    from fyc.eval.runner import evaluate

    items = load_manifest(toy_benchmark)
    for item in items:
        item.video = item.reference_video
    items[1].reference_video = None
    manifest = write_manifest(tmp_path / "m.jsonl", items)
    base = ["mode=score", f"manifest={manifest}", f"output_dir={tmp_path / 'eval'}", f"paths.output_dir={tmp_path}"]
    with pytest.raises(ValueError, match=f"{items[1].id}: FVD .* needs 'reference_video'"):
        evaluate(compose("evaluate", base + [f"metrics.fvd_detector={tmp_path / 'x.pt'}"]))
    with pytest.raises(ValueError, match="metrics.region must be one of"):
        evaluate(compose("evaluate", base + ["metrics.region=everything"]))
    with pytest.raises(ValueError, match="needs 1024 manifest items, .* has 4"):
        evaluate(compose("evaluate", base + ["expected_num_items=1024"]))



def test_scheduler_override_must_name_a_config_key(toy_benchmark, toy_pipeline_dir, tmp_path):
    from fyc.eval.runner import evaluate

    cfg = compose("evaluate", ["mode=generate", f"manifest={toy_benchmark}", f"pipeline_dir={toy_pipeline_dir}",
                               f"output_dir={tmp_path / 'eval'}", f"paths.output_dir={tmp_path}",
                               "+scheduler_overrides.set_alpha_to_1=true"])
    with pytest.raises(ValueError, match=r"scheduler_overrides: \['set_alpha_to_1'\] are not config keys"):
        evaluate(cfg)


def test_label_flow_backend_follows_the_training_contract(tmp_path):
    """metrics.label_flow_backend=auto scores realised strength with the backend the model's labels were made with."""
    import json

    from fyc.eval.runner import training_contract
    from fyc.eval.score import resolve_label_flow_backend as label_flow_backend

    assert training_contract(None) is None and training_contract(str(tmp_path)) is None
    assert label_flow_backend("auto", None) == "farneback"
    (tmp_path / "training_contract.json").write_text(json.dumps({"strength_label": {"flow_backend": "raft_large"}}))
    contract = training_contract(str(tmp_path))
    assert label_flow_backend("auto", contract) == "raft_large"
    assert label_flow_backend("dis", contract) == "dis" and label_flow_backend(None, contract) is None
    (tmp_path / "training_contract.json").write_text("{not json")
    with pytest.raises(ValueError, match="training_contract.json"):
        training_contract(str(tmp_path))
