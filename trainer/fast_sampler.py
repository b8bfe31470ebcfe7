"""Fast sampling: confidence-threshold parallel decoding and block-wise key/value caches.

docs/SPEC-diffusion.md "Beyond the reference", after Fast-dLLM (Wu et al. 2025, "Fast-dLLM: Training-free
Acceleration of Diffusion LLM by Enabling KV Cache and Parallel Decoding", arXiv:2505.22005):
- parallel decoding (section 3.3): within a block, commit at each step every masked position whose
  confidence reaches a threshold (at least the most confident one), instead of a fixed count per step;
- prefix cache (section 3.2): at the start of each block run the whole canvas once and keep the keys and
  values of the positions left of the block; later steps of the block run only the block and what lies right
  of it. Those positions do not change within the block, and their keys and values change little;
- dual cache (section 3.2): also keep the keys and values right of the block (still masked), so later steps
  run only the block's own positions.
Both are approximations of the reference (the exact `trainer.sampler.generate`), opt-in and measured. With
threshold=None and cache="none", `generate_fast` returns exactly what `generate` returns, random draws
included; classifier-free guidance is not offered here.
"""

from __future__ import annotations

import inspect

import torch

from trainer.model import KVCache
from trainer.sampler import REMASKING, candidates, get_num_transfer_tokens

CACHES = ("none", "prefix", "dual")


@torch.no_grad()
def generate_fast(
    model: torch.nn.Module,
    prompt: torch.Tensor,
    *,
    steps: int,
    gen_length: int,
    block_length: int,
    mask_id: int,
    threshold: float | None = None,
    cache: str = "none",
    refresh_every: int | None = None,
    temperature: float = 0.0,
    remasking: str = "low_confidence",
    attention_mask: torch.Tensor | None = None,
    eos_id: int | None = None,
    eot_id: int | None = None,
    forbid_eos: bool = False,
    eos_last: bool = False,
    stats: dict | None = None,
) -> torch.Tensor:
    """Complete prompt (B, P) (left-padded, attention_mask (B, P) True on real tokens) with gen_length
    tokens: (B, P + gen_length). Arguments as `trainer.sampler.generate`, plus:

    threshold: commit every masked position of the current block whose probability is >= threshold, and
        at least the most confident one, per row; a block ends when it has no mask left. `steps` then bounds
        the steps per block (steps / number of blocks): a row that would not finish in the steps left commits
        at least ceil(masks left / steps left), so every block completes. A row whose block is done is not
        run again until the next block (the batch shrinks to the rows still decoding). None: the exact
        schedule.
    cache: "none" (every step runs the whole canvas), "prefix" or "dual" (see the module docstring); both
        need a model whose forward takes position_ids, past_key_values and return_kv (trainer.model).
    refresh_every: with a cache, also run the whole canvas and rebuild the cache every this many steps
        of a block (step 0 always), so the cached keys and values see the tokens committed since; None:
        once per block, as Fast-dLLM. 1 is the no-cache computation.
    stats: if given, filled with forward_passes (model calls), tokens_per_forward (gen_length / forward_passes:
        tokens committed per row per call) and positions_computed (token positions run through the model,
        summed over the batch and the calls), and cache_bytes (the most bytes of cached keys and values held
        at once: at a refresh, the whole canvas's and, for "dual", the copy kept of the positions outside
        the block; 0 without a cache).
    """
    if prompt.dim() != 2:
        raise ValueError(f"generate_fast: prompt must be (batch, length) token ids, got shape {tuple(prompt.shape)}")
    for name, value in (("steps", steps), ("gen_length", gen_length), ("block_length", block_length)):
        if value <= 0:
            raise ValueError(f"generate_fast: {name} must be positive, got {value}")
    if gen_length % block_length:
        raise ValueError(
            f"generate_fast: gen_length ({gen_length}) must be a multiple of block_length ({block_length})"
        )
    num_blocks = gen_length // block_length
    if steps % num_blocks:
        raise ValueError(
            f"generate_fast: steps ({steps}) must be a multiple of the number of blocks "
            f"(gen_length / block_length = {num_blocks}), so that every block gets the same number of steps"
        )
    if remasking not in REMASKING:
        raise ValueError(f"generate_fast: remasking must be one of {', '.join(REMASKING)}, got {remasking!r}")
    if cache not in CACHES:
        raise ValueError(f"generate_fast: cache must be one of {', '.join(CACHES)}, got {cache!r}")
    if refresh_every is not None and (refresh_every < 1 or cache == "none"):
        raise ValueError(f"generate_fast: refresh_every must be >= 1 and needs a cache, got {refresh_every} with cache={cache!r}")
    if threshold is not None and threshold <= 0:
        raise ValueError(f"generate_fast: threshold must be > 0 (or None for the exact schedule), got {threshold}")
    if threshold is not None and remasking != "low_confidence":
        raise ValueError(
            "generate_fast: threshold needs remasking='low_confidence': it is compared with the model's "
            "probability of each candidate, which random remasking does not use"
        )
    if temperature < 0:
        raise ValueError(f"generate_fast: temperature must be >= 0, got {temperature}")
    if forbid_eos and eos_id is None:
        raise ValueError("generate_fast: forbid_eos needs eos_id")
    if eos_last and eos_id is None and eot_id is None:
        raise ValueError("generate_fast: eos_last needs eos_id or eot_id")
    if attention_mask is not None and attention_mask.shape != prompt.shape:
        raise ValueError(
            f"generate_fast: attention_mask shape {tuple(attention_mask.shape)} differs from prompt "
            f"{tuple(prompt.shape)}"
        )
    if cache != "none":
        forward = inspect.signature(getattr(model, "_orig_mod", model).forward).parameters  # _orig_mod: compiled
        if not {"position_ids", "past_key_values", "return_kv"} <= forward.keys():
            raise ValueError(
                f"generate_fast: cache={cache!r} needs a model whose forward takes position_ids, past_key_values "
                f"and return_kv (trainer.model.MaskPredictor); {type(model).__name__} does not: use cache='none'"
            )

    B, P = prompt.shape
    L = P + gen_length
    x = torch.full((B, L), mask_id, dtype=torch.long, device=prompt.device)  # the canvas (B, L)
    x[:, :P] = prompt
    if attention_mask is not None:  # generated positions are real tokens
        attention_mask = torch.cat([attention_mask.bool(), attention_mask.new_ones(B, gen_length, dtype=torch.bool)], 1)
    end_ids = [i for i in (eos_id, eot_id) if i is not None] if eos_last else []
    steps_per_block = steps // num_blocks
    forward_passes = positions_computed = cache_bytes = 0

    for block in range(num_blocks):
        block_start = P + block * block_length
        block_end = block_start + block_length
        schedule = get_num_transfer_tokens(x[:, block_start:block_end] == mask_id, steps_per_block)  # (B, s)
        past = None  # the block's cache, from its first step
        for step in range(steps_per_block):
            refresh = cache != "none" and step % (refresh_every or steps_per_block) == 0
            rows = None  # the batch rows run at this step: all of them (None), or those with masks left
            if threshold is not None:  # parallel decoding: a row whose block is done early waits for the others
                pending = (x[:, block_start:block_end] == mask_id).any(dim=1)  # (B,)
                if not pending.any():
                    break  # the block is done early for every row
                if not pending.all() and not refresh:  # a refresh rebuilds every row's cache
                    rows = pending.nonzero().squeeze(1)
            canvas = x if rows is None else x[rows]  # (b, L); a copy when rows are chosen, written back below
            canvas_mask = attention_mask if attention_mask is None or rows is None else attention_mask[rows]
            # the model runs the window start..end-1 of the canvas: all of it when it refreshes the cache (the
            # block's first step, and every refresh_every) and always without a cache; else the block and, for
            # "prefix", its right
            if refresh or cache == "none":
                start, end = 0, L
                if cache == "none":
                    output = model(canvas) if canvas_mask is None else model(canvas, attention_mask=canvas_mask)
                    logits = getattr(output, "logits", output)  # (b, L, V); a Hugging Face model returns .logits
                else:  # a refresh runs every row (rows is None)
                    logits, kv = model(canvas, canvas_mask, return_kv=True)
                    past = kv.slice(0, block_start)
                    if cache == "dual":
                        past = KVCache.cat([past, kv.slice(block_end, L)])
                    cache_bytes = max(cache_bytes, _bytes_held(kv, past))
                    del kv  # "dual" copied what it keeps; "prefix" keeps views of it
            else:
                start, end = block_start, (L if cache == "prefix" else block_end)
                logits = model(
                    canvas[:, start:end],
                    None if canvas_mask is None else canvas_mask[:, start:end],
                    position_ids=torch.arange(start, end, device=x.device),  # absolute: RoPE must match the cache
                    past_key_values=past if rows is None else past.rows(rows),
                )  # (b, end - start, V)
            forward_passes += 1
            positions_computed += canvas.shape[0] * (end - start)

            window = canvas[:, start:end]  # (b, W), a view: committing writes into the canvas
            masked = window == mask_id
            masked[:, : block_start - start] = False  # only the current block is decoded
            masked[:, block_end - start :] = False
            x0, confidence, is_end = candidates(
                logits, temperature, remasking, eos_id if forbid_eos else None, end_ids
            )
            # B.4 (generate): end tokens 2 below every other candidate, so they are committed last
            order = torch.where(is_end, confidence - 2, confidence)
            order = torch.where(masked, order, float("-inf"))  # (b, W)

            if threshold is None:  # the exact schedule
                count = schedule[:, step]  # (B,)
            else:  # enough to finish the block in the steps left, at least one while masks are left
                count = -(-masked.sum(dim=1) // (steps_per_block - step))  # ceil, (b,)
            k_max = int(count.max())
            top = order.topk(k_max, dim=-1).indices  # (b, k_max)
            commit = torch.zeros_like(masked).scatter_(
                1, top, torch.arange(k_max, device=x.device)[None, :] < count[:, None]
            )  # (b, W)
            if threshold is not None:
                confident = masked & (confidence >= threshold)
                if end_ids:  # end tokens only once nothing else is left in the row's block
                    others_left = (masked & ~is_end).any(dim=1, keepdim=True)  # (b, 1)
                    confident &= ~is_end | ~others_left
                commit |= confident
            window[...] = torch.where(commit & masked, x0, window)
            if rows is not None:
                x[rows] = canvas

    if stats is not None:
        stats.update(
            forward_passes=forward_passes,
            tokens_per_forward=gen_length / forward_passes,
            positions_computed=positions_computed,
            cache_bytes=cache_bytes,
        )
    return x


def _bytes_held(*caches: KVCache) -> int:
    """Bytes of the distinct storages behind the caches' keys and values (views of one tensor count once)."""
    storages = {}
    for kv in caches:
        for tensor in (*kv.keys, *kv.values):
            storage = tensor.untyped_storage()
            storages[storage.data_ptr()] = storage.nbytes()
    return sum(storages.values())
