"""LLaDA's Hugging Face checkpoint folder <-> MaskPredictor.

A Hugging Face LLaDA folder (GSAI-ML/LLaDA-8B-Base, -Instruct) holds `config.json` in LLaDA's own
format (OLMo field names: d_model, n_heads, mlp_hidden_size, ...; read by its `configuration_llada.py`
and `modeling_llada.py`) and safetensors weights named `model.` + our state_dict keys, either one
`model.safetensors` or shards listed by `model.safetensors.index.json`.

- `config.py`: config.json <-> ModelConfig (what LLaDA's settings mean, which ones we refuse);
- `load.py`: a folder -> MaskPredictor (`load_hf_checkpoint`), each shard's names and shapes checked first;
- `export.py`: MaskPredictor -> a folder (`export_hf_checkpoint`), sharded as transformers does.

This module holds the folder's file names, shared by the three.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from common.config import ConfigError

CONFIG_FILE = "config.json"
SINGLE_FILE = "model.safetensors"
INDEX_FILE = "model.safetensors.index.json"
PREFIX = "model."  # LLaDAModelLM keeps the network in `self.model` (base_model_prefix = "model")


def is_hf_folder(folder: str | Path) -> bool:
    """A Hugging Face LLaDA folder (config.json beside safetensors weights), not our export (model.pt)."""
    folder = Path(folder)
    return (folder / CONFIG_FILE).is_file() and ((folder / SINGLE_FILE).is_file() or (folder / INDEX_FILE).is_file())


def read_json(path: Path, what: str) -> Any:
    """The JSON value of `path`; a missing file or invalid JSON is a ConfigError naming it as `what`."""
    if not path.is_file():
        raise ConfigError(f"{what} not found: {path}")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ConfigError(f"{path}: not valid JSON: {e}") from None
