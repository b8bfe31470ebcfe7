"""A checkpoint folder, as the training jobs and `trainer.convert` write it and sampling, SFT and export read it.

    model.pt            the consolidated state dict (torch.save), parameter names as trainer/model.py's
    model_config.json   the ModelConfig's fields: enough to rebuild the model before loading the weights
    config.json         the job config that made it
    train_metrics.json  first and final loss, steps (training jobs)
    run.json            the MLflow run id and experiment, the losses (training jobs; written last)
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from common.config import ConfigError
from common.files import write_json

WEIGHTS = "model.pt"
MODEL_CONFIG = "model_config.json"
CONFIG = "config.json"
TRAIN_METRICS = "train_metrics.json"
RUN = "run.json"
SAMPLES = "samples.jsonl"
"""What `trainer.sample` appends to, beside the checkpoint it sampled."""


def write_model_config(model_config: Any, folder: str | Path) -> None:
    """model_config.json from a ModelConfig dataclass (written atomically)."""
    write_json(Path(folder) / MODEL_CONFIG, dataclasses.asdict(model_config), sort_keys=True)


def read_model_config(folder: str | Path) -> dict[str, Any]:
    """The ModelConfig fields of a checkpoint folder; raises ConfigError naming a missing file."""
    weights_and_config(folder)
    return json.loads((Path(folder) / MODEL_CONFIG).read_text(encoding="utf-8"))


def weights_and_config(folder: str | Path) -> tuple[Path, Path]:
    """(model.pt, model_config.json) of a checkpoint folder; raises ConfigError naming what is missing."""
    folder = Path(folder)
    weights, config_file = folder / WEIGHTS, folder / MODEL_CONFIG
    for path in (weights, config_file):
        if not path.is_file():
            raise ConfigError(f"checkpoint file missing: {path} (is {folder} a training output_dir?)")
    return weights, config_file
