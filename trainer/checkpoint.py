"""Our checkpoint folder (formats/checkpoint.py) to and from a MaskPredictor."""

from __future__ import annotations

from pathlib import Path

from common.files import atomic_path
from formats.checkpoint import WEIGHTS, mark_complete, read_model_config, weights_and_config, write_model_config


def save_model(model, folder: str | Path) -> None:
    """model.pt (atomically), model_config.json, then complete.json: an export `load_model` reads."""
    import torch

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with atomic_path(folder / WEIGHTS) as tmp:
        torch.save(model.state_dict(), tmp)
    write_model_config(model.config, folder)
    mark_complete(folder)


def load_model(checkpoint_dir: str | Path, *, dtype=None):
    """Rebuild the MaskPredictor saved in `checkpoint_dir` (weights in float32 unless `dtype`)."""
    import torch

    from trainer.model import MaskPredictor, ModelConfig

    weights, _ = weights_and_config(checkpoint_dir)
    model = MaskPredictor(ModelConfig(**read_model_config(checkpoint_dir)))
    state = torch.load(weights, map_location="cpu", weights_only=True)
    model.load_state_dict({k: v.float() for k, v in state.items()})
    if dtype is not None:
        model = model.to(dtype)
    return model.eval()
