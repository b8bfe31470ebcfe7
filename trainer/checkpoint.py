"""A checkpoint is a folder: model.pt (consolidated state dict), model_config.json, config.json."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from common.config import ConfigError


def write_model_config(model_config, output_dir: str | Path) -> None:
    path = Path(output_dir) / "model_config.json"
    path.write_text(json.dumps(dataclasses.asdict(model_config), indent=2, sort_keys=True) + "\n")


def load_model(checkpoint_dir: str | Path, *, dtype=None):
    """Rebuild the MaskPredictor saved in `checkpoint_dir` (weights in float32 unless `dtype`)."""
    import torch

    from trainer.model import MaskPredictor, ModelConfig

    folder = Path(checkpoint_dir)
    weights, config_file = folder / "model.pt", folder / "model_config.json"
    for path in (weights, config_file):
        if not path.is_file():
            raise ConfigError(f"checkpoint file missing: {path} (is {folder} a training output_dir?)")
    model_config = ModelConfig(**json.loads(config_file.read_text()))
    model = MaskPredictor(model_config)
    state = torch.load(weights, map_location="cpu", weights_only=True)
    model.load_state_dict({k: v.float() for k, v in state.items()})
    if dtype is not None:
        model = model.to(dtype)
    return model.eval()
