"""Evaluate: generate videos for a manifest, score them, write results.json / per_sample.csv / table.md / plots.

python evaluate.py mode=all pipeline_dir=logs/toy/runs/<run>/pipeline manifest=data/toy/benchmark/benchmark.jsonl
python evaluate.py mode=score manifest=<run>/generated.jsonl
python evaluate.py mode=score manifest=<jsonl> metrics.clip_model=openai/clip-vit-large-patch14 \
    metrics.fvd_detector=<i3d_torchscript.pt or URL> metrics.region=swept device=cuda
python evaluate.py eval_protocol=msrvtt_fvd pipeline_dir=<run>/pipeline device=cuda   # or eval_protocol=fyc30
"""
import os
from pathlib import Path

import hydra
from omegaconf import DictConfig

os.environ.setdefault("PROJECT_ROOT", str(Path(__file__).resolve().parent))


@hydra.main(version_base="1.3", config_path="configs", config_name="evaluate")
def main(cfg: DictConfig) -> None:
    from fyc.eval.runner import evaluate

    paths = evaluate(cfg)
    for key, path in paths.items():
        print(f"{key}: {path}")


if __name__ == "__main__":
    main()
