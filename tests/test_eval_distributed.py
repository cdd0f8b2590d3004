"""The eval metrics give the same result in 1 and 2 processes (torch.distributed gloo on CPU, 2 spawned ranks,
each updating half of the data; torchmetrics syncs the states in compute())."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp

from test_eval_metrics import TINY_DETECTOR_FEATURES, random_videos, tiny_clip_dir, tiny_detector_path  # noqa: F401
from test_motion import translating_disc

SPEEDS = [0.5, 1.0, 1.5, 2.0, 2.5, 3.0]


def _data():
    """Deterministic inputs: FVD real/fake clips, CLIP videos + prompts + images, regional discs + masks."""
    fvd_real, fvd_fake = random_videos(8, seed=0), random_videos(8, seed=1, brightness=40)
    clip_videos = random_videos(4, frames=3, size=32, seed=2)
    prompts = ["move left", "spin", "wag tail", "grow"]
    images = [v[0] for v in random_videos(4, frames=1, size=32, seed=3)]
    regional = [translating_disc(32, 5.0, (s, 0.0), num_frames=4) for s in SPEEDS]
    return fvd_real, fvd_fake, clip_videos, prompts, images, regional


def _compute(detector: str, clip_dir: str, rank: int = 0, world: int = 1) -> dict:
    from fyc.eval.clip_metrics import CLIPVideoMetrics
    from fyc.eval.fvd import FrechetVideoDistance, videos_to_bcthw
    from fyc.eval.regional import RegionalMotionMetrics
    from fyc.motion import FlowEstimator

    fvd_real, fvd_fake, clip_videos, prompts, images, regional = _data()
    part = slice(rank, None, world)  # this rank's share (uneven shares on purpose: 8/8, 4, 6 items)
    fvd = FrechetVideoDistance(detector, num_features=TINY_DETECTOR_FEATURES)
    fvd.update(videos_to_bcthw(fvd_real[part]), real=True)
    fvd.update(videos_to_bcthw(fvd_fake[part]), real=False)
    if rank == 1:  # one more fake clip on one rank only: counts differ between ranks
        fvd.update(videos_to_bcthw(random_videos(1, seed=9)), real=False)
    clip = CLIPVideoMetrics(clip_dir)
    clip.update(clip_videos[part], prompts[part], images[part])
    regional_metric = RegionalMotionMetrics(FlowEstimator("dis"), dilate_px=1, region="swept")
    videos, covers = zip(*regional[part])
    regional_metric.update(list(videos), [c[0] for c in covers], requested_strengths=SPEEDS[part],
                           directions=["right"] * len(videos))
    return {"fvd": fvd.compute(), "fvd_counts": [fvd.protocol()["num_real"], fvd.protocol()["num_fake"]],
            "clip": clip.compute(), "regional": regional_metric.compute()}


def _worker(rank: int, world: int, init_file: str, detector: str, clip_dir: str, out: str) -> None:
    os.environ["OMP_NUM_THREADS"] = "1"
    torch.set_num_threads(1)
    torch.distributed.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        result = _compute(detector, clip_dir, rank, world)
        Path(out, f"rank{rank}.json").write_text(json.dumps(result))
    finally:
        torch.distributed.destroy_process_group()


def test_metrics_agree_between_one_and_two_processes(tiny_detector_path, tiny_clip_dir, tmp_path):
    # Single process, all the data (the extra fake clip of rank 1 included through world=2's rank 1 path below).
    single_a = _compute(str(tiny_detector_path), str(tiny_clip_dir), rank=0, world=1)
    mp.spawn(_worker, args=(2, str(tmp_path / "init"), str(tiny_detector_path), str(tiny_clip_dir), str(tmp_path)),
             nprocs=2, join=True)
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    assert ranks[0] == ranks[1]  # every rank gets the synced value
    multi = ranks[0]
    assert multi["fvd_counts"] == [8, 9]
    # The single-process reference for FVD must see the same 9 fake clips.
    from fyc.eval.fvd import FrechetVideoDistance, videos_to_bcthw

    fvd_real, fvd_fake, *_ = _data()
    fvd = FrechetVideoDistance(str(tiny_detector_path), num_features=TINY_DETECTOR_FEATURES)
    fvd.update(videos_to_bcthw(fvd_real), real=True)
    fvd.update(videos_to_bcthw(np.concatenate([fvd_fake, random_videos(1, seed=9)])), real=False)
    assert multi["fvd"] == pytest.approx(fvd.compute(), rel=1e-9) and multi["fvd"] > 0
    assert multi["clip"].keys() == single_a["clip"].keys() == {"tem_consis", "text_align", "text_align_clip_s",
                                                               "image_align"}
    for key, value in single_a["clip"].items():
        assert multi["clip"][key] == pytest.approx(value, abs=1e-6), key
    assert multi["regional"].keys() == single_a["regional"].keys()
    for key, value in single_a["regional"].items():
        assert multi["regional"][key] == pytest.approx(value, rel=1e-9, abs=1e-12), key
    assert multi["regional"]["strength_spearman"] == pytest.approx(1.0)
