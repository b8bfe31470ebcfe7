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
from dataclasses import dataclass

import torch

from trainer.config import CACHES
from trainer.model import KVCache
from trainer.sampler import (
    candidates,
    check_arguments,
    commit_most_confident,
    end_tokens_last,
    get_num_transfer_tokens,
    model_logits,
)



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
    num_blocks = check_arguments(
        "generate_fast", prompt, steps=steps, gen_length=gen_length, block_length=block_length,
        temperature=temperature, remasking=remasking, attention_mask=attention_mask, eos_id=eos_id, eot_id=eot_id,
        forbid_eos=forbid_eos, eos_last=eos_last,
    )
    check_fast_arguments(model, cache=cache, refresh_every=refresh_every, threshold=threshold, remasking=remasking)

    B, P = prompt.shape
    L = P + gen_length
    x = torch.full((B, L), mask_id, dtype=torch.long, device=prompt.device)  # the canvas (B, L)
    x[:, :P] = prompt
    if attention_mask is not None:  # generated positions are real tokens
        attention_mask = torch.cat([attention_mask.bool(), attention_mask.new_ones(B, gen_length, dtype=torch.bool)], 1)
    forbidden_id = eos_id if forbid_eos else None
    end_ids = [i for i in (eos_id, eot_id) if i is not None] if eos_last else []
    steps_per_block = steps // num_blocks
    policy = CachePolicy(model, cache, refresh_every=refresh_every or steps_per_block)  # None: once per block

    for block in range(num_blocks):
        block_start = P + block * block_length
        block_end = block_start + block_length
        schedule = get_num_transfer_tokens(x[:, block_start:block_end] == mask_id, steps_per_block)  # (B, s)
        policy.start_block(block_start, block_end)
        for step in range(steps_per_block):
            rows = None  # the batch rows run at this step: all of them (None), or those with masks left
            if threshold is not None:  # parallel decoding: a row whose block is done early waits for the others
                pending = rows_with_masks(x[:, block_start:block_end], mask_id)  # (b,)
                if len(pending) == 0:
                    break  # the block is done early for every row
                if len(pending) < B and not policy.refreshes(step):  # a refresh rebuilds every row's cache
                    rows = pending
            canvas = x if rows is None else x[rows]  # (b, L); a copy when rows are chosen, written back below
            canvas_mask = attention_mask if attention_mask is None or rows is None else attention_mask[rows]

            logits, start = policy.logits(canvas, canvas_mask, step, rows)  # (b, W, V) from canvas position start
            window = canvas[:, start : start + logits.shape[1]]  # (b, W), a view: committing writes into the canvas
            chosen = choose_candidates(
                logits, window, slice(block_start - start, block_end - start), mask_id=mask_id,
                temperature=temperature, remasking=remasking, forbidden_id=forbidden_id, end_ids=end_ids,
            )
            if threshold is None:  # the exact schedule
                commit = commit_most_confident(chosen.order, schedule[:, step])
            else:
                commit = threshold_commit(chosen, threshold, steps_left=steps_per_block - step)
            window[...] = torch.where(commit & chosen.masked, chosen.x0, window)
            if rows is not None:
                x[rows] = canvas

    if stats is not None:
        stats.update(policy.stats(), tokens_per_forward=gen_length / policy.forward_passes)
    return x


def check_fast_arguments(
    model: torch.nn.Module, *, cache: str, refresh_every: int | None, threshold: float | None, remasking: str
) -> None:
    """Raise ValueError on the options `generate` does not have (those it has: `trainer.sampler.check_arguments`)."""
    if cache not in CACHES:
        raise ValueError(f"generate_fast: cache must be one of {', '.join(CACHES)}, got {cache!r}")
    if refresh_every is not None and (refresh_every < 1 or cache == "none"):
        raise ValueError(
            f"generate_fast: refresh_every must be >= 1 and needs a cache, got {refresh_every} with cache={cache!r}"
        )
    if threshold is not None and threshold <= 0:
        raise ValueError(f"generate_fast: threshold must be > 0 (or None for the exact schedule), got {threshold}")
    if threshold is not None and remasking != "low_confidence":
        raise ValueError(
            "generate_fast: threshold needs remasking='low_confidence': it is compared with the model's "
            "probability of each candidate, which random remasking does not use"
        )
    if cache != "none":
        forward = inspect.signature(getattr(model, "_orig_mod", model).forward).parameters  # _orig_mod: compiled
        if not {"position_ids", "past_key_values", "return_kv"} <= forward.keys():
            raise ValueError(
                f"generate_fast: cache={cache!r} needs a model whose forward takes position_ids, past_key_values "
                f"and return_kv (trainer.model.MaskPredictor); {type(model).__name__} does not: use cache='none'"
            )


def rows_with_masks(block_ids: torch.Tensor, mask_id: int) -> torch.Tensor:
    """Indices (b,) of the rows of block_ids (B, block_length) whose block still has a mask to decode."""
    return (block_ids == mask_id).any(dim=1).nonzero().squeeze(1)


# -- candidate choice ----------------------------------------------------------------------------------


@dataclass(kw_only=True)
class Candidates:
    """One step's candidates over the window of the canvas the model ran (b rows, W positions)."""

    x0: torch.Tensor
    """(b, W) the candidate token at every position (`trainer.sampler.candidates`)."""
    confidence: torch.Tensor
    """(b, W) the model's probability of each candidate (low_confidence), or a uniform draw (random)."""
    is_end: torch.Tensor
    """(b, W) whether the candidate is an end token (EOS or end-of-turn, with eos_last)."""
    masked: torch.Tensor
    """(b, W) the masked positions of the current block: the only ones this step may commit."""
    order: torch.Tensor
    """(b, W) the order of commitment: confidence, end tokens last (paper B.4), -inf outside `masked`."""


def choose_candidates(
    logits: torch.Tensor,
    window: torch.Tensor,
    block: slice,
    *,
    mask_id: int,
    temperature: float,
    remasking: str,
    forbidden_id: int | None,
    end_ids: list[int],
) -> Candidates:
    """The candidates of the window (b, W) of token ids whose logits (b, W, V) the model returned; `block`: where
    the current block lies in the window. As `generate` chooses them, so that the exact schedule matches it."""
    masked = torch.zeros_like(window, dtype=torch.bool)
    masked[:, block] = window[:, block] == mask_id  # left and right of the block: not decoded at this step
    x0, confidence, is_end = candidates(logits, temperature, remasking, forbidden_id, end_ids)
    order = torch.where(masked, end_tokens_last(confidence, is_end), float("-inf"))
    return Candidates(x0=x0, confidence=confidence, is_end=is_end, masked=masked, order=order)


# -- the threshold rule --------------------------------------------------------------------------------


def threshold_commit(chosen: Candidates, threshold: float, *, steps_left: int) -> torch.Tensor:
    """Which positions to commit (b, W) under Fast-dLLM's threshold rule (section 3.3: parallel decoding is
    safe where the model is confident): every masked position of the block whose confidence is >= threshold,
    and at least the ceil(masks left / steps left) most confident ones, so the block completes in the steps
    it has and a row commits at least one token per step while masks are left."""
    count = -(-chosen.masked.sum(dim=1) // steps_left)  # ceil, (b,)
    commit = commit_most_confident(chosen.order, count)
    confident = chosen.masked & (chosen.confidence >= threshold)
    # B.4 (generate's eos_last): end tokens only once nothing else is left in the row's block
    others_left = (chosen.masked & ~chosen.is_end).any(dim=1, keepdim=True)  # (b, 1)
    confident &= ~chosen.is_end | ~others_left
    return commit | confident


# -- the cache policy ----------------------------------------------------------------------------------


class CachePolicy:
    """How each step of a block runs the model, and what that cost (for `stats`).

    "none": the whole canvas every step, as `generate`. "prefix" and "dual" (Fast-dLLM section 3.2): at a
    refresh (the block's first step, then every refresh_every steps) the whole canvas, keeping the keys and
    values of the positions left of the block ("dual": and right of it); the other steps run only the block
    and its right ("prefix") or the block alone ("dual"), attending to the cached positions.
    """

    def __init__(self, model: torch.nn.Module, cache: str, *, refresh_every: int):
        self.model, self.cache, self.refresh_every = model, cache, refresh_every
        self.block_start = self.block_end = 0
        self.past: KVCache | None = None  # the current block's cache, from its last refresh
        self.forward_passes = self.positions_computed = self.cache_bytes = 0

    def start_block(self, block_start: int, block_end: int) -> None:
        self.block_start, self.block_end, self.past = block_start, block_end, None

    def refreshes(self, step: int) -> bool:
        """Whether this step of the block runs the whole canvas and rebuilds the cache, so that the cached keys
        and values see the tokens committed since the last refresh."""
        return self.cache != "none" and step % self.refresh_every == 0

    def logits(
        self, canvas: torch.Tensor, attention_mask: torch.Tensor | None, step: int, rows: torch.Tensor | None
    ) -> tuple[torch.Tensor, int]:
        """(logits (b, W, V) of the window canvas[:, start : start + W] that the model ran, start) for the canvas
        (b, L) of the batch rows `rows` (None: all of them; a refresh runs all of them)."""
        L = canvas.shape[1]
        if self.cache == "none":
            start, end = 0, L
            logits = model_logits(self.model, canvas, attention_mask)  # (b, L, V)
        elif self.refreshes(step):
            start, end = 0, L
            logits, kv = self.model(canvas, attention_mask, return_kv=True)  # (b, L, V)
            self.past = kv.slice(0, self.block_start)
            if self.cache == "dual":
                self.past = KVCache.cat([self.past, kv.slice(self.block_end, L)])
            self.cache_bytes = max(self.cache_bytes, _bytes_held(kv, self.past))
            del kv  # "dual" copied what it keeps; "prefix" keeps views of it
        else:
            start, end = self.block_start, (L if self.cache == "prefix" else self.block_end)
            logits = self.model(
                canvas[:, start:end],
                None if attention_mask is None else attention_mask[:, start:end],
                position_ids=torch.arange(start, end, device=canvas.device),  # absolute: RoPE must match the cache
                past_key_values=self.past if rows is None else self.past.rows(rows),
            )  # (b, end - start, V)
        self.forward_passes += 1
        self.positions_computed += canvas.shape[0] * (end - start)
        return logits, start

    def stats(self) -> dict[str, int]:
        """forward_passes, positions_computed and cache_bytes so far (generate_fast's `stats`)."""
        return dict(
            forward_passes=self.forward_passes, positions_computed=self.positions_computed, cache_bytes=self.cache_bytes
        )


def _bytes_held(*caches: KVCache) -> int:
    """Bytes of the distinct storages behind the caches' keys and values (views of one tensor count once)."""
    storages = {}
    for kv in caches:
        for tensor in (*kv.keys, *kv.values):
            storage = tensor.untyped_storage()
            storages[storage.data_ptr()] = storage.nbytes()
    return sum(storages.values())
