"""Train Follow-Your-Click.  python train.py experiment=toy   |   python train.py -m model.first_frame_masking.ratio=0,0.7

Only the checks (weights, GPUs, data, outputs, resume; docs/training.md "Preflight and resume"):
    python train.py experiment=paper_stage1 preflight.only=true
"""
import os
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

os.environ.setdefault("PROJECT_ROOT", str(Path(__file__).resolve().parent))


@hydra.main(version_base="1.3", config_path="configs", config_name="train")
def main(cfg: DictConfig) -> float | None:
    from fyc.training.preflight import PreflightError
    from fyc.training.run import train

    try:
        result = train(cfg)
    except PreflightError as error:  # every problem at once, each with its fix; nothing was loaded
        sys.exit(str(error))
    if "preflight" in result:
        report = result["preflight"]
        print(report.format(f"preflight of {cfg.task_name}"))
        if not report.ok:
            sys.exit(1)
        return None
    for key in ("output_dir", "pipeline_dir"):
        if key in result:
            print(f"{key}: {result[key]}")
    return result["metrics"].get("val/loss")


if __name__ == "__main__":
    main()
