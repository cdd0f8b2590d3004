"""Train Follow-Your-Click.  python train.py experiment=toy   |   python train.py -m model.first_frame_masking.ratio=0,0.7"""
import os
from pathlib import Path

import hydra
from omegaconf import DictConfig

os.environ.setdefault("PROJECT_ROOT", str(Path(__file__).resolve().parent))


@hydra.main(version_base="1.3", config_path="configs", config_name="train")
def main(cfg: DictConfig) -> float | None:
    from fyc.training.run import train

    result = train(cfg)
    for key in ("output_dir", "pipeline_dir"):
        if key in result:
            print(f"{key}: {result[key]}")
    return result["metrics"].get("val/loss")


if __name__ == "__main__":
    main()
