"""Both models asked both ways, at temperature 0: decoding by the project's sampler, exact match on the names."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from experiments.reversal.data import (
    FORWARD_PROMPT_LENGTH,
    MASK_ID,
    NAME_LENGTH,
    OBJECT,
    SUBJECT,
    ar_reverse_prompts,
    forward_prompts,
    reverse_canvases,
)
from trainer import sampler


def exact_match(predicted: torch.Tensor, expected: torch.Tensor) -> float:
    """Fraction of rows of predicted (N, k) equal to expected (N, k) in every position."""
    if predicted.shape != expected.shape:
        raise ValueError(f"exact_match: predicted {tuple(predicted.shape)} vs expected {tuple(expected.shape)}")
    return (predicted == expected).all(dim=1).float().mean().item()


@torch.no_grad()
def infill(model, canvas: torch.Tensor, *, steps: int, mask_id: int = MASK_ID) -> torch.Tensor:
    """Fill the mask ids of canvas (B, L), wherever they are, in `steps` model calls: (B, L).

    docs/SPEC-diffusion.md "Sampling" at temperature 0 with low-confidence remasking, on one block that is the
    whole canvas, by the sampler's own steps: each commits the most confident candidates at masked positions,
    on the schedule of `get_num_transfer_tokens`. With the masks at the end it equals `generate` with one block.
    """
    x = canvas.clone()
    num_transfer = sampler.get_num_transfer_tokens(x == mask_id, steps)  # (B, steps)
    for step in range(steps):
        mask_index = x == mask_id  # (B, L)
        x0, confidence, _ = sampler.candidates(model(x), 0.0, "low_confidence", None, [])  # (B, L) each
        confidence = torch.where(mask_index, confidence, float("-inf"))  # decoded positions stay
        x = torch.where(sampler.commit_most_confident(confidence, num_transfer[:, step]), x0, x)
    return x


@torch.no_grad()
def greedy(model, prompt: torch.Tensor, new_tokens: int) -> torch.Tensor:
    """Autoregressive greedy decoding: prompt (B, P) -> (B, P + new_tokens)."""
    x = prompt
    for _ in range(new_tokens):
        x = torch.cat([x, model(x)[:, -1].argmax(dim=-1, keepdim=True)], dim=1)
    return x


@torch.no_grad()
def rank_subjects(model, facts: torch.Tensor, chunk: int = 8192) -> torch.Tensor:
    """Per fact, the subject A' (among all N) maximising log p(`<bos> A' 's parent is B . <eos>`): (N, 2)."""
    n = facts.shape[0]
    subjects = facts[:, SUBJECT]  # (N, 2)
    sentences = facts[:, None, :].repeat(1, n, 1)  # (N queries, N candidate subjects, L)
    sentences[:, :, SUBJECT] = subjects[None, :, :]
    flat = sentences.view(-1, facts.shape[1])
    scores = []
    for start in range(0, flat.shape[0], chunk):
        ids = flat[start : start + chunk]
        logp = F.log_softmax(model(ids[:, :-1]).float(), dim=-1)  # (b, L - 1, V)
        scores.append(logp.gather(-1, ids[:, 1:, None]).squeeze(-1).sum(dim=1))  # (b,)
    best = torch.cat(scores).view(n, n).argmax(dim=1)  # (N,)
    return subjects[best]


def evaluate_diffusion(model, facts: torch.Tensor) -> dict[str, float]:
    """Forward: `generate` completes the prompt; reverse: `infill` the subject. Accuracy of each."""
    model.eval()
    answer = facts.shape[1] - FORWARD_PROMPT_LENGTH  # B1 B2 . <eos> and the padding, one token per step
    completed = sampler.generate(
        model, forward_prompts(facts), steps=answer, gen_length=answer, block_length=answer, mask_id=MASK_ID
    )
    filled = infill(model, reverse_canvases(facts), steps=NAME_LENGTH)
    model.train()
    return {
        "forward": exact_match(completed[:, OBJECT], facts[:, OBJECT]),
        "reverse": exact_match(filled[:, SUBJECT], facts[:, SUBJECT]),
    }


def evaluate_autoregressive(model, facts: torch.Tensor, *, rank_reverse: bool = False) -> dict[str, float]:
    """Forward and reverse by greedy decoding; with rank_reverse, reverse by ranking every subject too."""
    model.eval()
    completed = greedy(model, forward_prompts(facts), NAME_LENGTH)
    started = greedy(model, ar_reverse_prompts(facts), NAME_LENGTH)
    result = {
        "forward": exact_match(completed[:, OBJECT], facts[:, OBJECT]),
        "reverse": exact_match(started[:, SUBJECT], facts[:, SUBJECT]),
    }
    if rank_reverse:
        result["reverse_by_ranking"] = exact_match(rank_subjects(model, facts), facts[:, SUBJECT])
    model.train()
    return result
