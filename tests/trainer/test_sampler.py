import types

import pytest
import torch
from torch import nn

from trainer.model import MaskPredictor, ModelConfig
from trainer.sampler import add_gumbel_noise, generate, get_num_transfer_tokens

VOCAB = 64
MASK_ID = 63
PAD_ID = 0
EOS_ID = 1
EOT_ID = 2


def small_model(seed: int = 0) -> MaskPredictor:
    torch.manual_seed(seed)
    config = ModelConfig(
        n_layers=2, d_model=32, n_heads=4, n_kv_heads=2, mlp_hidden_size=64, vocab_size=VOCAB, init_std=0.1
    )
    return MaskPredictor(config).eval()


def random_prompt(batch: int, length: int, seed: int = 1) -> torch.Tensor:
    return torch.randint(3, MASK_ID, (batch, length), generator=torch.Generator().manual_seed(seed))


def left_padded_batch() -> tuple[torch.Tensor, torch.Tensor]:
    """Two prompts, of 4 and 7 tokens, left-padded to 7: (prompt, attention_mask)."""
    prompt = random_prompt(2, 7, seed=2)
    prompt[0, :3] = PAD_ID
    attention_mask = torch.ones(2, 7, dtype=torch.bool)
    attention_mask[0, :3] = False
    return prompt, attention_mask


def reference_generate(model, prompt, attention_mask, *, steps, gen_length, block_length, cfg_scale):
    """docs/SPEC-diffusion.md "Sampling" at temperature 0 with low-confidence remasking, written row by row
    with Python lists, independently of trainer.sampler. Only the model call is batched (as in the
    reference code), so that both implementations see bit-identical logits."""
    batch, prompt_length = prompt.shape
    canvas = [row + [MASK_ID] * gen_length for row in prompt.tolist()]
    in_prompt = [[token != MASK_ID for token in row] for row in canvas]
    mask = None
    if attention_mask is not None:
        mask = torch.tensor([row + [True] * gen_length for row in attention_mask.tolist()])
        if cfg_scale > 0:
            mask = torch.cat([mask, mask])
    num_blocks = gen_length // block_length
    steps_per_block = steps // num_blocks

    def logits_for(rows):
        ids = torch.tensor(rows)
        return model(ids) if mask is None else model(ids, attention_mask=mask)

    for block in range(num_blocks):
        start = prompt_length + block * block_length
        end = start + block_length
        schedule = []
        for row in canvas:
            m = row[start:end].count(MASK_ID)
            base, extra = divmod(m, steps_per_block)
            schedule.append([base + (1 if k < extra else 0) for k in range(steps_per_block)])
        for k in range(steps_per_block):
            if cfg_scale > 0:
                unconditional = [
                    [MASK_ID if in_prompt[r][i] else token for i, token in enumerate(row)]
                    for r, row in enumerate(canvas)
                ]
                both = logits_for(canvas + unconditional)
                conditional_logits, unconditional_logits = both[:batch], both[batch:]
            else:
                conditional_logits = logits_for(canvas)
            for r in range(batch):
                row_logits = conditional_logits[r]
                if cfg_scale > 0:
                    un = unconditional_logits[r]
                    row_logits = un + (cfg_scale + 1) * (row_logits - un)
                candidates = []  # (confidence, position, token) over the still-masked positions of the block
                for position in range(start, end):
                    if canvas[r][position] != MASK_ID:
                        continue
                    values = row_logits[position].double()
                    scores = values.tolist()
                    token = scores.index(max(scores))
                    exp = torch.exp(values - values.max())
                    candidates.append(((exp[token] / exp.sum()).item(), position, token))
                candidates.sort(key=lambda c: -c[0])
                for _, position, token in candidates[: schedule[r][k]]:
                    canvas[r][position] = token
    return torch.tensor(canvas)


CASES = {
    "one block": dict(batch=1, steps=8, gen_length=8, block_length=8, cfg_scale=0.0),
    "three blocks, uneven steps": dict(batch=1, steps=9, gen_length=12, block_length=4, cfg_scale=0.0),
    "more steps than tokens": dict(batch=1, steps=6, gen_length=4, block_length=4, cfg_scale=0.0),
    "left padding": dict(batch=2, steps=6, gen_length=6, block_length=3, cfg_scale=0.0),
    "cfg with left padding": dict(batch=2, steps=4, gen_length=8, block_length=4, cfg_scale=1.5),
    "cfg": dict(batch=1, steps=5, gen_length=5, block_length=5, cfg_scale=0.5),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_matches_the_reference_algorithm_at_temperature_zero(case):
    case = dict(case)
    model = small_model()
    if case.pop("batch") == 2:
        prompt, attention_mask = left_padded_batch()
    else:
        prompt, attention_mask = random_prompt(1, 5), None
    expected = reference_generate(model, prompt, attention_mask, **case)
    actual = generate(model, prompt, mask_id=MASK_ID, attention_mask=attention_mask, **case)
    assert actual.tolist() == expected.tolist()
    assert not (actual == MASK_ID).any()
    assert torch.equal(actual[:, : prompt.shape[1]], prompt)
    assert len(set(actual[:, prompt.shape[1] :].flatten().tolist())) > 1  # a real test: not one token everywhere


def test_accepts_a_model_returning_an_object_with_logits():
    model = small_model()

    class HuggingFaceLike(nn.Module):
        def forward(self, ids, attention_mask=None):
            return types.SimpleNamespace(logits=model(ids, attention_mask=attention_mask))

    prompt, attention_mask = left_padded_batch()
    kwargs = dict(steps=4, gen_length=4, block_length=2, mask_id=MASK_ID, attention_mask=attention_mask)
    assert torch.equal(generate(HuggingFaceLike(), prompt, **kwargs), generate(model, prompt, **kwargs))


def test_num_transfer_tokens_spreads_the_remainder_over_the_first_steps():
    mask_index = torch.tensor([[True] * 10, [True] * 3 + [False] * 7])
    assert get_num_transfer_tokens(mask_index, 4).tolist() == [[3, 3, 2, 2], [1, 1, 1, 0]]


def test_gumbel_noise_is_the_identity_at_temperature_zero():
    logits = torch.randn(2, 3, 4)
    assert add_gumbel_noise(logits, 0.0) is logits
    noisy = add_gumbel_noise(logits, 1.0)
    assert noisy.dtype == torch.float64 and noisy.shape == logits.shape


@pytest.mark.parametrize("remasking, temperature", [("random", 0.0), ("low_confidence", 1.0), ("random", 0.7)])
def test_random_modes_are_deterministic_under_manual_seed(remasking, temperature):
    model = small_model()
    prompt = random_prompt(2, 4)
    kwargs = dict(steps=4, gen_length=8, block_length=4, mask_id=MASK_ID, remasking=remasking, temperature=temperature)
    torch.manual_seed(11)
    first = generate(model, prompt, **kwargs)
    torch.manual_seed(11)
    second = generate(model, prompt, **kwargs)
    assert torch.equal(first, second)
    assert not (first == MASK_ID).any()
    assert torch.equal(first[:, :4], prompt)


class Biased(nn.Module):
    """A model plus a fixed logit bias per position (L, V); records every canvas it is called on."""

    def __init__(self, model: nn.Module, bias: torch.Tensor):
        super().__init__()
        self.model, self.bias, self.calls = model, bias, []

    def forward(self, ids, attention_mask=None):
        self.calls.append(ids.clone())
        return self.model(ids, attention_mask=attention_mask) + self.bias[: ids.shape[1]]


def test_forbid_eos_never_emits_eos():
    bias = torch.zeros(12, VOCAB)
    bias[:, EOS_ID] = 20.0  # EOS everywhere unless forbidden
    model = Biased(small_model(), bias)
    prompt = random_prompt(2, 4)
    kwargs = dict(steps=8, gen_length=8, block_length=8, mask_id=MASK_ID, eos_id=EOS_ID)
    assert (generate(model, prompt, **kwargs)[:, 4:] == EOS_ID).all()
    for remasking in ("low_confidence", "random"):
        out = generate(model, prompt, forbid_eos=True, remasking=remasking, **kwargs)
        assert not (out == EOS_ID).any()
        assert not (out == MASK_ID).any()


@pytest.mark.parametrize("end_id", [EOS_ID, EOT_ID])
def test_eos_last_commits_end_tokens_after_the_rest_of_the_block(end_id):
    prompt_length, gen_length, block_length = 3, 8, 4
    ends = {3, 6, 7, 9}  # canvas positions whose candidate is end_id: (near) certain, so normally first
    bias = torch.zeros(prompt_length + gen_length, VOCAB)
    bias[:, [EOS_ID, EOT_ID]] = -20.0
    bias[sorted(ends), end_id] = 40.0
    model = Biased(small_model(), bias)
    prompt = random_prompt(1, prompt_length)
    kwargs = dict(steps=gen_length, gen_length=gen_length, block_length=block_length, mask_id=MASK_ID)

    def commit_order(**extra):
        model.calls.clear()
        out = generate(model, prompt, **kwargs, **extra)
        canvases = model.calls + [out]
        order = []
        for before, after in zip(canvases, canvases[1:]):
            order += torch.nonzero((before[0] == MASK_ID) & (after[0] != MASK_ID)).flatten().tolist()
        assert sorted(order) == list(range(prompt_length, prompt_length + gen_length))
        assert {i for i in order if out[0, i] == end_id} == ends
        return order

    plain = commit_order(eos_id=EOS_ID, eot_id=EOT_ID)
    assert plain[0] in ends  # the most confident position goes first
    last = commit_order(eos_id=EOS_ID, eot_id=EOT_ID, eos_last=True)
    for block_start in range(prompt_length, prompt_length + gen_length, block_length):
        block_order = [i for i in last if block_start <= i < block_start + block_length]
        block_ends = ends & set(block_order)
        assert set(block_order[len(block_order) - len(block_ends) :]) == block_ends


def test_eos_last_finishes_a_block_of_end_tokens_only():
    bias = torch.zeros(10, VOCAB)
    bias[:, EOS_ID] = 40.0
    model = Biased(small_model(), bias)
    out = generate(
        model, random_prompt(2, 2), steps=4, gen_length=8, block_length=8, mask_id=MASK_ID, eos_id=EOS_ID, eos_last=True
    )
    assert (out[:, 2:] == EOS_ID).all()


@pytest.mark.parametrize(
    "overrides, message",
    [
        (dict(gen_length=10, block_length=4), "multiple of block_length"),
        (dict(steps=3, gen_length=8, block_length=4), "multiple of the number of blocks"),
        (dict(steps=0), "steps must be positive"),
        (dict(remasking="entropy"), "remasking must be one of"),
        (dict(temperature=-1.0), "must be >= 0"),
        (dict(forbid_eos=True), "forbid_eos needs eos_id"),
        (dict(eos_last=True), "eos_last needs eos_id or eot_id"),
        (dict(attention_mask=torch.ones(1, 3, dtype=torch.bool)), "attention_mask shape"),
    ],
)
def test_bad_arguments_raise(overrides, message):
    kwargs = dict(steps=4, gen_length=8, block_length=8, mask_id=MASK_ID) | overrides
    with pytest.raises(ValueError, match=message):
        generate(small_model(), random_prompt(2, 4), **kwargs)
