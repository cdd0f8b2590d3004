"""Evaluation keeps its work and refuses unsafe ids: per-item failures are recorded and counted, finished items are
not redone on a rerun, missing inputs are reported all at once, manifest ids cannot collide or escape."""
from __future__ import annotations

import json
import shutil

import pytest

from conftest import compose
from fyc.eval.manifest import load_manifest, write_manifest


def _score_cfg(manifest, out, *extra):
    return compose("evaluate", ["mode=score", f"manifest={manifest}", f"output_dir={out}",
                                f"paths.output_dir={out.parent}", *extra])


def _true_video_manifest(toy_benchmark, tmp_path, name="m.jsonl"):
    items = load_manifest(toy_benchmark)
    for item in items:
        item.video = item.reference_video
    return items, write_manifest(tmp_path / name, items)


def _count_calls(monkeypatch, module, name):
    calls = []
    original = getattr(module, name)

    def counted(*args, **kwargs):
        calls.append(args[0].id if hasattr(args[0], "id") else args[1][0].id)
        return original(*args, **kwargs)

    monkeypatch.setattr(module, name, counted)
    return calls


# -------------------------------------------------------------------------------------------- manifest ids

@pytest.mark.parametrize("lines, match", [
    (['{"id": 1, "image": "a.png", "mask": "m.png", "prompt": "spin"}',
      '{"id": "1", "image": "b.png", "mask": "m.png", "prompt": "spin"}'], r"m.jsonl:2: duplicate id '1' \(line 1"),
    (['{"id": "Cat", "image": "a.png", "mask": "m.png", "prompt": "spin"}',
      '{"id": "cat", "image": "b.png", "mask": "m.png", "prompt": "spin"}'], "m.jsonl:2: duplicate id 'cat'"),
    (['{"id": "../../x", "image": "a.png", "mask": "m.png", "prompt": "spin"}'], r"m.jsonl:1: id '../../x' is not a safe"),
    (['{"id": "a/b", "image": "a.png", "mask": "m.png", "prompt": "spin"}'], "m.jsonl:1: id 'a/b' is not a safe"),
    (['{"id": ".hidden", "image": "a.png", "mask": "m.png", "prompt": "spin"}'], "is not a safe file name"),
    (['{"id": [1], "image": "a.png", "mask": "m.png", "prompt": "spin"}'], "m.jsonl:1: id must be a string or an integer"),
    (['{"id": true, "image": "a.png", "mask": "m.png", "prompt": "spin"}'], "id must be a string or an integer"),
])
def test_manifest_ids_are_normalised_and_checked(tmp_path, lines, match):
    manifest = tmp_path / "m.jsonl"
    manifest.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=match):
        load_manifest(manifest)


def test_integer_ids_become_strings(tmp_path):
    manifest = tmp_path / "m.jsonl"
    manifest.write_text('{"id": 7, "image": "a.png", "mask": "m.png", "prompt": "spin"}\n'
                        '{"id": "x@x0.5", "image": "a.png", "mask": "m.png", "prompt": "spin"}\n')
    assert [item.id for item in load_manifest(manifest)] == ["7", "x@x0.5"]


# ------------------------------------------------------------------------------------- scoring keeps work

def test_a_truncated_video_and_a_missing_image_fail_alone_and_a_rerun_skips_the_rest(toy_benchmark, tmp_path,
                                                                                      monkeypatch):
    import fyc.eval.score as score
    from fyc.eval.runner import evaluate

    items = load_manifest(toy_benchmark)
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(open(items[1].reference_video, "rb").read()[:300])
    for item in items:
        item.video = item.reference_video
    items[1].video = str(truncated)
    items[2].image = str(tmp_path / "gone.png")
    manifest = write_manifest(tmp_path / "m.jsonl", items)
    out = tmp_path / "eval"
    calls = _count_calls(monkeypatch, score, "_score_item")
    paths = evaluate(_score_cfg(manifest, out))
    metrics = json.loads(paths["results"].read_text())["metrics"]
    assert metrics["num_failed"] == 2 and metrics["num_samples"] == 2
    rows = {row["id"]: row for row in map(json.loads, paths["per_sample_log"].read_text().splitlines())}
    assert "cannot read video" in rows[items[1].id]["error"] and "missing image" in rows[items[2].id]["error"]
    assert "motion_leakage" in rows[items[0].id] and "motion_leakage" in rows[items[3].id]
    assert "error" in paths["per_sample"].read_text().splitlines()[0]
    assert items[2].id not in calls  # the missing image was found before scoring started
    # A rerun with the same settings scores only what is not finished (the still-broken video is retried).
    calls.clear()
    evaluate(_score_cfg(manifest, out))
    assert calls == [items[1].id]
    # Other metric settings: everything is scored again.
    calls.clear()
    evaluate(_score_cfg(manifest, out, "metrics.dilate_px=3"))
    assert sorted(calls) == sorted([items[0].id, items[1].id, items[3].id])


def test_a_killed_scoring_run_keeps_its_rows_and_resumes(toy_benchmark, tmp_path, monkeypatch):
    import fyc.eval.score as score
    from fyc.eval.runner import evaluate

    items, manifest = _true_video_manifest(toy_benchmark, tmp_path)
    out = tmp_path / "eval"
    original = score._score_item

    def dies_at_the_third(item, *args):
        if item.id == items[2].id:
            raise KeyboardInterrupt  # the run is killed, not an item failure
        return original(item, *args)

    monkeypatch.setattr(score, "_score_item", dies_at_the_third)
    with pytest.raises(KeyboardInterrupt):
        evaluate(_score_cfg(manifest, out))
    assert len((out / "per_sample.jsonl").read_text().splitlines()) == 2
    monkeypatch.setattr(score, "_score_item", original)
    calls = _count_calls(monkeypatch, score, "_score_item")
    paths = evaluate(_score_cfg(manifest, out))
    assert calls == [items[2].id, items[3].id]
    assert json.loads(paths["results"].read_text())["metrics"]["num_samples"] == 4


def test_strict_reports_every_missing_file_before_running(toy_benchmark, tmp_path, monkeypatch):
    import fyc.eval.score as score
    from fyc.eval.runner import evaluate

    items = load_manifest(toy_benchmark)
    for item in items:
        item.video = item.reference_video
    items[0].video = str(tmp_path / "no0.mp4")
    items[3].mask = str(tmp_path / "no3.png")
    manifest = write_manifest(tmp_path / "m.jsonl", items)
    calls = _count_calls(monkeypatch, score, "_score_item")
    with pytest.raises(FileNotFoundError, match=r"(?s)2 of 4 items.*no0.mp4.*no3.png.*nothing was run"):
        evaluate(_score_cfg(manifest, tmp_path / "eval", "strict=true"))
    assert calls == []
    # strict on a failure found while scoring: the reports are written, then the run fails
    items[3].mask = load_manifest(toy_benchmark)[3].mask
    items[0].video = str(tmp_path / "empty.mp4")
    (tmp_path / "empty.mp4").write_bytes(b"")
    manifest = write_manifest(tmp_path / "m.jsonl", items)
    with pytest.raises(RuntimeError, match="strict=true and 1 item"):
        evaluate(_score_cfg(manifest, tmp_path / "eval2", "strict=true"))
    assert json.loads((tmp_path / "eval2" / "results.json").read_text())["metrics"]["num_failed"] == 1


def test_equal_strengths_score_to_completion(toy_benchmark, tmp_path):
    from fyc.eval.runner import evaluate

    items = load_manifest(toy_benchmark)
    for item in items:
        item.video, item.strength = item.reference_video, 2.0
    manifest = write_manifest(tmp_path / "m.jsonl", items)
    paths = evaluate(_score_cfg(manifest, tmp_path / "eval"))
    metrics = json.loads(paths["results"].read_text())["metrics"]
    assert "strength_spearman" not in metrics and "same strength" in metrics["strength_spearman_absent"]
    assert "Strength ρ absent" in paths["table"].read_text()


def test_generation_failures_are_counted_and_a_rerun_generates_nothing_done(toy_benchmark, toy_pipeline_dir,
                                                                            tmp_path, monkeypatch):
    import fyc.pipelines.generate as generate
    from fyc.eval.runner import evaluate

    items = load_manifest(toy_benchmark)
    broken = tmp_path / "broken.png"
    broken.write_bytes(open(items[1].image, "rb").read()[:40])  # a truncated PNG
    items[1].image = str(broken)
    items[2].image = str(tmp_path / "missing.png")
    manifest = write_manifest(tmp_path / "m.jsonl", items)
    out = tmp_path / "eval"
    cfg = compose("evaluate", ["mode=all", f"manifest={manifest}", f"pipeline_dir={toy_pipeline_dir}",
                               f"output_dir={out}", f"paths.output_dir={tmp_path}", "generation.num_inference_steps=2",
                               "generation.num_frames=4"])
    calls = _count_calls(monkeypatch, generate, "generate_videos")
    paths = evaluate(cfg)
    assert sorted(calls) == sorted([items[0].id, items[1].id, items[3].id])  # the missing image is never sampled
    metrics = json.loads(paths["results"].read_text())["metrics"]
    assert metrics["num_failed"] == 2 and metrics["num_samples"] == 2
    generated = load_manifest(out / "generated.jsonl")
    assert [item.id for item in generated] == [items[0].id, items[3].id]
    calls.clear()
    shutil.copy(load_manifest(toy_benchmark)[2].image, tmp_path / "missing.png")  # the user fixes one item
    paths = evaluate(cfg)
    assert calls == [items[1].id, items[2].id]  # only what was not generated
    assert json.loads(paths["results"].read_text())["metrics"]["num_failed"] == 1
