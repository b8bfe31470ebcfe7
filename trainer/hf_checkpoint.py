"""LLaDA's Hugging Face checkpoint layout <-> MaskPredictor.

A Hugging Face LLaDA folder (GSAI-ML/LLaDA-8B-Base, -Instruct) holds `config.json` in LLaDA's own
format (OLMo field names: d_model, n_heads, mlp_hidden_size, ...; read by its `configuration_llada.py`
and `modeling_llada.py`) and safetensors weights named `model.` + our state_dict keys, either one
`model.safetensors` or shards listed by `model.safetensors.index.json`.

LLaDA's code builds everything from that config, filling absent keys with its ModelConfig defaults
(which are GPT-2/OLMo-like: weight_tying true, block_type "sequential", rope false, ...). We read a
config the same way and refuse any setting MaskPredictor does not compute, naming the key, rather
than load weights into a model that would compute something else.

Padded vocabularies: LLaDA sizes the embedding and the output head by `embedding_size` (when set)
and returns logits over all of those rows. MaskPredictor keeps every row (its vocab_size is
embedding_size), so its logits equal LLaDA's; the tokenizer's `vocab_size` is reported separately.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from common.config import ConfigError
from common.files import atomic_path, write_atomically

if TYPE_CHECKING:
    import torch

    from trainer.model import MaskPredictor, ModelConfig

CONFIG_FILE = "config.json"
SINGLE_FILE = "model.safetensors"
INDEX_FILE = "model.safetensors.index.json"
PREFIX = "model."  # LLaDAModelLM keeps the network in `self.model` (base_model_prefix = "model")
DEFAULT_MAX_SHARD_BYTES = 5 * 10**9  # transformers' "5GB"
SPECIAL_TOKEN_KEYS = ("mask_token_id", "eos_token_id", "pad_token_id", "bos_token_id")

# LLaDA's configuration_llada.ModelConfig defaults, for the keys we read: what its code assumes when
# config.json leaves a key out.
LLADA_DEFAULTS: dict[str, Any] = {
    "d_model": 768,
    "n_heads": 12,
    "n_kv_heads": None,
    "multi_query_attention": None,
    "n_layers": 12,
    "mlp_ratio": 4,
    "mlp_hidden_size": None,
    "vocab_size": 50257,
    "embedding_size": 50304,
    "rope_theta": 10000.0,
    "rms_norm_eps": 1e-5,
    "init_std": 0.02,
    "max_sequence_length": 1024,
    # Architecture switches, with the one value MaskPredictor computes.
    "activation_type": "swiglu",
    "block_type": "sequential",
    "block_group_size": 1,
    "alibi": False,
    "rope": False,
    "rope_full_precision": True,
    "attention_layer_norm": False,
    "input_emb_norm": False,
    "layer_norm_type": "default",
    "layer_norm_with_affine": True,
    "include_bias": False,
    "include_qkv_bias": False,
    "bias_for_layer_norm": None,
    "scale_logits": False,
    "weight_tying": True,
}

# key -> (the value MaskPredictor needs, why).
REQUIRED_SETTINGS: dict[str, tuple[Any, str]] = {
    "activation_type": ("silu", "the feed-forward is ff_out(silu(ff_proj(x)) * up_proj(x))"),
    "block_type": ("llama", "blocks have separate q_proj/k_proj/v_proj and an up_proj (LLaDA's llama block)"),
    "block_group_size": (1, "parameters are named transformer.blocks.{i}, not transformer.block_groups"),
    "alibi": (False, "positions are encoded with RoPE only"),
    "rope": (True, "positions are encoded with RoPE"),
    "rope_full_precision": (True, "RoPE is applied in float32"),
    "attention_layer_norm": (False, "there is no query/key norm"),
    "input_emb_norm": (False, "embeddings are not scaled by sqrt(d_model)"),
    "layer_norm_type": ("rms", "every norm is RMSNorm"),
    "layer_norm_with_affine": (True, "every RMSNorm has a weight"),
    "include_bias": (False, "linear layers have no bias"),
    "include_qkv_bias": (False, "q/k/v projections have no bias"),
    "scale_logits": (False, "logits are not scaled by 1/sqrt(d_model)"),
    "weight_tying": (False, "the output head transformer.ff_out is separate from the embedding"),
}


@dataclass(frozen=True)
class HFModelInfo:
    """What a LLaDA config.json says, in our terms."""

    model_config: ModelConfig
    """Shape of the MaskPredictor; its vocab_size is LLaDA's embedding_size (rows of wte and ff_out)."""
    vocab_size: int
    """The tokenizer's vocabulary (config `vocab_size`), at most model_config.vocab_size."""
    max_sequence_length: int
    """LLaDA's max_sequence_length (its RoPE cache size; not a hard limit of either model)."""
    special_token_ids: dict[str, int] = field(default_factory=dict)
    """mask_token_id, eos_token_id, pad_token_id, bos_token_id: those the config sets."""


def read_hf_config(folder: str | Path) -> HFModelInfo:
    """Read `folder`/config.json (LLaDA's format); a setting MaskPredictor cannot compute is an error naming it."""
    from trainer.model import ModelConfig

    path = Path(folder) / CONFIG_FILE
    raw = _read_json(path, "LLaDA config")
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a JSON object, got {type(raw).__name__}")
    if raw.get("model_type", "llada") != "llada":
        raise ConfigError(f"{path}: model_type={raw['model_type']!r}, expected 'llada' (a LLaDA checkpoint)")

    def value(key: str) -> Any:
        return raw.get(key, LLADA_DEFAULTS[key])

    for key, (needed, why) in REQUIRED_SETTINGS.items():
        got = value(key)
        if got != needed:
            default_note = " (LLaDA's default when the key is absent)" if key not in raw else ""
            raise ConfigError(
                f"{path}: {key}={json.dumps(got)}{default_note} cannot be loaded into MaskPredictor, which needs "
                f"{key}={json.dumps(needed)}: {why}"
            )
    # LLaDA's norms inherit include_bias when bias_for_layer_norm is null.
    if value("bias_for_layer_norm"):
        raise ConfigError(f"{path}: bias_for_layer_norm=true cannot be loaded into MaskPredictor: RMSNorm has no bias")

    def integer(key: str) -> int:
        got = value(key)
        if isinstance(got, bool) or not isinstance(got, int) or got <= 0:
            raise ConfigError(f"{path}: {key} must be a positive integer, got {got!r}")
        return got

    def number(key: str) -> float:
        got = value(key)
        if isinstance(got, bool) or not isinstance(got, (int, float)) or got <= 0:
            raise ConfigError(f"{path}: {key} must be a positive number, got {got!r}")
        return float(got)

    d_model, n_heads = integer("d_model"), integer("n_heads")
    # LLaDA's effective_n_kv_heads: n_kv_heads, else 1 for multi-query attention, else n_heads.
    if value("n_kv_heads") is not None:
        n_kv_heads = integer("n_kv_heads")
        mqa = value("multi_query_attention")
        if mqa is not None and n_kv_heads != (1 if mqa else n_heads):
            raise ConfigError(f"{path}: n_kv_heads={n_kv_heads} contradicts multi_query_attention={json.dumps(mqa)}")
    else:
        n_kv_heads = 1 if value("multi_query_attention") else n_heads
    if value("mlp_hidden_size") is not None:
        mlp_hidden_size = integer("mlp_hidden_size")
    else:
        mlp_hidden_size = integer("mlp_ratio") * d_model
    vocab_size = integer("vocab_size")
    embedding_size = integer("embedding_size") if value("embedding_size") is not None else vocab_size
    if embedding_size < vocab_size:
        raise ConfigError(f"{path}: embedding_size={embedding_size} is smaller than vocab_size={vocab_size}")

    try:
        model_config = ModelConfig(
            n_layers=integer("n_layers"),
            d_model=d_model,
            n_heads=n_heads,
            n_kv_heads=n_kv_heads,
            mlp_hidden_size=mlp_hidden_size,
            vocab_size=embedding_size,
            rope_theta=number("rope_theta"),
            rms_norm_eps=number("rms_norm_eps"),
            init_std=number("init_std"),
        )
    except ValueError as e:
        raise ConfigError(f"{path}: {e}") from None
    specials = {key: raw[key] for key in SPECIAL_TOKEN_KEYS if isinstance(raw.get(key), int)}
    return HFModelInfo(
        model_config=model_config,
        vocab_size=vocab_size,
        max_sequence_length=integer("max_sequence_length"),
        special_token_ids=specials,
    )


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
    config = _llada_config(model, extra_config or {})

    tensors = {PREFIX + name: t.detach().contiguous() for name, t in model.state_dict().items()}
    storages = [t.untyped_storage().data_ptr() for t in tensors.values() if t.numel()]
    if len(set(storages)) != len(storages):
        raise ConfigError("model has tensors sharing storage (tied weights); LLaDA's layout stores an untied head")
    shards: list[dict[str, torch.Tensor]] = [{}]
    shard_bytes = 0
    for name, tensor in tensors.items():
        size = tensor.numel() * tensor.element_size()
        if shards[-1] and shard_bytes + size > max_shard_bytes:
            shards.append({})
            shard_bytes = 0
        shards[-1][name] = tensor
        shard_bytes += size
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
        _write_json(folder / INDEX_FILE, index)
        written.append(folder / INDEX_FILE)
    _write_json(folder / CONFIG_FILE, config)  # last: a folder with config.json is complete
    written.append(folder / CONFIG_FILE)
    return written


def _llada_config(model: MaskPredictor, extra: dict[str, Any]) -> dict[str, Any]:
    """config.json for `model`, with every field of LLaDA's released config (GSAI-ML/LLaDA-8B-Instruct)."""
    c = model.config
    if c.causal:
        raise ConfigError("a causal MaskPredictor cannot be exported: LLaDA's attention is always bidirectional")
    dtype = str(model.transformer.wte.weight.dtype).removeprefix("torch.")
    architecture = {
        "d_model": c.d_model,
        "n_heads": c.n_heads,
        "n_kv_heads": c.n_kv_heads,
        "multi_query_attention": None,
        "n_layers": c.n_layers,
        "mlp_hidden_size": c.mlp_hidden_size,
        "mlp_ratio": max(1, round(c.mlp_hidden_size / c.d_model)),  # unused by LLaDA when mlp_hidden_size is set
        "embedding_size": c.vocab_size,
        "rope_theta": c.rope_theta,
        "rms_norm_eps": c.rms_norm_eps,
        "bias_for_layer_norm": False,
        **{key: needed for key, (needed, _) in REQUIRED_SETTINGS.items()},
    }
    config: dict[str, Any] = {
        "model_type": "llada",
        "architectures": ["LLaDAModelLM"],
        # LLaDA's code files (configuration_llada.py, modeling_llada.py) are expected beside the weights.
        "auto_map": {
            "AutoConfig": "configuration_llada.LLaDAConfig",
            "AutoModel": "modeling_llada.LLaDAModelLM",
            "AutoModelForCausalLM": "modeling_llada.LLaDAModelLM",
        },
        **architecture,
        "vocab_size": c.vocab_size,
        "max_sequence_length": 4096,  # LLaDA-8B's; only sizes LLaDA's RoPE cache
        "alibi_bias_max": 8.0,
        "attention_dropout": 0.0,
        "embedding_dropout": 0.0,
        "residual_dropout": 0.0,
        "attention_layer_norm_with_affine": True,
        "flash_attention": False,
        "init_device": "meta",
        "init_fn": "normal",
        "init_std": c.init_std,
        "init_cutoff_factor": None,
        "precision": None,
        "torch_dtype": dtype,
        "use_cache": False,
    }
    for key, got in extra.items():
        if key in architecture and got != architecture[key]:
            raise ConfigError(f"extra_config {key}={got!r} disagrees with the model ({key}={architecture[key]!r})")
    config.update(extra)
    vocab = config["vocab_size"]
    if isinstance(vocab, bool) or not isinstance(vocab, int) or not 0 < vocab <= c.vocab_size:
        raise ConfigError(
            f"extra_config vocab_size={vocab!r} must be an integer in [1, {c.vocab_size}] (the model's rows)"
        )
    return dict(sorted(config.items()))


def _weight_files(folder: Path) -> dict[Path, set[str] | None]:
    """Each safetensors file of the folder, with the tensor names the index assigns it (None: no index)."""
    index_path, single = folder / INDEX_FILE, folder / SINGLE_FILE
    if index_path.is_file():
        index = _read_json(index_path, "safetensors index")
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


def _read_json(path: Path, what: str) -> Any:
    if not path.is_file():
        raise ConfigError(f"{what} not found: {path}")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ConfigError(f"{path}: not valid JSON: {e}") from None


def _write_json(path: Path, value: Any) -> None:
    write_atomically(path, json.dumps(value, indent=2) + "\n")
