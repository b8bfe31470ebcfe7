import itertools
import math
import types

import pytest
import torch

from trainer.likelihood import evaluate_multiple_choice, log_likelihood, multiple_choice, stratified_mask_counts
from trainer.model import MaskPredictor, ModelConfig

VOCAB = 8
MASK_ID = 7


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """These tensors are tiny: on a busy 2-core machine, intra-op threads spin-wait for each other and make
    every cross-entropy call ~10 ms instead of ~10 us. One thread for this module, restored afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def small_model(seed: int = 0) -> MaskPredictor:
    """Large init_std so that the predictions depend strongly on which tokens are masked."""
    torch.manual_seed(seed)
    config = ModelConfig(
        n_layers=2, d_model=16, n_heads=2, n_kv_heads=1, mlp_hidden_size=32, vocab_size=VOCAB, init_std=0.5
    )
    return MaskPredictor(config).eval()


def neighbour_model(seed: int = 0, scale: float = 1.0):
    """A cheap bidirectional model: the logits at i depend on the tokens at i - 1, i and i + 1 (the mask
    id included) and on i, so each prediction depends on which neighbours are masked."""
    g = torch.Generator().manual_seed(seed)
    left, centre, right = (scale * torch.randn(VOCAB, VOCAB, generator=g) for _ in range(3))
    position = scale * torch.randn(16, VOCAB, generator=g)

    def model(ids):  # (B, T) -> (B, T, V)
        before = torch.cat([torch.full_like(ids[:, :1], MASK_ID), ids[:, :-1]], dim=1)
        after = torch.cat([ids[:, 1:], torch.full_like(ids[:, :1], MASK_ID)], dim=1)
        return left[before] + centre[ids] + right[after] + position[: ids.shape[1]]

    return model


def fixed_logits_model(row: list[float]):
    """A model (a plain function) that predicts the same distribution at every position, whatever it sees."""

    def model(ids):
        return torch.tensor(row).expand(*ids.shape, len(row))

    return model


def generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# --- stratified mask counts: l_j = round(k + j L / b) (halves up), wrapped into 1..L ---


@pytest.mark.parametrize(
    ("k", "answer_len", "batch_size", "expected"),
    [
        (3, 5, 4, [3, 4, 1, 2]),  # 3, 4.25, 5.5, 6.75 -> 3, 4, 6, 7 -> wrapped
        (4, 4, 8, [4, 1, 1, 2, 2, 3, 3, 4]),  # 4, 4.5, 5, ..., 7.5 -> 4, 5, 5, 6, 6, 7, 7, 8 -> wrapped
        (1, 10, 4, [1, 4, 6, 9]),  # 1, 3.5, 6, 8.5
        (1, 2, 4, [1, 2, 2, 1]),  # 1, 1.5, 2, 2.5 -> 1, 2, 2, 3 -> wrapped
        (2, 3, 1, [2]),
        (1, 1, 16, [1] * 16),
        (5, 100, 2, [5, 55]),
    ],
)
def test_stratified_mask_counts_by_hand(k, answer_len, batch_size, expected):
    assert stratified_mask_counts(k, answer_len, batch_size) == expected


def test_stratified_mask_counts_are_uniform_over_k():
    """For every copy j, k uniform on 1..L gives l_j uniform on 1..L: the estimator's l stays uniform.
    (Rounding halves to even, as torch.round does, breaks this: L = 2, b = 4 would draw l = 2 six times
    out of eight.)"""
    for answer_len, batch_size in itertools.product(range(1, 13), (1, 2, 3, 4, 5, 8, 16)):
        table = [stratified_mask_counts(k, answer_len, batch_size) for k in range(1, answer_len + 1)]
        for j in range(batch_size):
            assert sorted(row[j] for row in table) == list(range(1, answer_len + 1)), (answer_len, batch_size, j)


def test_stratified_mask_counts_rejects_bad_arguments():
    with pytest.raises(ValueError, match="k must lie in 1..3"):
        stratified_mask_counts(4, 3, 2)
    with pytest.raises(ValueError, match="answer_len"):
        stratified_mask_counts(1, 0, 2)


# --- hand-computed values with fixed logits ---


def test_fixed_logits_give_a_deterministic_hand_computed_value():
    # p = (1, 2, 3, 4) / 10 at every position; the answer is token 3 three times, so each masked token
    # costs -log 0.4 and a copy masking l of 3 tokens contributes (3 / l) * l * -log 0.4, whatever l is.
    model = fixed_logits_model([math.log(1), math.log(2), math.log(3), math.log(4)])
    for seed in range(3):
        value = log_likelihood(
            model, [0, 1], [3, 3, 3], mc_num=32, batch_size=8, mask_id=MASK_ID, generator=generator(seed)
        )
        assert value == pytest.approx(3 * math.log(0.4), rel=1e-6)


def test_model_output_with_logits_attribute():
    def model(ids):
        return types.SimpleNamespace(logits=torch.zeros(*ids.shape, VOCAB))

    value = log_likelihood(model, torch.tensor([1, 2]), torch.tensor([3, 4]), mc_num=4, batch_size=2, mask_id=MASK_ID)
    assert value == pytest.approx(2 * math.log(1 / VOCAB), rel=1e-6)


def test_single_token_answer_is_exact_with_one_call():
    calls = []
    logits = torch.tensor([0.5, -1.0, 2.0, 0.0, 0.3, 0.1, -0.2, 1.0])

    def model(ids):
        calls.append(ids.clone())
        return logits.expand(*ids.shape, VOCAB)

    # the spec's mc_num = 1 for single-token answers is accepted with any batch_size
    value = log_likelihood(model, [1, 2, 3], [4], mc_num=1, batch_size=16, mask_id=MASK_ID)
    assert value == pytest.approx(torch.log_softmax(logits, dim=-1)[4].item(), rel=1e-6)
    assert len(calls) == 1 and calls[0].tolist() == [[1, 2, 3, MASK_ID]]
    calls.clear()
    assert log_likelihood(model, [1, 2, 3], [4], mask_id=MASK_ID) == value  # mc_num = 128: still one pass
    assert len(calls) == 1


def test_cfg_combines_conditional_and_unconditional_logits_by_hand():
    conditional = torch.tensor([1.0, 0.0, 2.0, 0.0, 0.0, 0.0, 0.0, 0.0])
    unconditional = torch.tensor([0.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0])
    seen = []

    def model(ids):
        seen.append(ids.clone())
        prompt_masked = (ids[:, :2] == MASK_ID).all(dim=1)  # (B,)
        return torch.where(prompt_masked[:, None, None], unconditional, conditional).expand(*ids.shape, VOCAB)

    w = 0.5
    value = log_likelihood(model, [1, 2], [2], cfg_scale=w, mask_id=MASK_ID)
    guided = unconditional + (w + 1) * (conditional - unconditional)  # (0 1.5 2.5 0 ...) for tokens 0..2
    assert value == pytest.approx(torch.log_softmax(guided, dim=-1)[2].item(), rel=1e-6)
    assert seen[0].tolist() == [[1, 2, MASK_ID], [MASK_ID, MASK_ID, MASK_ID]]


# --- the masking: prompt never masked, exactly l_j answer tokens per copy ---


@pytest.mark.parametrize("cfg_scale", [0.0, 1.5])
def test_prompt_is_never_masked_and_copies_are_stratified(cfg_scale):
    inner = small_model()
    prompt, answer = [1, 2, 3, 4], [5, 0, 6, 1, 2]
    batch_size = 4
    calls = []

    def model(ids):
        calls.append(ids.clone())
        if cfg_scale > 0:
            conditional, unconditional = ids.chunk(2)
            assert (unconditional[:, : len(prompt)] == MASK_ID).all()  # the unconditional copy: all masked
            assert torch.equal(unconditional[:, len(prompt) :], conditional[:, len(prompt) :])
        else:
            conditional = ids
        assert conditional.shape == (batch_size, len(prompt) + len(answer))
        assert (conditional[:, : len(prompt)] == torch.tensor(prompt)).all()  # never masked
        kept = conditional[:, len(prompt) :] != MASK_ID
        assert (conditional[:, len(prompt) :][kept] == torch.tensor(answer).expand(batch_size, -1)[kept]).all()
        counts = sorted((~kept).sum(dim=1).tolist())
        strata = [sorted(stratified_mask_counts(k, len(answer), batch_size)) for k in range(1, len(answer) + 1)]
        assert counts in strata
        return inner(ids)

    log_likelihood(model, prompt, answer, mc_num=40, batch_size=batch_size, cfg_scale=cfg_scale, mask_id=MASK_ID,
                   generator=generator(0))  # fmt: skip
    assert len(calls) == 10


# --- convergence to the exact masked bound, by brute force over every masking ---


def exact_bound_per_l(model, prompt: list[int], answer: list[int]) -> list[float]:
    """E [ (L/l) * sum over masked i of -log p(r_i | p, r_l) ] for each l in 1..L, every l-subset of the
    answer equally likely: enumerated, one model call per subset, independently of trainer.likelihood."""
    answer_len = len(answer)
    per_l = []
    for count in range(1, answer_len + 1):
        subsets = list(itertools.combinations(range(answer_len), count))
        total = 0.0
        for subset in subsets:
            noisy = [MASK_ID if i in subset else token for i, token in enumerate(answer)]
            log_probs = torch.log_softmax(model(torch.tensor([prompt + noisy]))[0].double(), dim=-1)  # (T, V)
            total += (answer_len / count) * -sum(log_probs[len(prompt) + i, answer[i]].item() for i in subset)
        per_l.append(total / len(subsets))
    return per_l


@pytest.mark.parametrize(
    ("answer", "batch_size", "tolerance"),
    # about 4.5 standard errors of the estimate at this mc_num (measured over 40 seeds)
    [([3, 5], 4, 0.002), ([3, 5, 0], 3, 0.1), ([3, 5, 0], 8, 0.05)],
)
def test_monte_carlo_estimate_converges_to_the_exact_bound(answer, batch_size, tolerance):
    model = neighbour_model(scale=0.5)
    prompt = [1, 2]
    per_l = exact_bound_per_l(model, prompt, answer)
    exact = sum(per_l) / len(per_l)  # l uniform on 1..L
    estimate = log_likelihood(model, prompt, answer, mc_num=batch_size * 4000, batch_size=batch_size,
                              mask_id=MASK_ID, generator=generator(0))  # fmt: skip
    assert estimate == pytest.approx(-exact, abs=tolerance)
    if len(answer) == 2:
        # the test has the power to see a biased stratification: with halves rounded to even, L = 2 and
        # b = 4 draw l = 2 three times out of four, which moves the mean by (E_2 - E_1) / 4
        assert abs(per_l[1] - per_l[0]) / 4 > 10 * tolerance


def test_generator_makes_the_estimate_reproducible():
    model = small_model()
    kw = {"mc_num": 32, "batch_size": 8, "mask_id": MASK_ID}
    first = log_likelihood(model, [1, 2], [3, 4, 5, 6], generator=generator(7), **kw)
    again = log_likelihood(model, [1, 2], [3, 4, 5, 6], generator=generator(7), **kw)
    other = log_likelihood(model, [1, 2], [3, 4, 5, 6], generator=generator(8), **kw)
    assert first == again
    assert first != other


def test_empty_prompt_scores_the_answer_alone():
    model = fixed_logits_model([0.0] * VOCAB)
    for cfg_scale in (0.0, 2.0):  # with no prompt, the unconditional copy is the conditional one
        value = log_likelihood(model, [], [3, 4, 5], mc_num=8, batch_size=4, cfg_scale=cfg_scale, mask_id=MASK_ID)
        assert value == pytest.approx(3 * math.log(1 / VOCAB), rel=1e-6)


def test_bad_arguments_are_rejected():
    model = fixed_logits_model([0.0] * VOCAB)
    with pytest.raises(ValueError, match="multiple of batch_size"):
        log_likelihood(model, [1], [2, 3], mc_num=20, batch_size=16, mask_id=MASK_ID)
    with pytest.raises(ValueError, match="answer is empty"):
        log_likelihood(model, [1], [], mask_id=MASK_ID)
    with pytest.raises(ValueError, match="1-D"):
        log_likelihood(model, [[1]], [2], mask_id=MASK_ID)


# --- multiple choice ---


def favouring_model():
    """p(5) = 0.5, p(3) = 0.2 at every position (the rest share 0.3)."""
    probs = [0.05, 0.05, 0.05, 0.2, 0.05, 0.5, 0.05, 0.05]
    return fixed_logits_model([math.log(p) for p in probs])


def test_multiple_choice_picks_the_favoured_choice():
    choices = [[3, 3], [5, 5], [4, 4]]
    result = multiple_choice(favouring_model(), [1, 2], choices, mc_num=8, batch_size=4, mask_id=MASK_ID)
    assert result["best"] == 1
    assert result["scores"] == pytest.approx([2 * math.log(0.2), 2 * math.log(0.5), 2 * math.log(0.05)], rel=1e-6)


def test_multiple_choice_normalize_scores_per_token():
    choices = [[5, 5, 5, 5], [3]]  # 4 log 0.5 = -2.77 < log 0.2 = -1.61, but per token -0.69 > -1.61
    kw = {"mc_num": 8, "batch_size": 4, "mask_id": MASK_ID}
    assert multiple_choice(favouring_model(), [1], choices, **kw)["best"] == 1
    normalized = multiple_choice(favouring_model(), [1], choices, normalize=True, **kw)
    assert normalized["best"] == 0
    assert normalized["scores"] == pytest.approx([math.log(0.5), math.log(0.2)], rel=1e-6)


def test_multiple_choice_uses_the_same_seed_for_every_choice():
    model = small_model()
    result = multiple_choice(model, [1, 2], [[3, 4, 5], [3, 4, 5]], mc_num=16, batch_size=4, mask_id=MASK_ID, seed=3)
    assert result["scores"][0] == result["scores"][1]
    assert result["best"] == 0  # ties go to the lowest index
    alone = log_likelihood(model, [1, 2], [3, 4, 5], mc_num=16, batch_size=4, mask_id=MASK_ID, generator=generator(3))
    assert result["scores"][0] == alone


def test_evaluate_multiple_choice_accuracy():
    items = [
        {"prompt": [1], "choices": [[3], [5]], "answer": 1},  # right: 5 is favoured
        {"prompt": [2], "choices": [[5, 5], [3, 3]], "answer": 1},  # wrong
        {"prompt": [1, 2], "choices": [[4], [3], [5]], "answer": 2},  # right
    ]
    result = evaluate_multiple_choice(favouring_model(), iter(items), mc_num=4, batch_size=2, mask_id=MASK_ID)
    assert result["n"] == 3
    assert result["accuracy"] == pytest.approx(2 / 3)
    assert [item["correct"] for item in result["per_item"]] == [True, False, True]
    assert [item["best"] for item in result["per_item"]] == [1, 0, 2]


def test_evaluate_multiple_choice_rejects_bad_items():
    with pytest.raises(ValueError, match="item 0 has answer 2, but only 2 choices"):
        items = [{"prompt": [1], "choices": [[3], [5]], "answer": 2}]
        evaluate_multiple_choice(favouring_model(), items, mask_id=MASK_ID)
    with pytest.raises(ValueError, match="item 0 lacks answer"):
        evaluate_multiple_choice(favouring_model(), [{"prompt": [1], "choices": [[3]]}], mask_id=MASK_ID)
    with pytest.raises(ValueError, match="no items"):
        evaluate_multiple_choice(favouring_model(), [], mask_id=MASK_ID)
