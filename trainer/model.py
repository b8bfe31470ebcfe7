"""The mask predictor of a masked diffusion language model (LLaDA), single-device.

A LLaMA-style Transformer with bidirectional attention and no time input (docs/SPEC-diffusion.md, "Model";
LLaDA paper section 2.1): it reads a partly masked sequence and predicts every token at once.
Parallelism (DeepSpeed, Ray Train) is applied from outside; nothing here knows about it.

Module names are chosen so that `state_dict()` keys are LLaDA's Hugging Face names without the leading
"model.": `transformer.wte.weight`, `transformer.blocks.{i}.q_proj.weight`, ..., `transformer.ff_out.weight`.

For fast sampling (trainer/fast_sampler.py) a forward can also return every layer's keys and values
(`return_kv=True`) and run only a slice of positions (`position_ids`) that attends to cached keys and values
of other positions (`past_key_values`, a `KVCache`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

# The shape and its named presets (tiny, llada_1b, llada_8b, model_config(name)) are in trainer/model_config.py,
# which imports no torch: job configs and DAG files read the preset names there.
from trainer.model_config import ModelConfig


class RMSNorm(nn.Module):
    """x / rms(x) * weight, normalised in float32 (as LLaDA/OLMo do) and cast back before the weight."""

    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x_float = x.float()
        x_float = x_float * torch.rsqrt(x_float.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * x_float.to(x.dtype)


def rope_cos_sin(positions: torch.Tensor, head_dim: int, theta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin tables (..., hs) in float32 for integer positions (T,) or (B, T), NeoX layout: dimension i
    and i + hs/2 share a frequency."""
    inv_freq = 1.0 / theta ** (
        torch.arange(0, head_dim, 2, device=positions.device, dtype=torch.float32) / head_dim
    )  # (hs/2,)
    angles = positions.float()[..., None] * inv_freq  # (..., T, hs/2)
    angles = torch.cat((angles, angles), dim=-1)  # (..., T, hs)
    return angles.cos(), angles.sin()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate (B, nh, T, hs) queries or keys by position; in float32 because bf16 angles drift at long T."""
    x_float = x.float()
    first, second = x_float.chunk(2, dim=-1)  # (B, nh, T, hs/2) each
    rotated_half = torch.cat((-second, first), dim=-1)
    return (x_float * cos + rotated_half * sin).to(x.dtype)


class Block(nn.Module):
    """Pre-norm Transformer block: x + attention(norm(x)), then x + SwiGLU(norm(x))."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        C, hs = config.d_model, config.head_dim
        self.attn_norm = RMSNorm(C, config.rms_norm_eps)
        self.q_proj = nn.Linear(C, config.n_heads * hs, bias=False)
        self.k_proj = nn.Linear(C, config.n_kv_heads * hs, bias=False)
        self.v_proj = nn.Linear(C, config.n_kv_heads * hs, bias=False)
        self.attn_out = nn.Linear(C, C, bias=False)
        self.ff_norm = RMSNorm(C, config.rms_norm_eps)
        self.ff_proj = nn.Linear(C, config.mlp_hidden_size, bias=False)
        self.up_proj = nn.Linear(C, config.mlp_hidden_size, bias=False)
        self.ff_out = nn.Linear(config.mlp_hidden_size, C, bias=False)

    def forward(
        self,
        x: torch.Tensor,
        cos: torch.Tensor,
        sin: torch.Tensor,
        attn_mask: torch.Tensor | None,
        past: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """x (B, T, C) to (B, T, C), and this block's keys and values of the T positions (B, nkv, T, hs)
        (rotated, before the GQA repeat: what a cache keeps). past: cached keys and values (B, nkv, S, hs)
        of S other positions, attended to before the T own ones (attn_mask then covers S + T keys)."""
        B, T, C = x.shape
        nh, nkv, hs = self.config.n_heads, self.config.n_kv_heads, self.config.head_dim

        h = self.attn_norm(x)
        q = self.q_proj(h).view(B, T, nh, hs).transpose(1, 2)  # (B, nh, T, hs)
        k = self.k_proj(h).view(B, T, nkv, hs).transpose(1, 2)  # (B, nkv, T, hs)
        v = self.v_proj(h).view(B, T, nkv, hs).transpose(1, 2)  # (B, nkv, T, hs)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        own_kv = (k, v)
        if past is not None:
            k = torch.cat((past[0], k), dim=2)  # (B, nkv, S + T, hs)
            v = torch.cat((past[1], v), dim=2)  # (B, nkv, S + T, hs)
        if nkv != nh:
            # GQA: query head i reads kv head i // (nh / nkv). Repeating (rather than SDPA's enable_gqa)
            # keeps every SDPA backend available, the memory-efficient one with a mask included.
            k = k.repeat_interleave(nh // nkv, dim=1)  # (B, nh, S + T, hs)
            v = v.repeat_interleave(nh // nkv, dim=1)  # (B, nh, S + T, hs)
        y = F.scaled_dot_product_attention(
            q, k, v, attn_mask=attn_mask, is_causal=self.config.causal and attn_mask is None
        )  # (B, nh, T, hs)
        x = x + self.attn_out(y.transpose(1, 2).reshape(B, T, C))

        h = self.ff_norm(x)
        x = x + self.ff_out(F.silu(self.ff_proj(h)) * self.up_proj(h))  # SwiGLU, (B, T, C)
        return x, own_kv


@dataclass
class KVCache:
    """Every layer's keys and values of some positions of a sequence, for a later forward to attend to.

    Fast-dLLM's block-wise caches (Wu et al. 2025, arXiv:2505.22005, section 3.2): a masked diffusion model
    changes few tokens between two steps within a block, so the keys and values of positions outside the
    block are nearly unchanged and can be reused. Keys are stored rotated by their absolute positions, so
    a cache can be attended to from any slice of positions, and, attention being bidirectional, the order
    of its positions does not matter: a prefix and a suffix can be concatenated into one cache.
    """

    keys: list[torch.Tensor]
    """Per layer (B, n_kv_heads, S, head_dim), RoPE already applied, before the GQA repeat."""
    values: list[torch.Tensor]
    """Per layer (B, n_kv_heads, S, head_dim)."""
    mask: torch.Tensor | None = None
    """(B, S), True on real tokens, False on left padding (hidden as keys); None when all are real."""

    def __len__(self) -> int:
        return self.keys[0].shape[2]

    def real_tokens(self) -> torch.Tensor:
        """(B, S) True on real tokens: the mask, or all True without one."""
        if self.mask is not None:
            return self.mask
        return torch.ones(self.keys[0].shape[0], len(self), dtype=torch.bool, device=self.keys[0].device)

    def slice(self, start: int, end: int) -> KVCache:
        """The cached positions start..end-1 (views, no copy)."""
        return KVCache(
            keys=[k[:, :, start:end] for k in self.keys],
            values=[v[:, :, start:end] for v in self.values],
            mask=None if self.mask is None else self.mask[:, start:end],
        )

    def rows(self, index: torch.Tensor) -> KVCache:
        """The cache of the batch rows `index` (1-D long tensor) only."""
        return KVCache(
            keys=[k[index] for k in self.keys],
            values=[v[index] for v in self.values],
            mask=None if self.mask is None else self.mask[index],
        )

    @staticmethod
    def cat(caches: list[KVCache]) -> KVCache:
        """One cache holding the positions of all of caches, in order."""
        mask = None
        if any(c.mask is not None for c in caches):
            mask = torch.cat([c.real_tokens() for c in caches], dim=1)  # (B, S)
        return KVCache(
            keys=[torch.cat(layer, dim=2) for layer in zip(*(c.keys for c in caches))],
            values=[torch.cat(layer, dim=2) for layer in zip(*(c.values for c in caches))],
            mask=mask,
        )


class MaskPredictor(nn.Module):
    """Token ids (B, L), some of them the mask id, to logits (B, L, V) for every position."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.transformer = nn.ModuleDict(
            dict(
                wte=nn.Embedding(config.vocab_size, config.d_model),
                blocks=nn.ModuleList(Block(config) for _ in range(config.n_layers)),
                ln_f=RMSNorm(config.d_model, config.rms_norm_eps),
                ff_out=nn.Linear(config.d_model, config.vocab_size, bias=False),  # untied output head
            )
        )
        self.apply(self._init_weights)

    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=self.config.init_std)
        elif isinstance(module, RMSNorm):
            nn.init.ones_(module.weight)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        *,
        position_ids: torch.Tensor | None = None,
        past_key_values: KVCache | None = None,
        return_kv: bool = False,
    ) -> torch.Tensor | tuple[torch.Tensor, KVCache]:
        """Logits (B, T, V) for input_ids (B, T); with return_kv, (logits, the KVCache of these T positions).

        attention_mask (B, T), True where the token is real: left-padded prompts of a batch. Padding positions
        are hidden as keys; RoPE is relative, so a left-padded row gives its real tokens the same logits as
        the same row without padding.
        position_ids (T,) or (B, T): absolute positions of the T tokens (default 0..T-1), for a forward of
        a slice of a sequence whose other positions are in past_key_values.
        past_key_values: keys and values of other positions of the same sequences, attended to as well
        (bidirectional models only); its own mask hides its padding.
        """
        B, T = input_ids.shape
        if past_key_values is not None and self.config.causal:
            raise ValueError(
                "MaskPredictor: past_key_values serves the bidirectional diffusion model; the causal baseline "
                "would need a causal mask over the cached positions, which is not implemented"
            )
        if position_ids is None:
            position_ids = torch.arange(T, device=input_ids.device)
        x = self.transformer.wte(input_ids)  # (B, T, C)
        cos, sin = rope_cos_sin(position_ids, self.config.head_dim, self.config.rope_theta)  # (T, hs) or (B, T, hs)
        if cos.dim() == 3:  # per-row positions: broadcast over heads
            cos, sin = cos[:, None], sin[:, None]  # (B, 1, T, hs)
        attn_mask = None  # every key real: SDPA needs no mask
        if attention_mask is not None or (past_key_values is not None and past_key_values.mask is not None):
            if attention_mask is None:
                key_is_real = torch.ones_like(input_ids, dtype=torch.bool)  # (B, T)
            else:
                key_is_real = attention_mask.bool()  # (B, T)
            if past_key_values is not None:  # the cached keys come first
                key_is_real = torch.cat((past_key_values.real_tokens(), key_is_real), dim=1)  # (B, S + T)
            attn_mask = self._attention_mask(key_is_real, T)
        keys, values = [], []
        for i, block in enumerate(self.transformer.blocks):
            past = None if past_key_values is None else (past_key_values.keys[i], past_key_values.values[i])
            if self.config.activation_checkpointing and self.training:
                x, (k, v) = checkpoint(block, x, cos, sin, attn_mask, past, use_reentrant=False)
            else:
                x, (k, v) = block(x, cos, sin, attn_mask, past)
            if return_kv:
                keys.append(k)
                values.append(v)
        x = self.transformer.ln_f(x)
        logits = self.transformer.ff_out(x)  # (B, T, V)
        if not return_kv:
            return logits
        mask = None if attention_mask is None else attention_mask.bool()
        return logits, KVCache(keys=keys, values=values, mask=mask)

    def _attention_mask(self, key_is_real: torch.Tensor, T: int) -> torch.Tensor:
        """SDPA boolean mask (B, 1, T, S + T), True = may attend, from real-token flags of the keys (B, S + T),
        whose last T are the queries' own positions."""
        device, num_keys = key_is_real.device, key_is_real.shape[1]
        key_index = torch.arange(num_keys, device=device)[None, :]  # (1, S + T)
        query_index = torch.arange(num_keys - T, num_keys, device=device)[:, None]  # (T, 1): each query as a key
        # Every query also sees itself, so a padding row is never fully masked: an all-False row gives NaN,
        # and NaN values reach real tokens in the next layer through 0 * NaN.
        allowed = key_is_real[:, None, None, :] | (key_index == query_index)  # (B, 1, T, S + T)
        if self.config.causal:
            allowed = allowed & (key_index <= query_index)
        return allowed

    def num_params(self, non_embedding: bool = False) -> int:
        """Parameter count; non_embedding leaves out the input embedding and the output head."""
        n = sum(p.numel() for p in self.parameters())
        if non_embedding:
            n -= self.transformer.wte.weight.numel() + self.transformer.ff_out.weight.numel()
        return n

    def flops_per_token(self, seq_len: int) -> int:
        """Training FLOPs (forward + backward) per token at sequence length seq_len.

        Convention of PaLM (Chowdhery et al. 2022, appendix B), as LLaDA reports MFU "by 6ND on non-embedding
        parameters": 6 per non-embedding parameter (2 per multiply-add, x3 for forward + backward), plus
        attention scores and weighted values, 2 * 2 * T * d_model per layer forward, x3. Bidirectional
        attention computes the full T x T, so nothing is halved. The output head's matmul is not counted.
        """
        c = self.config
        return 6 * self.num_params(non_embedding=True) + 12 * c.n_layers * c.d_model * seq_len
