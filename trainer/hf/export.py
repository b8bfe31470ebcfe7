"""MaskPredictor -> a Hugging Face LLaDA folder: config.json (trainer/hf/config.py) and safetensors weights,
one file or shards with an index, as transformers writes them."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from common.config import ConfigError
from common.files import atomic_path, write_json
from trainer.hf import CONFIG_FILE, INDEX_FILE, PREFIX, SINGLE_FILE
from trainer.hf.config import llada_config

if TYPE_CHECKING:
    import torch

    from trainer.model import MaskPredictor

DEFAULT_MAX_SHARD_BYTES = 5 * 10**9  # transformers' "5GB"


def export_hf_checkpoint(
    model: MaskPredictor,
    folder: str | Path,
    *,
    max_shard_bytes: int = DEFAULT_MAX_SHARD_BYTES,
    extra_config: dict[str, Any] | None = None,
) -> list[Path]:
    """Write `model` as a Hugging Face LLaDA folder: config.json and safetensors weights; returns the files.

    One `model.safetensors` when the weights fit in max_shard_bytes, otherwise
    `model-0000k-of-0000n.safetensors` shards and `model.safetensors.index.json` (transformers' layout).
    extra_config adds to config.json: special ids (mask_token_id, eos_token_id, pad_token_id, bos_token_id),
    max_sequence_length, auto_map, or vocab_size when the model's rows pad the tokenizer's vocabulary; a
    key that describes the architecture must agree with the model. Tensors are written in the model's
    dtype. Each file is written under a temporary name and renamed; weight files of an earlier export
    that this one does not rewrite are removed, so the folder never mixes two exports.
    """
    from safetensors.torch import save_file

    folder = Path(folder)
    if max_shard_bytes <= 0:
        raise ConfigError(f"max_shard_bytes must be positive, got {max_shard_bytes}")
    torch_dtype = str(model.transformer.wte.weight.dtype).removeprefix("torch.")
    config = llada_config(model.config, torch_dtype=torch_dtype, extra=extra_config or {})

    tensors = {PREFIX + name: t.detach().contiguous() for name, t in model.state_dict().items()}
    storages = [t.untyped_storage().data_ptr() for t in tensors.values() if t.numel()]
    if len(set(storages)) != len(storages):
        raise ConfigError("model has tensors sharing storage (tied weights); LLaDA's layout stores an untied head")
    shards = _shards(tensors, max_shard_bytes)
    if len(shards) == 1:
        names = [SINGLE_FILE]
    else:
        names = [f"model-{i:05d}-of-{len(shards):05d}.safetensors" for i in range(1, len(shards) + 1)]

    folder.mkdir(parents=True, exist_ok=True)
    for stale in [*folder.glob("model-*-of-*.safetensors"), folder / SINGLE_FILE, folder / INDEX_FILE]:
        if stale.name not in names and stale.is_file():
            stale.unlink()
    written = []
    for name, shard in zip(names, shards):
        # metadata format "pt": transformers refuses a safetensors file without it.
        with atomic_path(folder / name) as tmp:
            save_file(shard, str(tmp), metadata={"format": "pt"})
        written.append(folder / name)
    if len(shards) > 1:
        index = {
            "metadata": {"total_size": sum(t.numel() * t.element_size() for t in tensors.values())},
            "weight_map": {tensor: name for name, shard in zip(names, shards) for tensor in shard},
        }
        write_json(folder / INDEX_FILE, index)
        written.append(folder / INDEX_FILE)
    write_json(folder / CONFIG_FILE, config)  # last: a folder with config.json is complete
    written.append(folder / CONFIG_FILE)
    return written


def _shards(tensors: dict[str, torch.Tensor], max_shard_bytes: int) -> list[dict[str, torch.Tensor]]:
    """The tensors in order, cut into files of at most max_shard_bytes (a bigger tensor gets a file of its own)."""
    shards: list[dict[str, torch.Tensor]] = [{}]
    shard_bytes = 0
    for name, tensor in tensors.items():
        size = tensor.numel() * tensor.element_size()
        if shards[-1] and shard_bytes + size > max_shard_bytes:
            shards.append({})
            shard_bytes = 0
        shards[-1][name] = tensor
        shard_bytes += size
    return shards
