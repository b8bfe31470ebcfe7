"""LLaDA's config.json <-> our ModelConfig.

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
from typing import Any

from common.config import ConfigError
from trainer.hf import CONFIG_FILE, read_json
from trainer.model_config import ModelConfig

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
    path = Path(folder) / CONFIG_FILE
    raw = read_json(path, "LLaDA config")
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


def llada_config(c: ModelConfig, *, torch_dtype: str, extra: dict[str, Any]) -> dict[str, Any]:
    """config.json for a MaskPredictor of shape `c` whose weights are `torch_dtype` ("bfloat16", ...), with
    every field of LLaDA's released config (GSAI-ML/LLaDA-8B-Instruct), updated by `extra`."""
    if c.causal:
        raise ConfigError("a causal MaskPredictor cannot be exported: LLaDA's attention is always bidirectional")
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
        "torch_dtype": torch_dtype,
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
