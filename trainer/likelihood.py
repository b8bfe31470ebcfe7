"""Conditional log-likelihood of an answer given a prompt, for multiple-choice evaluation.

Follows docs/SPEC-diffusion.md "Conditional log-likelihood" (the LLaDA paper, section 2.4 and eq. (6), and its
reference `get_log_likelihood`). A masked diffusion model has no exact likelihood; it bounds it by

    -log p(r | p) <= E_l [ (L / l) * sum over masked i of -log p(r_i | p, r_l) ]

with L the answer length, l uniform on {1..L}, exactly l answer positions masked (chosen without
replacement) and the prompt never masked. The bound is estimated by Monte Carlo with stratified l.
The model is any module mapping ids (B, T) to logits (B, T, V), returned as a tensor or as an object
with `.logits`; it is called as it is (put it in eval mode first).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch
import torch.nn.functional as F

from trainer.sampler import model_logits


# Stratified noise levels, reference `forward_process` of get_log_likelihood.py: one uniform draw k
# spreads the b copies of a mini-batch evenly over {1..L},
#   l_j = round(linspace(k, k + (b - 1) L / b, b)) = round(k + j L / b),  wrapped into 1..L,
# which lowers the variance of the estimate. Halves round up, in exact integer arithmetic: then
# l_j = k + (a constant of j), wrapped, is uniform on {1..L} when k is, so the estimate is unbiased.
# (The reference's torch.round rounds halves to even, so round(k + 1/2) is k + 1 for odd k and k for
# even k: with L = 2 and b = 4 it draws l = 2 three times out of four. That is a bias, not a spec.)
def stratified_mask_counts(k: int, answer_len: int, batch_size: int) -> list[int]:
    """Numbers of answer positions to mask in each of batch_size copies, given k in {1..answer_len}."""
    if answer_len < 1 or batch_size < 1:
        raise ValueError(
            f"stratified_mask_counts: answer_len ({answer_len}) and batch_size ({batch_size}) must be >= 1"
        )
    if not 1 <= k <= answer_len:
        raise ValueError(f"stratified_mask_counts: k must lie in 1..{answer_len}, got {k}")
    # floor(k + j L / b + 1/2) with integers only: k + (2 j L + b) // (2 b)
    counts = [k + (2 * j * answer_len + batch_size) // (2 * batch_size) for j in range(batch_size)]
    return [(count - 1) % answer_len + 1 for count in counts]


def _guided_logits(
    model: torch.nn.Module, ids: torch.Tensor, prompt_len: int, cfg_scale: float, mask_id: int
) -> torch.Tensor:
    """Logits (B, T, V) of ids (B, T), with unsupervised classifier-free guidance as in sampling:
    the unconditional copy has every prompt position masked; logits = un + (w + 1) * (cond - un)."""
    if cfg_scale <= 0:
        return model_logits(model, ids, None)
    unconditional = ids.clone()
    unconditional[:, :prompt_len] = mask_id
    logits = model_logits(model, torch.cat([ids, unconditional], dim=0), None)  # (2B, T, V)
    cond_logits, un_logits = logits.chunk(2, dim=0)
    return un_logits + (cfg_scale + 1) * (cond_logits - un_logits)


def _model_device(model: torch.nn.Module, fallback: torch.device) -> torch.device:
    parameter = next(iter(model.parameters()), None) if isinstance(model, torch.nn.Module) else None
    return parameter.device if parameter is not None else fallback


def _as_ids(name: str, ids: torch.Tensor | Sequence[int]) -> torch.Tensor:
    ids = torch.as_tensor(ids, dtype=torch.long)
    if ids.dim() != 1:
        raise ValueError(f"log_likelihood: {name} must be a 1-D sequence of token ids, got shape {tuple(ids.shape)}")
    return ids


# Paper eq. (6) and the reference estimator: per mini-batch of b copies of prompt + answer, copy j masks
# l_j answer positions; each masked token's cross-entropy weighs L / l_j; the batch sum is divided by b;
# the batch estimates are averaged over mc_num / b batches.
@torch.no_grad()
def log_likelihood(
    model: torch.nn.Module,
    prompt: torch.Tensor | Sequence[int],
    answer: torch.Tensor | Sequence[int],
    *,
    mc_num: int = 128,
    batch_size: int = 16,
    cfg_scale: float = 0.0,
    mask_id: int,
    generator: torch.Generator | None = None,
) -> float:
    """Monte Carlo estimate of log p(answer | prompt) (minus the estimated negative log-likelihood bound).

    prompt, answer: 1-D token ids (the prompt may be empty, the answer may not).
    mc_num: masked copies in all, a multiple of batch_size (copies per model call).
    cfg_scale: unsupervised classifier-free guidance weight w (0 = off).
    generator: for the random draws, on the model's device; the same generator state gives the same value.
    A single-token answer is scored exactly with one model call (every l is 1), whatever mc_num is.
    """
    prompt, answer = _as_ids("prompt", prompt), _as_ids("answer", answer)
    answer_len = answer.numel()
    if answer_len == 0:
        raise ValueError("log_likelihood: answer is empty; score at least one token")
    if mc_num < 1 or batch_size < 1:
        raise ValueError(f"log_likelihood: mc_num ({mc_num}) and batch_size ({batch_size}) must be >= 1")
    if cfg_scale < 0:
        raise ValueError(f"log_likelihood: cfg_scale must be >= 0, got {cfg_scale}")
    if answer_len == 1:  # the spec's mc_num = 1: the only l is 1, the only masking is the whole answer
        mc_num = batch_size = 1
    elif mc_num % batch_size:
        raise ValueError(
            f"log_likelihood: mc_num ({mc_num}) must be a multiple of batch_size ({batch_size}); "
            f"for example mc_num={max(1, round(mc_num / batch_size)) * batch_size}"
        )

    device = _model_device(model, prompt.device)
    prompt_len = prompt.numel()
    prompt, answer = prompt.to(device), answer.to(device)
    sequence = torch.cat([prompt, answer])  # (T,) with T = P + L
    answer_ids = answer[None, :].expand(batch_size, answer_len)  # (b, L)

    batch_estimates = []
    for _ in range(mc_num // batch_size):
        k = int(torch.randint(1, answer_len + 1, (), device=device, generator=generator))
        counts = torch.tensor(stratified_mask_counts(k, answer_len, batch_size), device=device)  # (b,)
        # l_j answer positions per row, uniformly without replacement: the first l_j of a random order
        order = torch.rand((batch_size, answer_len), device=device, generator=generator).argsort(dim=1)
        first = torch.arange(answer_len, device=device)[None, :] < counts[:, None]  # (b, L) in order's terms
        masked = torch.zeros_like(first).scatter_(1, order, first)  # (b, L) exactly l_j True per row

        ids = sequence[None, :].repeat(batch_size, 1)  # (b, T)
        ids[:, prompt_len:] = torch.where(masked, mask_id, answer_ids)  # the prompt is never masked
        logits = _guided_logits(model, ids, prompt_len, cfg_scale, mask_id)[:, prompt_len:]  # (b, L, V)
        ce = F.cross_entropy(logits[masked].float(), answer_ids[masked], reduction="none")  # (n_masked,)
        weights = (answer_len / counts.double())[:, None].expand(batch_size, answer_len)[masked]  # L / l_j
        batch_estimates.append((ce.double() * weights).sum().item() / batch_size)
    return -sum(batch_estimates) / len(batch_estimates)


def multiple_choice(
    model: torch.nn.Module,
    prompt: torch.Tensor | Sequence[int],
    choices: Sequence[torch.Tensor | Sequence[int]],
    *,
    mc_num: int = 128,
    batch_size: int = 16,
    cfg_scale: float = 0.0,
    mask_id: int,
    seed: int = 0,
    normalize: bool = False,
) -> dict:
    """Score each choice as a continuation of prompt: {"scores": [log-likelihood per choice], "best": index}.

    Every choice is scored with a generator seeded with seed (common random numbers, so that the
    comparison is not decided by Monte Carlo noise). normalize: divide each score by the choice's length
    in tokens. Ties go to the lowest index.
    """
    if not choices:
        raise ValueError("multiple_choice: no choices to score")
    device = _model_device(model, torch.device("cpu"))
    scores = []
    for choice in choices:
        generator = torch.Generator(device=device).manual_seed(seed)
        score = log_likelihood(
            model, prompt, choice, mc_num=mc_num, batch_size=batch_size, cfg_scale=cfg_scale,
            mask_id=mask_id, generator=generator,
        )  # fmt: skip
        scores.append(score / len(choice) if normalize else score)
    return {"scores": scores, "best": max(range(len(scores)), key=scores.__getitem__)}


def evaluate_multiple_choice(model: torch.nn.Module, items: Iterable[dict], **kw) -> dict:
    """Accuracy of multiple_choice over items {"prompt", "choices", "answer" (index of the right choice)}.

    kw: passed to multiple_choice (mask_id, mc_num, batch_size, cfg_scale, seed, normalize).
    Returns {"accuracy", "n", "per_item": [{"scores", "best", "answer", "correct"}, ...]}.
    """
    per_item = []
    for index, item in enumerate(items):
        missing = {"prompt", "choices", "answer"} - set(item)
        if missing:
            raise ValueError(f"evaluate_multiple_choice: item {index} lacks {', '.join(sorted(missing))}")
        answer = item["answer"]
        if not 0 <= answer < len(item["choices"]):
            raise ValueError(
                f"evaluate_multiple_choice: item {index} has answer {answer}, "
                f"but only {len(item['choices'])} choices (answer is a 0-based index)"
            )
        result = multiple_choice(model, item["prompt"], item["choices"], **kw)
        per_item.append({**result, "answer": answer, "correct": result["best"] == answer})
    if not per_item:
        raise ValueError("evaluate_multiple_choice: no items to evaluate")
    return {
        "accuracy": sum(result["correct"] for result in per_item) / len(per_item),
        "n": len(per_item),
        "per_item": per_item,
    }
