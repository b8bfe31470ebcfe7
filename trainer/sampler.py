"""The reverse process: semi-autoregressive masked diffusion sampling with low-confidence remasking.

Follows docs/SPEC-diffusion.md "Sampling" (the LLaDA paper, section 2.4, Algorithms 4 and 5, appendix B.4, and
its reference `generate`), token for token at temperature 0. The model is any module mapping ids (B, L)
to logits (B, L, V), returned as a tensor or as an object with `.logits` (a Hugging Face LLaDA model).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from trainer.config import REMASKING


def get_num_transfer_tokens(mask_index: torch.Tensor, steps: int) -> torch.Tensor:
    """Tokens to commit at each step of a block: (B, steps) from its masked positions (B, block_length).

    m masked positions over s steps: m // s per step, plus one for each of the first m % s steps, so the
    block is fully decoded after its last step.
    """
    masked_count = mask_index.sum(dim=1, keepdim=True)  # (B, 1)
    step_index = torch.arange(steps, device=mask_index.device)[None, :]  # (1, steps)
    return masked_count // steps + (step_index < masked_count % steps).long()  # (B, steps)


def add_gumbel_noise(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """Sampling by argmax of exp(logits) / (-log u)^T, u ~ U(0, 1): Gumbel-max, in float64 because low
    precision noise degrades the samples (reference code). At temperature 0 the logits are returned as is."""
    if temperature == 0:
        return logits
    logits = logits.to(torch.float64)
    noise = torch.rand_like(logits)  # float64
    return logits.exp() / (-torch.log(noise)) ** temperature


def model_logits(model: torch.nn.Module, ids: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
    """The (B, L, V) logits of any module that returns them, or an object with `.logits`."""
    output = model(ids) if attention_mask is None else model(ids, attention_mask=attention_mask)
    return getattr(output, "logits", output)  # (B, L, V)


def check_arguments(
    caller: str,
    prompt: torch.Tensor,
    *,
    steps: int,
    gen_length: int,
    block_length: int,
    temperature: float,
    remasking: str,
    attention_mask: torch.Tensor | None,
    eos_id: int | None,
    eot_id: int | None,
    forbid_eos: bool,
    eos_last: bool,
) -> int:
    """Raise ValueError, naming `caller`, on arguments `generate` and `generate_fast` cannot sample with
    (SPEC "Sampling": blocks of equal length, the same number of steps each); return the number of blocks."""
    if prompt.dim() != 2:
        raise ValueError(f"{caller}: prompt must be (batch, length) token ids, got shape {tuple(prompt.shape)}")
    for name, value in (("steps", steps), ("gen_length", gen_length), ("block_length", block_length)):
        if value <= 0:
            raise ValueError(f"{caller}: {name} must be positive, got {value}")
    if gen_length % block_length:
        raise ValueError(f"{caller}: gen_length ({gen_length}) must be a multiple of block_length ({block_length})")
    num_blocks = gen_length // block_length
    if steps % num_blocks:
        raise ValueError(
            f"{caller}: steps ({steps}) must be a multiple of the number of blocks "
            f"(gen_length / block_length = {num_blocks}), so that every block gets the same number of steps"
        )
    if remasking not in REMASKING:
        raise ValueError(f"{caller}: remasking must be one of {', '.join(REMASKING)}, got {remasking!r}")
    if temperature < 0:
        raise ValueError(f"{caller}: temperature must be >= 0, got {temperature}")
    if forbid_eos and eos_id is None:
        raise ValueError(f"{caller}: forbid_eos needs eos_id")
    if eos_last and eos_id is None and eot_id is None:
        raise ValueError(f"{caller}: eos_last needs eos_id or eot_id")
    if attention_mask is not None and attention_mask.shape != prompt.shape:
        raise ValueError(
            f"{caller}: attention_mask shape {tuple(attention_mask.shape)} differs from prompt {tuple(prompt.shape)}"
        )
    return num_blocks


@torch.no_grad()
def generate(
    model: torch.nn.Module,
    prompt: torch.Tensor,
    *,
    steps: int,
    gen_length: int,
    block_length: int,
    temperature: float = 0.0,
    cfg_scale: float = 0.0,
    remasking: str = "low_confidence",
    mask_id: int,
    attention_mask: torch.Tensor | None = None,
    eos_id: int | None = None,
    eot_id: int | None = None,
    forbid_eos: bool = False,
    eos_last: bool = False,
) -> torch.Tensor:
    """Complete prompt (B, P) (left-padded, attention_mask (B, P) True on real tokens) with gen_length
    tokens: (B, P + gen_length).

    steps: model calls in all, split evenly over gen_length / block_length blocks decoded left to right.
    cfg_scale: unsupervised classifier-free guidance weight w (0 = off).
    forbid_eos: never emit eos_id. eos_last: commit EOS and end-of-turn candidates after every other
    position of the block (paper appendix B.4).
    """
    num_blocks = check_arguments(
        "generate", prompt, steps=steps, gen_length=gen_length, block_length=block_length, temperature=temperature,
        remasking=remasking, attention_mask=attention_mask, eos_id=eos_id, eot_id=eot_id, forbid_eos=forbid_eos,
        eos_last=eos_last,
    )
    if cfg_scale < 0:
        raise ValueError(f"generate: cfg_scale must be >= 0, got {cfg_scale}")

    B, P = prompt.shape
    # 1. the canvas: prompt, then gen_length masks
    x = torch.full((B, P + gen_length), mask_id, dtype=torch.long, device=prompt.device)  # (B, P + G)
    x[:, :P] = prompt
    if attention_mask is not None:  # generated positions are real tokens
        attention_mask = torch.cat([attention_mask, attention_mask.new_ones(B, gen_length)], dim=1)  # (B, P + G)
        if cfg_scale > 0:  # the conditional and the unconditional copies share it
            attention_mask = torch.cat([attention_mask, attention_mask], dim=0)  # (2B, P + G)
    prompt_index = x != mask_id  # (B, P + G)
    steps_per_block = steps // num_blocks
    end_ids = [i for i in (eos_id, eot_id) if i is not None] if eos_last else []

    # 2. blocks left to right
    for block in range(num_blocks):
        block_start = P + block * block_length
        block_end = block_start + block_length
        num_transfer = get_num_transfer_tokens(x[:, block_start:block_end] == mask_id, steps_per_block)  # (B, s)
        for step in range(steps_per_block):
            mask_index = x == mask_id  # (B, P + G)
            # 3. the model sees the whole canvas; positions right of the block are masked but visible
            if cfg_scale > 0:
                # unsupervised classifier-free guidance (Nie et al. 2024, "Scaling up Masked Diffusion Models
                # on Text"): the unconditional copy has its prompt masked; logits = un + (w + 1) * (cond - un)
                unconditional = torch.where(prompt_index, mask_id, x)
                logits = model_logits(model, torch.cat([x, unconditional], dim=0), attention_mask)  # (2B, L, V)
                cond_logits, un_logits = logits.chunk(2, dim=0)
                logits = un_logits + (cfg_scale + 1) * (cond_logits - un_logits)  # (B, L, V)
            else:
                logits = model_logits(model, x, attention_mask)  # (B, L, V)
            x0, confidence, is_end = candidates(logits, temperature, remasking, eos_id if forbid_eos else None, end_ids)
            confidence = end_tokens_last(confidence, is_end)  # B.4; no end token unless eos_last
            confidence[:, block_end:] = float("-inf")  # right of the block: not yet
            x0 = torch.where(mask_index, x0, x)
            confidence = torch.where(mask_index, confidence, float("-inf"))  # already decoded: keep
            x = torch.where(commit_most_confident(confidence, num_transfer[:, step]), x0, x)  # k per row
    return x


def candidates(
    logits: torch.Tensor, temperature: float, remasking: str, forbidden_id: int | None, end_ids: list[int]
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Candidate tokens x0 (B, W), their confidence (B, W) and whether each is an end token (B, W), for the
    logits (B, W, V) of a window of the canvas, as generate computes them (SPEC "Sampling", step 3)."""
    if forbidden_id is not None:
        logits[..., forbidden_id] = float("-inf")
    x0 = add_gumbel_noise(logits, temperature).argmax(dim=-1)  # (B, W)
    if remasking == "low_confidence":  # probability of the candidate, from the noise-free logits
        probs = F.softmax(logits.to(torch.float64), dim=-1)  # (B, W, V)
        confidence = probs.gather(-1, x0[..., None]).squeeze(-1)  # (B, W) in [0, 1]
    else:
        confidence = torch.rand(x0.shape, device=x0.device, dtype=torch.float64)  # (B, W) in [0, 1)
    is_end = torch.isin(x0, torch.tensor(end_ids, dtype=x0.dtype, device=x0.device))  # (B, W)
    return x0, confidence, is_end


def end_tokens_last(confidence: torch.Tensor, is_end: torch.Tensor) -> torch.Tensor:
    """The order in which to commit the candidates (B, W): paper appendix B.4, end tokens after every other one.

    The spec says confidence -inf; 2 below every other candidate orders them the same way (confidences lie in
    [0, 1]) but keeps them above the positions that may not be committed at all (-inf), so a block whose only
    candidates are end tokens still finishes."""
    return torch.where(is_end, confidence - 2, confidence)


def commit_most_confident(confidence: torch.Tensor, count: torch.Tensor) -> torch.Tensor:
    """Which positions to commit (B, W): per row b, the count[b] most confident (SPEC "Sampling", step 3).

    confidence (B, W) is -inf where nothing may be committed; count (B,) must not exceed a row's other positions."""
    k_max = int(count.max())
    top = confidence.topk(k_max, dim=-1).indices  # (B, k_max)
    ranks = torch.arange(k_max, device=confidence.device)[None, :]  # (1, k_max)
    return torch.zeros_like(confidence, dtype=torch.bool).scatter_(1, top, ranks < count[:, None])  # (B, W)
