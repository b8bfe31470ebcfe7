"""A checkpoint folder to and from a MaskPredictor: ours (formats/checkpoint.py), or, to read, a Hugging Face
LLaDA folder (trainer/hf/), so SFT, continued pretraining, sampling and evaluation start from either."""

from __future__ import annotations

from pathlib import Path

from common.files import atomic_path
from formats import checkpoint as checkpoint_format
from formats.checkpoint import WEIGHTS, mark_complete, read_model_config, weights_and_config, write_model_config
from trainer.hf import is_hf_folder


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
    """Rebuild the MaskPredictor saved in `checkpoint_dir`, ours or a Hugging Face LLaDA folder (weights in
    float32 unless `dtype`)."""
    import torch

    from trainer.model import MaskPredictor, ModelConfig

    if is_hf_folder(checkpoint_dir):
        from trainer.hf.load import load_hf_checkpoint

        return load_hf_checkpoint(checkpoint_dir, dtype=dtype or torch.float32)
    weights, _ = weights_and_config(checkpoint_dir)
    model = MaskPredictor(ModelConfig(**read_model_config(checkpoint_dir)))
    state = torch.load(weights, map_location="cpu", weights_only=True)
    model.load_state_dict({k: v.float() for k, v in state.items()})
    if dtype is not None:
        model = model.to(dtype)
    return model.eval()


def model_fields(checkpoint_dir: str | Path) -> dict:
    """The ModelConfig fields of a checkpoint, ours or a Hugging Face LLaDA folder (its vocab_size is the
    embedding's rows); a ConfigError names what is missing."""
    import dataclasses

    if is_hf_folder(checkpoint_dir):
        from trainer.hf.config import read_hf_config

        return dataclasses.asdict(read_hf_config(checkpoint_dir).model_config)
    return read_model_config(checkpoint_dir)


def tokenizer_mismatch(checkpoint_dir: str | Path, sha256: str | None, vocab_size: int) -> str | None:
    """Why the tokenizer (sha256, vocab_size) does not go with the checkpoint, or None. A Hugging Face folder
    records no tokenizer digest: it is checked on its embedding's rows alone."""
    if is_hf_folder(checkpoint_dir):
        rows = model_fields(checkpoint_dir)["vocab_size"]
        if vocab_size > rows:
            return f"the tokenizer has {vocab_size} ids, the model in {checkpoint_dir} only {rows} embedding rows"
        return None
    return checkpoint_format.tokenizer_mismatch(checkpoint_dir, sha256, vocab_size)
