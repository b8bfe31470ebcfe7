"""The mask predictor's shape (ModelConfig) and its named presets: the one registry of model names.

Imports no torch: the job configs (trainer/config.py), and through them the DAG files, read the preset
names from here. The model itself is trainer/model.py.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass


@dataclass(kw_only=True)
class ModelConfig:
    """Shape of the mask predictor. The defaults are the `tiny` preset."""

    n_layers: int = 4
    """Number of Transformer blocks."""
    d_model: int = 128
    """Width of the residual stream."""
    n_heads: int = 4
    """Attention (query) heads; the head size is d_model / n_heads."""
    n_kv_heads: int = 4
    """Key/value heads (grouped-query attention when fewer than n_heads; must divide n_heads)."""
    mlp_hidden_size: int = 384
    """Hidden width of the SwiGLU feed-forward (each of ff_proj and up_proj)."""
    vocab_size: int = 4096
    """Rows of the input embedding and the output head; must cover the tokenizer, mask id included."""
    rope_theta: float = 500000.0
    """RoPE base frequency (500000 for LLaDA-8B)."""
    rms_norm_eps: float = 1e-5
    """Epsilon inside every RMSNorm."""
    init_std: float = 0.02
    """Standard deviation of the normal initialisation of every linear and embedding weight."""
    causal: bool = False
    """Causal attention: only for an autoregressive baseline; the diffusion model is bidirectional."""
    activation_checkpointing: bool = False
    """Recompute each block's activations in the backward pass (saves memory, costs one more forward)."""

    def __post_init__(self) -> None:
        for name in ("n_layers", "d_model", "n_heads", "n_kv_heads", "mlp_hidden_size", "vocab_size"):
            if getattr(self, name) <= 0:
                raise ValueError(f"ModelConfig.{name} must be positive, got {getattr(self, name)}")
        for name in ("rope_theta", "rms_norm_eps", "init_std"):
            if getattr(self, name) <= 0:
                raise ValueError(f"ModelConfig.{name} must be positive, got {getattr(self, name)}")
        if self.d_model % self.n_heads:
            raise ValueError(f"ModelConfig.d_model ({self.d_model}) must be divisible by n_heads ({self.n_heads})")
        if self.n_heads % self.n_kv_heads:
            raise ValueError(
                f"ModelConfig.n_heads ({self.n_heads}) must be divisible by n_kv_heads ({self.n_kv_heads})"
            )
        if self.head_dim % 2:
            raise ValueError(
                f"ModelConfig.d_model / n_heads = {self.head_dim} must be even (RoPE rotates pairs of dimensions)"
            )

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads


def tiny(vocab_size: int = 4096) -> ModelConfig:
    """CPU-demo sized: 0.85M non-embedding parameters (1.9M in all at vocab 4096)."""
    return ModelConfig(vocab_size=vocab_size)


def llada_8b() -> ModelConfig:
    """LLaDA-8B (SPEC table): 8.02B parameters, 6.98B without the embedding and the output head."""
    return ModelConfig(
        n_layers=32, d_model=4096, n_heads=32, n_kv_heads=32, mlp_hidden_size=12288, vocab_size=126464
    )


def llada_1b() -> ModelConfig:
    """LLaDA-1B (SPEC table): 1.49B parameters, 0.97B without the embedding and the output head.

    Per block 2*2048^2 (q, attn_out) + 2*2048*256 (k, v: 4 kv heads of 64) + 3*2048*5634 + 2*2048
    = 44,056,576; times 22 blocks plus ln_f = 969,246,720; the two 126464x2048 matrices add 517,996,544.
    """
    return dataclasses.replace(
        llada_8b(), n_layers=22, d_model=2048, n_heads=32, n_kv_heads=4, mlp_hidden_size=5634
    )


PRESETS = {"tiny": tiny, "llada_1b": llada_1b, "llada_8b": llada_8b}


def model_config(name: str, **overrides) -> ModelConfig:
    """A named preset with some fields replaced, e.g. `model_config("tiny", vocab_size=8192)`."""
    if name not in PRESETS:
        raise ValueError(f"unknown model preset {name!r}; known presets: {', '.join(PRESETS)}")
    known = {f.name for f in dataclasses.fields(ModelConfig)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ValueError(f"unknown ModelConfig field(s) {', '.join(unknown)}; known fields: {', '.join(sorted(known))}")
    return dataclasses.replace(PRESETS[name](), **overrides)
