"""Shipped benchmark protocols: the fyc30 template + filler/validator, the MSR-VTT manifest builder, and the
eval_protocol config group composed the way evaluate.py composes it."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from PIL import Image

from conftest import compose
from fyc.eval.manifest import load_manifest
from fyc.eval.protocols import FYC30_TEMPLATE, build_msrvtt_manifest, fill_fyc30_manifest


def test_fyc30_template_fill_and_validation(tmp_path):
    template = load_manifest(FYC30_TEMPLATE)
    assert len(template) == 30 and len({item.id for item in template}) == 30
    images = tmp_path / "mine"
    images.mkdir()
    rng = np.random.default_rng(0)
    for k, item in enumerate(template):
        Image.fromarray(rng.integers(0, 255, (40, 48, 3), dtype=np.uint8)).save(images / f"{item.id}.png")
        mask = np.zeros((40, 48), np.uint8)
        mask[10:20, 10 + k % 20:20 + k % 20] = 255
        Image.fromarray(mask).save(images / f"{item.id}_mask.png")
    rows = ["id,prompt,strength,style"] + [f"{item.id},wag tail,{4 * (1 + k % 4)},cartoon"
                                            for k, item in enumerate(template)]
    prompts = tmp_path / "prompts.csv"
    prompts.write_text("\n".join(rows) + "\n")
    out = fill_fyc30_manifest(tmp_path / "fyc30" / "manifest.jsonl", images, prompts)
    items = load_manifest(out)
    assert len(items) == 30 and {item.strength for item in items} == {4.0, 8.0, 12.0, 16.0}
    assert items[0].prompt == "wag tail" and items[0].extra == {"style": "cartoon"}  # unfilled 'content' dropped
    assert items[0].image == str(images / "fyc30_00.png")

    # What the validator catches, each naming the item and field.
    with pytest.raises(ValueError, match="item 'fyc30_00': field 'prompt' is still the placeholder"):
        fill_fyc30_manifest(tmp_path / "a.jsonl", images)
    with pytest.raises(ValueError, match="item 'fyc30_00': image file not found: .*fyc30_00.png"):
        fill_fyc30_manifest(tmp_path / "b.jsonl", None, prompts)
    Image.fromarray(np.zeros((40, 48), np.uint8)).save(images / "fyc30_03_mask.png")
    with pytest.raises(ValueError, match="item 'fyc30_03': mask .* is empty"):
        fill_fyc30_manifest(tmp_path / "c.jsonl", images, prompts)
    Image.fromarray(np.full((20, 20), 255, np.uint8)).save(images / "fyc30_03_mask.png")
    with pytest.raises(ValueError, match="item 'fyc30_03': mask .* is 20x20, image is 48x40"):
        fill_fyc30_manifest(tmp_path / "d.jsonl", images, prompts)
    bad = tmp_path / "bad.csv"
    bad.write_text("id,prompt,strength\nfyc30_01,spin,fast\n")
    with pytest.raises(ValueError, match="bad.csv:2: strength 'fast' is not a number"):
        fill_fyc30_manifest(tmp_path / "e.jsonl", images, bad)


def test_msrvtt_manifest_from_a_fake_msrvtt(toy_root, tmp_path):
    videos = tmp_path / "videos"
    videos.mkdir()
    sources = sorted(toy_root.glob("val_000/*.mp4"))
    annotations = {"videos": [], "sentences": []}
    for k, source in enumerate(sources):
        video_id = f"video{7010 + k}"
        shutil.copy(source, videos / f"{video_id}.mp4")
        annotations["videos"].append({"video_id": video_id, "split": "test"})
        annotations["sentences"] += [{"video_id": video_id, "sen_id": 2 * k + 1, "caption": f"second {k}"},
                                     {"video_id": video_id, "sen_id": 2 * k, "caption": f"a clip {k}"}]
    annotations["videos"].append({"video_id": "video0", "split": "train"})
    (tmp_path / "MSRVTT_data.json").write_text(json.dumps(annotations))
    out = build_msrvtt_manifest(videos, tmp_path / "MSRVTT_data.json", tmp_path / "msrvtt", num_clips=3,
                                min_frames=8)
    items = load_manifest(out)
    assert len(items) == 3 and all(item.id.startswith("video70") for item in items)
    item = items[0]
    assert item.prompt == item.caption == f"a clip {int(item.id[5:]) - 7010}"  # the first caption by sen_id
    assert np.asarray(Image.open(item.mask)).all() and Image.open(item.image).size == (32, 32)
    assert item.reference_video.endswith(f"{item.id}.mp4")
    again = load_manifest(build_msrvtt_manifest(videos, tmp_path / "MSRVTT_data.json", tmp_path / "again",
                                                num_clips=3, min_frames=8))
    assert [i.id for i in again] == [i.id for i in items]  # seeded
    with pytest.raises(ValueError, match="only 0 usable test clips .* needs 3"):
        build_msrvtt_manifest(videos, tmp_path / "MSRVTT_data.json", tmp_path / "x", num_clips=3, min_frames=100)


@pytest.mark.parametrize("name", ["msrvtt_fvd", "fyc30"])
def test_eval_protocol_configs_compose(name):
    cfg = compose("evaluate", [f"eval_protocol={name}", "paths.output_dir=/tmp/unused"])
    assert cfg.eval_protocol_name == name and cfg.generation.num_frames == 16
    if name == "msrvtt_fvd":
        assert cfg.expected_num_items == 1024 and cfg.manifest.endswith("benchmarks/msrvtt/manifest.jsonl")
        assert dict(cfg.metrics.fvd) == {"num_features": 400, "num_frames": 16, "frame_stride": 4, "start": 0,
                                         "resolution": 256, "batch_size": 16}
        assert cfg.metrics.fvd_detector.startswith("https://") and cfg.metrics.clip_model is None
    else:
        assert cfg.expected_num_items == 30 and cfg.metrics.clip_model == "openai/clip-vit-large-patch14"
        assert cfg.metrics.fvd_detector is None
    default = compose("evaluate", ["paths.output_dir=/tmp/unused"])
    assert default.metrics.clip_model is None and default.metrics.fvd_detector is None
    assert default.metrics.region == "tracked" and default.metrics.flow_backend == "dis"
