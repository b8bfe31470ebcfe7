import math

import pytest
import torch

from trainer.diffusion import (
    forward_process,
    masked_diffusion_loss,
    pad_sft_batch,
    random_length_cut,
    sft_forward_process,
    sft_loss,
)

MASK_ID = 99


def generator(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def clean_ids(batch: int, length: int) -> torch.Tensor:
    return torch.randint(0, MASK_ID, (batch, length), generator=generator(123))  # never the mask id


def cross_entropy_by_hand(logits: list[float], target: int) -> float:
    return -(logits[target] - math.log(sum(math.exp(v) for v in logits)))


# --- forward process --------------------------------------------------------------------------------


def test_forward_process_shapes_and_only_the_mask_id_is_introduced():
    ids = clean_ids(4, 50)
    noisy, masked, p_mask = forward_process(ids, MASK_ID, generator=generator())
    assert noisy.shape == masked.shape == p_mask.shape == (4, 50)
    assert masked.dtype == torch.bool and p_mask.dtype == torch.float32
    assert torch.equal(masked, noisy == MASK_ID)
    assert torch.equal(noisy[~masked], ids[~masked])
    assert torch.equal(p_mask, p_mask[:, :1].expand(4, 50))  # one noise level per sequence


@pytest.mark.parametrize("eps", [1e-3, 0.5])
def test_p_mask_lies_in_eps_to_one(eps):
    _, _, p_mask = forward_process(clean_ids(20000, 1), MASK_ID, eps=eps, generator=generator())
    assert p_mask.min() >= eps and p_mask.max() < 1
    assert p_mask.mean().item() == pytest.approx((1 + eps) / 2, abs=0.01)  # t uniform on [0, 1)


def test_masking_rate_matches_p_mask():
    _, masked, p_mask = forward_process(clean_ids(8, 20000), MASK_ID, generator=generator(1))
    rate = masked.float().mean(dim=1)
    # binomial standard deviation <= 0.0035 per row at L = 20000: 0.02 is more than 5 of them
    assert (rate - p_mask[:, 0]).abs().max() < 0.02


def test_forward_process_is_deterministic_with_a_generator():
    ids = clean_ids(3, 40)
    first = forward_process(ids, MASK_ID, generator=generator(7))
    second = forward_process(ids, MASK_ID, generator=generator(7))
    other = forward_process(ids, MASK_ID, generator=generator(8))
    for a, b in zip(first, second):
        assert torch.equal(a, b)
    assert not torch.equal(first[1], other[1])


# --- pretraining loss -------------------------------------------------------------------------------


def test_masked_diffusion_loss_by_hand():
    # one sequence of 2 tokens over a vocabulary of 3; only the first is masked
    logits = torch.tensor([[[1.0, 2.0, 3.0], [0.0, 0.0, math.log(2.0)]]])
    targets = torch.tensor([[0, 2]])
    masked = torch.tensor([[True, False]])
    p_mask = torch.tensor([[0.25, 0.25]])
    expected = cross_entropy_by_hand([1.0, 2.0, 3.0], 0) / 0.25 / (1 * 2)
    assert masked_diffusion_loss(logits, targets, masked, p_mask).item() == pytest.approx(expected, rel=1e-6)


def test_masked_diffusion_loss_divides_by_all_tokens_not_masked_ones():
    logits = torch.tensor(
        [
            [[1.0, 2.0, 3.0], [0.0, 0.0, math.log(2.0)], [0.5, -1.0, 0.0]],
            [[0.0, 1.0, 0.0], [2.0, 0.0, 0.0], [0.0, 0.0, 0.0]],
        ]
    )
    targets = torch.tensor([[0, 2, 1], [1, 0, 2]])
    masked = torch.tensor([[True, True, False], [False, False, True]])
    p_mask = torch.tensor([[0.5] * 3, [0.1] * 3])
    expected = (
        cross_entropy_by_hand([1.0, 2.0, 3.0], 0) / 0.5
        + cross_entropy_by_hand([0.0, 0.0, math.log(2.0)], 2) / 0.5
        + cross_entropy_by_hand([0.0, 0.0, 0.0], 2) / 0.1
    ) / (2 * 3)  # b * L = 6, although only 3 tokens are masked
    assert masked_diffusion_loss(logits, targets, masked, p_mask).item() == pytest.approx(expected, rel=1e-6)


def test_masked_diffusion_loss_is_zero_without_masks_and_float32_for_bf16_logits():
    logits = torch.randn(2, 4, 5, generator=generator()).to(torch.bfloat16)
    targets = torch.zeros(2, 4, dtype=torch.long)
    p_mask = torch.full((2, 4), 0.5)
    assert masked_diffusion_loss(logits, targets, torch.zeros(2, 4, dtype=torch.bool), p_mask).item() == 0.0
    loss = masked_diffusion_loss(logits, targets, torch.ones(2, 4, dtype=torch.bool), p_mask)
    assert loss.dtype == torch.float32


# --- random length cut ------------------------------------------------------------------------------


def test_random_length_cut_never_at_prob_zero():
    ids = clean_ids(2, 16)
    g = generator()
    assert all(random_length_cut(ids, prob=0.0, generator=g) is ids for _ in range(1000))


def test_random_length_cut_happens_about_one_percent_of_the_time():
    ids = clean_ids(2, 16)
    g = generator(3)
    cuts = sum(random_length_cut(ids, generator=g) is not ids for _ in range(20000))
    assert 140 <= cuts <= 260  # mean 200, standard deviation 14


def test_random_length_cut_length_is_uniform_on_1_to_L():
    ids = clean_ids(3, 4)
    g = generator(4)
    lengths = [random_length_cut(ids, prob=1.0, generator=g).shape[1] for _ in range(4000)]
    counts = [lengths.count(n) for n in range(1, 5)]
    assert sum(counts) == 4000
    assert all(850 <= c <= 1150 for c in counts), counts  # 1000 each, standard deviation 27
    cut = random_length_cut(ids, prob=1.0, generator=generator(5))
    assert torch.equal(cut, ids[:, : cut.shape[1]])  # a prefix of every row, no padding


def test_random_length_cut_is_deterministic_with_a_generator():
    ids = clean_ids(2, 64)
    first = [random_length_cut(ids, prob=0.5, generator=g).shape[1] for g in [generator(9)] for _ in range(50)]
    second = [random_length_cut(ids, prob=0.5, generator=g).shape[1] for g in [generator(9)] for _ in range(50)]
    assert first == second


# --- SFT ----------------------------------------------------------------------------------------------


def test_sft_forward_process_never_masks_the_prompt():
    ids = clean_ids(4, 30)
    prompt_lengths = torch.tensor([0, 5, 12, 29])
    # eps close to 1: nearly every position is masked, unless it is prompt
    noisy, masked, p_mask = sft_forward_process(ids, prompt_lengths, MASK_ID, eps=0.999, generator=generator())
    for row, length in enumerate(prompt_lengths.tolist()):
        assert torch.equal(noisy[row, :length], ids[row, :length])
        assert not masked[row, :length].any()
        assert masked[row, length:].float().mean() > 0.9
    assert torch.equal(masked, noisy == MASK_ID)
    assert torch.equal(noisy[~masked], ids[~masked])


def test_sft_forward_process_matches_forward_process_on_the_response():
    ids = clean_ids(2, 20)
    prompt_lengths = torch.tensor([3, 7])
    noisy, masked, p_mask = sft_forward_process(ids, prompt_lengths, MASK_ID, generator=generator(2))
    plain_noisy, plain_masked, plain_p_mask = forward_process(ids, MASK_ID, generator=generator(2))
    assert torch.equal(p_mask, plain_p_mask)
    assert torch.equal(noisy[0, 3:], plain_noisy[0, 3:]) and torch.equal(masked[1, 7:], plain_masked[1, 7:])


def test_sft_loss_by_hand():
    # row 0: prompt of 1, answer of 2; row 1: prompt of 2, answer of 1 (an EOS that is padding)
    logits = torch.tensor(
        [
            [[9.0, 9.0, 9.0], [1.0, 2.0, 3.0], [0.0, 0.0, math.log(2.0)]],
            [[9.0, 9.0, 9.0], [9.0, 9.0, 9.0], [0.5, -1.0, 0.0]],
        ]
    )
    targets = torch.tensor([[1, 0, 2], [1, 1, 2]])
    masked = torch.tensor([[False, True, True], [False, False, True]])
    p_mask = torch.tensor([[0.5] * 3, [0.2] * 3])
    answer_lengths = torch.tensor([2, 1])
    row0 = (
        cross_entropy_by_hand([1.0, 2.0, 3.0], 0) / 0.5 + cross_entropy_by_hand([0.0, 0.0, math.log(2.0)], 2) / 0.5
    ) / 2
    row1 = (cross_entropy_by_hand([0.5, -1.0, 0.0], 2) / 0.2) / 1
    expected = (row0 + row1) / 2
    assert sft_loss(logits, targets, masked, p_mask, answer_lengths).item() == pytest.approx(expected, rel=1e-6)


def test_pad_sft_batch_pads_with_eos_and_counts_it_as_answer():
    eos = 2
    input_ids, prompt_lengths, answer_lengths = pad_sft_batch([[5, 6, 7], [8]], [[9, eos], [10, 11, 12, 13, eos]], eos)
    assert input_ids.tolist() == [[5, 6, 7, 9, eos, eos], [8, 10, 11, 12, 13, eos]]
    assert prompt_lengths.tolist() == [3, 1]
    assert answer_lengths.tolist() == [3, 5]  # row 0: 2 response tokens + 1 EOS of padding


def test_pad_sft_batch_rejects_bad_input():
    with pytest.raises(ValueError, match="2 prompts but 1 responses"):
        pad_sft_batch([[1], [2]], [[3]], 0)
    with pytest.raises(ValueError, match="empty batch"):
        pad_sft_batch([], [], 0)
    with pytest.raises(ValueError, match="response 1 is empty"):
        pad_sft_batch([[1], [2]], [[0], []], 0)
