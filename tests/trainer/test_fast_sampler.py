import dataclasses
import types

import pytest
import torch
from torch import nn

from tests.trainer.test_sampler import (
    EOS_ID,
    EOT_ID,
    MASK_ID,
    VOCAB,
    Biased,
    left_padded_batch,
    random_prompt,
    small_model,
)
from trainer.fast_sampler import generate_fast
from trainer.model import MaskPredictor
from trainer.sampler import generate


def confident_model(n_layers: int = 2) -> nn.Module:
    """The test model with its output head scaled up: peaked distributions, so a threshold of 0.9 is reached
    at some positions and not at others."""
    torch.manual_seed(0)
    model = MaskPredictor(dataclasses.replace(small_model().config, n_layers=n_layers)).eval()
    with torch.no_grad():
        model.transformer.ff_out.weight.mul_(20)
    return model


def batch(padded: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
    return left_padded_batch() if padded else (random_prompt(1, 5), None)


EXACT_CASES = {
    "one block": dict(padded=False, steps=8, gen_length=8, block_length=8),
    "three blocks, uneven steps": dict(padded=False, steps=9, gen_length=12, block_length=4),
    "more steps than tokens": dict(padded=False, steps=6, gen_length=4, block_length=4),
    "left padding": dict(padded=True, steps=6, gen_length=6, block_length=3),
    "left padding, eos rules": dict(
        padded=True, steps=8, gen_length=8, block_length=4, eos_id=EOS_ID, eot_id=EOT_ID, eos_last=True,
        forbid_eos=True,
    ),
    "random remasking": dict(padded=True, steps=4, gen_length=8, block_length=4, remasking="random"),
    "temperature": dict(padded=False, steps=4, gen_length=8, block_length=4, temperature=0.8),
}


@pytest.mark.parametrize("case", EXACT_CASES.values(), ids=EXACT_CASES.keys())
def test_exact_mode_returns_what_generate_returns(case):
    case = dict(case)
    prompt, attention_mask = batch(case.pop("padded"))
    model = confident_model()
    kwargs = dict(mask_id=MASK_ID, attention_mask=attention_mask, **case)
    torch.manual_seed(3)  # the same random draws, in the same order, where temperature or remasking use them
    expected = generate(model, prompt, **kwargs)
    torch.manual_seed(3)
    stats = {}
    actual = generate_fast(model, prompt, stats=stats, **kwargs)
    assert actual.tolist() == expected.tolist()
    B, L = expected.shape
    assert stats == dict(
        forward_passes=case["steps"],
        tokens_per_forward=case["gen_length"] / case["steps"],
        positions_computed=case["steps"] * B * L,
        cache_bytes=0,
    )


@pytest.mark.parametrize("padded", [False, True], ids=["no padding", "left padding"])
@pytest.mark.parametrize("cache", ["prefix", "dual"])
def test_caches_are_exact_for_a_one_layer_model(cache, padded):
    # With one layer the keys and values depend only on each position's own token. Within a block the tokens
    # left of it are final and those right of it stay masks, so both caches hold exactly what a full forward
    # would compute: the cached sampler must then decode exactly as generate does.
    prompt, attention_mask = batch(padded)
    model = confident_model(n_layers=1)
    kwargs = dict(steps=8, gen_length=12, block_length=6, mask_id=MASK_ID, attention_mask=attention_mask)
    expected = generate(model, prompt, **kwargs)
    assert generate_fast(model, prompt, cache=cache, **kwargs).tolist() == expected.tolist()


@pytest.mark.parametrize("cache", ["prefix", "dual"])
def test_a_cache_refreshed_every_step_is_the_exact_computation(cache):
    # Two layers: a cache kept for a whole block is an approximation; rebuilt at every step it holds exactly
    # what a full forward computes, so the sampler must then decode exactly as generate does.
    prompt, attention_mask = batch(True)
    model = confident_model()
    kwargs = dict(steps=8, gen_length=12, block_length=6, mask_id=MASK_ID, attention_mask=attention_mask)
    stats = {}
    out = generate_fast(model, prompt, cache=cache, refresh_every=1, stats=stats, **kwargs)
    assert out.tolist() == generate(model, prompt, **kwargs).tolist()
    assert stats["positions_computed"] == 8 * prompt.shape[0] * (prompt.shape[1] + 12)  # all full passes
    generate_fast(model, prompt, cache=cache, refresh_every=2, stats=stats, **kwargs)
    B, L = prompt.shape[0], prompt.shape[1] + 12
    windows = [6, 6] if cache == "dual" else [12, 6]  # per block: the block (dual), or it and its right
    # 4 steps a block: full passes at steps 0 and 2, the window at steps 1 and 3
    assert stats["positions_computed"] == 4 * B * L + 2 * B * sum(windows)
    with pytest.raises(ValueError, match="refresh_every must be >= 1 and needs a cache"):
        generate_fast(model, prompt, refresh_every=2, **kwargs)


@pytest.mark.parametrize("cache", ["none", "prefix", "dual"])
@pytest.mark.parametrize("padded", [False, True], ids=["no padding", "left padding"])
def test_threshold_fills_every_mask_in_fewer_forward_passes(padded, cache):
    prompt, attention_mask = batch(padded)
    model = confident_model()
    kwargs = dict(steps=16, gen_length=16, block_length=8, mask_id=MASK_ID, attention_mask=attention_mask)
    stats = {}
    out = generate_fast(model, prompt, threshold=0.9, cache=cache, stats=stats, **kwargs)
    assert out.shape == (prompt.shape[0], prompt.shape[1] + 16)
    assert not (out == MASK_ID).any()
    assert torch.equal(out[:, : prompt.shape[1]], prompt)
    assert 2 <= stats["forward_passes"] < 16  # at least one per block, fewer than the exact mode's
    assert stats["tokens_per_forward"] == 16 / stats["forward_passes"]


class Recording(nn.Module):
    """Records every canvas the model is called on (no cache support: for cache="none")."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model, self.calls = model, []

    def forward(self, ids, attention_mask=None):
        self.calls.append(ids.clone())
        return self.model(ids, attention_mask=attention_mask)


def committed_per_call(model: Recording, out: torch.Tensor, prompt_length: int) -> list[torch.Tensor]:
    """For each model call, the generated positions (B, G) it committed. A call may run only some rows
    (threshold decoding drops rows whose block is done): each called row is told by its prompt, and what
    it committed is what changed before that row's next call (or the output)."""
    prompts = out[:, :prompt_length]
    called = []  # per call: the batch row of each of its rows
    for ids in model.calls:
        matches = (ids[:, None, :prompt_length] == prompts[None]).all(dim=-1)  # (called rows, B)
        assert (matches.sum(dim=1) == 1).all(), "every called row is one batch row (distinct prompts)"
        called.append(matches.int().argmax(dim=1).tolist())
    result = []
    for c, (ids, rows) in enumerate(zip(model.calls, called)):
        committed = torch.zeros(out.shape[0], out.shape[1] - prompt_length, dtype=torch.bool)
        for i, row in enumerate(rows):
            later = next((model.calls[d][called[d].index(row)] for d in range(c + 1, len(called)) if row in called[d]), out[row])
            committed[row] = ((ids[i] == MASK_ID) & (later != MASK_ID))[prompt_length:]
        result.append(committed)
    return result


def test_threshold_commits_block_by_block():
    prompt, attention_mask = left_padded_batch()
    model = Recording(confident_model())
    gen_length, block_length = 16, 4
    out = generate_fast(
        model, prompt, steps=16, gen_length=gen_length, block_length=block_length, mask_id=MASK_ID,
        attention_mask=attention_mask, threshold=0.9,
    )
    decoded = torch.zeros(2, gen_length, dtype=torch.bool)
    for committed in committed_per_call(model, out, prompt.shape[1]):
        assert not (committed & decoded).any()
        decoded |= committed
        for row in range(2):
            positions = committed[row].nonzero().flatten()
            if len(positions):  # all in the row's first block that was not yet done
                block = int(positions[0]) // block_length
                assert (positions // block_length == block).all()
                assert decoded[row, : block * block_length].all()
    assert decoded.all()
    assert any(int(c.sum(dim=1).max()) > 1 for c in committed_per_call(model, out, prompt.shape[1]))  # parallel


class SureOfOneRow(nn.Module):
    """Certain of token 5 everywhere in rows whose first token is `sure_first`; uniform (never confident)
    elsewhere."""

    def __init__(self, sure_first: int):
        super().__init__()
        self.sure_first, self.calls = sure_first, []

    def forward(self, ids, attention_mask=None):
        self.calls.append(ids.clone())
        logits = torch.zeros(*ids.shape, VOCAB)
        logits[ids[:, 0] == self.sure_first, :, 5] = 50.0
        return logits


def test_rows_done_early_are_not_run_again():
    prompt = random_prompt(2, 3)
    model = Recording(SureOfOneRow(int(prompt[0, 0])))
    stats = {}
    out = generate_fast(model, prompt, steps=8, gen_length=8, block_length=8, mask_id=MASK_ID, threshold=0.9, stats=stats)
    assert (out[0, 3:] == 5).all() and not (out == MASK_ID).any()
    # row 0 is done after the first call; row 1 commits one token per call, alone
    assert [ids.shape[0] for ids in model.calls] == [2] + [1] * 7
    assert stats["forward_passes"] == 8 and stats["positions_computed"] == 2 * 11 + 7 * 11
    assert [int(c.sum()) for c in committed_per_call(model, out, 3)] == [8 + 1] + [1] * 7


class CountingRows(nn.Module):
    """A MaskPredictor that records how many rows each call runs (the cached modes need its forward)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model, self.rows = model, []

    def forward(self, ids, attention_mask=None, *, position_ids=None, past_key_values=None, return_kv=False):
        self.rows.append(ids.shape[0])
        return self.model(ids, attention_mask, position_ids=position_ids, past_key_values=past_key_values, return_kv=return_kv)


@pytest.mark.parametrize("cache", ["prefix", "dual"])
def test_a_shrinking_batch_keeps_each_rows_cache(cache):
    # Rows finish their blocks at different calls; each row left must be decoded with its own cached keys
    # and values, so the batch gives what each prompt alone gives.
    prompt = random_prompt(4, 5)
    model = CountingRows(confident_model())
    kwargs = dict(steps=16, gen_length=16, block_length=8, mask_id=MASK_ID, threshold=0.9, cache=cache)
    together = generate_fast(model, prompt, **kwargs)
    assert min(model.rows) < 4, "some call ran fewer rows (the case under test)"
    alone = torch.cat([generate_fast(model, prompt[i : i + 1], **kwargs) for i in range(4)])
    assert together.tolist() == alone.tolist()


@pytest.mark.parametrize("cache", ["none", "prefix", "dual"])
def test_an_unreachable_threshold_commits_one_token_per_step(cache):
    prompt, attention_mask = left_padded_batch()
    stats = {}
    out = generate_fast(
        confident_model(), prompt, steps=12, gen_length=12, block_length=4, mask_id=MASK_ID,
        attention_mask=attention_mask, threshold=1.01, cache=cache, stats=stats,
    )
    assert not (out == MASK_ID).any()
    # at least one per step, and every step was needed: exactly one per step
    assert stats["forward_passes"] == 12


def test_the_step_bound_completes_every_block():
    # 2 steps per block of 6 and an unreachable threshold: 3 per step, as the exact schedule would commit
    model = Recording(confident_model())
    prompt = random_prompt(1, 5)
    out = generate_fast(model, prompt, steps=4, gen_length=12, block_length=6, mask_id=MASK_ID, threshold=1.01)
    assert [int(c.sum()) for c in committed_per_call(model, out, 5)] == [3, 3, 3, 3]


def test_eos_last_with_a_threshold_commits_end_tokens_after_the_rest_of_the_block():
    prompt_length, gen_length, block_length = 3, 8, 4
    ends = {3, 6, 7, 9}  # canvas positions whose candidate is a (near) certain EOS
    bias = torch.zeros(prompt_length + gen_length, VOCAB)
    bias[:, [EOS_ID, EOT_ID]] = -20.0
    bias[sorted(ends), EOS_ID] = 40.0
    model = Recording(Biased(small_model(), bias))
    out = generate_fast(
        model, random_prompt(1, prompt_length), steps=gen_length, gen_length=gen_length, block_length=block_length,
        mask_id=MASK_ID, eos_id=EOS_ID, eos_last=True, threshold=0.9,
    )
    assert {i for i in range(prompt_length, prompt_length + gen_length) if out[0, i] == EOS_ID} == ends
    steps = [set((c[0].nonzero().flatten() + prompt_length).tolist()) for c in committed_per_call(model, out, 3)]
    for block_start in range(prompt_length, prompt_length + gen_length, block_length):
        block = set(range(block_start, block_start + block_length))
        block_steps = [step & block for step in steps if step & block]
        first_end = next(k for k, step in enumerate(block_steps) if step & ends)
        # the others first, one a step (unsure); then the block's end tokens, together (all sure)
        assert block_steps[first_end:] == [ends & block]
    assert len(steps) < gen_length


def test_caches_reduce_the_positions_computed():
    prompt, attention_mask = left_padded_batch()
    B, P = prompt.shape
    G, block_length, steps = 16, 8, 8
    L, s = P + G, steps // (G // block_length)
    computed = {}
    for cache in ("none", "prefix", "dual"):
        stats = {}
        generate_fast(
            confident_model(), prompt, steps=steps, gen_length=G, block_length=block_length, mask_id=MASK_ID,
            attention_mask=attention_mask, cache=cache, stats=stats,
        )
        assert stats["forward_passes"] == steps
        computed[cache] = stats["positions_computed"]
    # each block: one full forward, then s - 1 forwards of the block and its right (prefix) or the block (dual)
    assert computed["none"] == steps * B * L
    assert computed["prefix"] == sum(B * L + (s - 1) * B * (L - (P + b * block_length)) for b in range(2))
    assert computed["dual"] == 2 * (B * L + (s - 1) * B * block_length)
    assert computed["none"] > computed["prefix"] > computed["dual"]


def test_cache_bytes_counts_the_keys_and_values_held():
    prompt, attention_mask = left_padded_batch()
    B, P = prompt.shape
    G, block_length = 16, 8
    L = P + G
    model = confident_model()
    c = model.config
    position_bytes = 2 * c.n_layers * B * c.n_kv_heads * c.head_dim * 4  # keys and values, fp32, per position
    held = {}
    for cache in ("prefix", "dual"):
        stats = {}
        generate_fast(
            model, prompt, steps=8, gen_length=G, block_length=block_length, mask_id=MASK_ID,
            attention_mask=attention_mask, cache=cache, stats=stats,
        )
        held[cache] = stats["cache_bytes"]
    assert held["prefix"] == L * position_bytes  # views of the whole canvas's keys and values
    assert held["dual"] == (L + L - block_length) * position_bytes  # and the copy of all but the block


def test_a_model_returning_an_object_with_logits_works_without_a_cache():
    model = small_model()

    class HuggingFaceLike(nn.Module):
        def forward(self, ids, attention_mask=None):
            return types.SimpleNamespace(logits=model(ids, attention_mask=attention_mask))

    prompt, attention_mask = left_padded_batch()
    kwargs = dict(steps=4, gen_length=4, block_length=2, mask_id=MASK_ID, attention_mask=attention_mask)
    assert torch.equal(generate_fast(HuggingFaceLike(), prompt, **kwargs), generate(model, prompt, **kwargs))
    with pytest.raises(ValueError, match="position_ids, past_key_values"):
        generate_fast(HuggingFaceLike(), prompt, cache="prefix", **kwargs)


@pytest.mark.parametrize(
    "overrides, error, message",
    [
        (dict(cache="full"), ValueError, "cache must be one of"),
        (dict(threshold=0.0), ValueError, "threshold must be > 0"),
        (dict(threshold=0.9, remasking="random"), ValueError, "threshold needs remasking='low_confidence'"),
        (dict(steps=3, gen_length=8, block_length=4), ValueError, "multiple of the number of blocks"),
        (dict(forbid_eos=True), ValueError, "forbid_eos needs eos_id"),
        (dict(cfg_scale=1.0), TypeError, "cfg_scale"),  # guidance is not offered in fast mode
    ],
)
def test_bad_arguments_raise(overrides, error, message):
    kwargs = dict(steps=4, gen_length=8, block_length=8, mask_id=MASK_ID) | overrides
    with pytest.raises(error, match=message):
        generate_fast(small_model(), random_prompt(2, 4), **kwargs)
