"""A Hugging Face LLaDA folder -> MaskPredictor: config.json read by trainer/hf/config.py, then every
safetensors file's tensor names and shapes checked (headers only) before any tensor is read."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from common.config import ConfigError
from trainer.hf import INDEX_FILE, PREFIX, SINGLE_FILE, read_json
from trainer.hf.config import read_hf_config
from trainer.model_config import ModelConfig

if TYPE_CHECKING:
    import torch

    from trainer.model import MaskPredictor


def load_hf_checkpoint(folder: str | Path, *, dtype: torch.dtype | None = None) -> MaskPredictor:
    """The MaskPredictor stored in a Hugging Face LLaDA folder, in eval mode.

    dtype: None keeps the dtype of the files (bfloat16 for LLaDA's releases; float32 if they mix dtypes).
    The model is built on the meta device and each tensor read from its shard becomes the parameter, so
    the weights are held once (an 8B model in bfloat16 takes ~16 GB); without a dtype conversion they
    are copy-on-write memory maps of the files. Special token ids: `read_hf_config`.
    """
    import torch
    from safetensors import safe_open

    folder = Path(folder)
    info = read_hf_config(folder)
    model = _meta_model(info.model_config)
    expected = {PREFIX + name: tuple(t.shape) for name, t in model.state_dict().items()}

    # Check every name and shape (headers only) before reading any tensor.
    shards = _weight_files(folder)
    found: set[str] = set()
    stored_dtypes: set[str] = set()
    for shard, listed in shards.items():
        with safe_open(shard, framework="pt", device="cpu") as f:
            names = set(f.keys())
            if listed is not None and listed != names:
                raise ConfigError(
                    f"{folder / INDEX_FILE} lists {_names(listed - names) or 'no tensor'} in {shard.name} "
                    f"but that file holds {_names(names - listed) or 'no other tensor'}"
                )
            unexpected = names - set(expected)
            if unexpected:
                raise ConfigError(
                    f"{shard}: unexpected tensor(s) {_names(unexpected)}; a LLaDA model with this config.json "
                    f"({info.model_config.n_layers} blocks, untied head, no biases) has none of these"
                )
            found |= names
            for name in sorted(names):
                header = f.get_slice(name)
                shape = tuple(header.get_shape())
                if shape != expected[name]:
                    raise ConfigError(
                        f"{shard}: tensor {name} has shape {shape}, but config.json implies {expected[name]}"
                    )
                stored_dtypes.add(header.get_dtype())
    missing = sorted(set(expected) - found)
    if missing:
        where = folder / INDEX_FILE if (folder / INDEX_FILE).is_file() else folder / SINGLE_FILE
        raise ConfigError(f"{where}: missing tensor(s) {_names(missing)} (config.json implies {len(expected)} tensors)")
    if dtype is None and len(stored_dtypes) > 1:
        dtype = torch.float32

    for shard in shards:
        with safe_open(shard, framework="pt", device="cpu") as f:
            for name in f.keys():
                tensor = f.get_tensor(name)
                if dtype is not None:
                    tensor = tensor.to(dtype)
                # One tensor at a time: assign=True makes the loaded tensor the parameter (no second copy).
                model.load_state_dict({name[len(PREFIX) :]: tensor}, strict=False, assign=True)
                del tensor
    still_meta = [name for name, p in model.named_parameters() if p.is_meta]
    assert not still_meta, f"parameters left unloaded: {still_meta}"  # every expected key was found above
    return model.eval()


def _meta_model(config: ModelConfig) -> MaskPredictor:
    """A MaskPredictor whose parameters are on the meta device (no memory), its random init skipped.

    The init would be overwritten anyway, and torch's meta `normal_` imports torch._dynamo (~10 s).
    """
    import torch
    from torch.overrides import TorchFunctionMode

    from trainer.model import MaskPredictor

    class SkipInit(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            if getattr(func, "__module__", None) == "torch.nn.init":  # init.normal_(tensor, ...) and the like
                return args[0] if args else kwargs["tensor"]
            return func(*args, **(kwargs or {}))

    with torch.device("meta"), SkipInit():
        return MaskPredictor(config)


def _weight_files(folder: Path) -> dict[Path, set[str] | None]:
    """Each safetensors file of the folder, with the tensor names the index assigns it (None: no index)."""
    index_path, single = folder / INDEX_FILE, folder / SINGLE_FILE
    if index_path.is_file():
        index = read_json(index_path, "safetensors index")
        weight_map = index.get("weight_map") if isinstance(index, dict) else None
        if not isinstance(weight_map, dict) or not weight_map:
            raise ConfigError(f"{index_path}: no weight_map (expected {{'weight_map': {{tensor name: file name}}}})")
        files: dict[Path, set[str] | None] = {}
        for tensor, file_name in weight_map.items():
            files.setdefault(folder / file_name, set()).add(tensor)  # type: ignore[union-attr]
        for path in files:
            if not path.is_file():
                raise ConfigError(f"{index_path} names {path.name}, which is not in {folder}")
        return dict(sorted(files.items()))
    if single.is_file():
        return {single: None}
    raise ConfigError(f"{folder}: neither {SINGLE_FILE} nor {INDEX_FILE} (is this a Hugging Face LLaDA folder?)")


def _names(names) -> str:
    names = sorted(names)
    shown = ", ".join(names[:5])
    return shown + (f" and {len(names) - 5} more" if len(names) > 5 else "")
