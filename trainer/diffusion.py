"""The masked diffusion math as small pure functions: forward process, pretraining and SFT losses.

Equations are those of the LLaDA paper (Nie et al., 2025, arXiv:2502.09992) as restated in
docs/SPEC-diffusion.md, which wins where the two differ. Random draws take an optional torch.Generator
(on the device of the ids) so that a step can be replayed exactly.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


# Forward process, paper section 2.1 and Algorithm 1: t ~ U[0, 1), each token masked independently with
# probability t. eps keeps p_mask away from 0 so that 1 / p_mask in the loss stays bounded.
def forward_process(
    input_ids: torch.Tensor, mask_id: int, eps: float = 1e-3, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Mask clean ids (B, L): (noisy_ids (B, L), masked (B, L) bool, p_mask (B, L) float)."""
    b, l = input_ids.shape
    t = torch.rand(b, device=input_ids.device, generator=generator)  # (B,) one noise level per sequence
    p_mask = ((1 - eps) * t + eps)[:, None].repeat(1, l)  # (B, L)
    masked = torch.rand((b, l), device=input_ids.device, generator=generator) < p_mask  # (B, L)
    noisy_ids = torch.where(masked, mask_id, input_ids)  # only the mask id is ever introduced
    return noisy_ids, masked, p_mask


# Pretraining loss, paper eq. (3) and Algorithm 1:
#   loss = sum over masked positions of CE(logits_i, x0_i) / p_mask  /  (b * L)
# over the full vocabulary, divided by the number of tokens in the batch (not the number masked).
def masked_diffusion_loss(
    logits: torch.Tensor, targets: torch.Tensor, masked: torch.Tensor, p_mask: torch.Tensor
) -> torch.Tensor:
    """logits (B, L, V), targets (B, L) clean ids, masked (B, L) bool, p_mask (B, L): a scalar."""
    ce = F.cross_entropy(logits[masked].float(), targets[masked], reduction="none")  # (n_masked,)
    return (ce / p_mask[masked]).sum() / targets.numel()


# Pretraining, paper section 2.2: with probability 1% the sequence length is drawn uniformly from
# [1, 4096], so the model also sees short inputs. The whole micro-batch is cut (no padding).
def random_length_cut(
    input_ids: torch.Tensor, *, prob: float = 0.01, generator: torch.Generator | None = None
) -> torch.Tensor:
    """With probability prob, input_ids[:, :n] for n uniform in [1, L]; else input_ids unchanged."""
    device = generator.device if generator is not None else None
    if torch.rand(1, device=device, generator=generator).item() < prob:
        n = int(torch.randint(1, input_ids.shape[1] + 1, (1,), device=device, generator=generator).item())
        return input_ids[:, :n]
    return input_ids


# SFT, paper section 2.3 and Algorithm 2: the forward process runs on prompt + response, then the
# prompt is restored: it is never masked and the model predicts only the response.
def sft_forward_process(
    input_ids: torch.Tensor,
    prompt_lengths: torch.Tensor,
    mask_id: int,
    eps: float = 1e-3,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """As forward_process, with positions before prompt_lengths (B,) kept clean and unmasked."""
    noisy_ids, masked, p_mask = forward_process(input_ids, mask_id, eps, generator)
    prompt_lengths = torch.as_tensor(prompt_lengths, device=input_ids.device)
    positions = torch.arange(input_ids.shape[1], device=input_ids.device)
    in_prompt = positions[None, :] < prompt_lengths[:, None]  # (B, L)
    return torch.where(in_prompt, input_ids, noisy_ids), masked & ~in_prompt, p_mask


# SFT loss, paper eq. (5) and Algorithm 2, normalised as in the reference code:
#   loss = (1/b) * sum over sequences of [ sum over masked response positions of CE / p_mask ] / answer_len
# where answer_len counts the response's EOS padding (the model learns to stop by predicting EOS).
def sft_loss(
    logits: torch.Tensor,
    targets: torch.Tensor,
    masked: torch.Tensor,
    p_mask: torch.Tensor,
    answer_lengths: torch.Tensor,
) -> torch.Tensor:
    """logits (B, L, V), targets (B, L), masked (B, L) from sft_forward_process, p_mask (B, L),
    answer_lengths (B,): a scalar."""
    answer_lengths = torch.as_tensor(answer_lengths, device=targets.device)
    per_token_divisor = (p_mask * answer_lengths[:, None])[masked]  # (n_masked,)
    ce = F.cross_entropy(logits[masked].float(), targets[masked], reduction="none")  # (n_masked,)
    return (ce / per_token_divisor).sum() / targets.shape[0]


# SFT batches, paper section 2.3: responses of a mini-batch are right-padded with EOS to a common
# length, and the padding counts as response.
def pad_sft_batch(
    prompts: list[list[int]], responses: list[list[int]], eos_id: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Prompt + response per pair, right-padded with eos_id: (input_ids (B, L), prompt_lengths (B,),
    answer_lengths (B,)) with answer_len = L - prompt_len. Responses should already end in EOS."""
    if len(prompts) != len(responses):
        raise ValueError(f"pad_sft_batch: {len(prompts)} prompts but {len(responses)} responses")
    if not prompts:
        raise ValueError("pad_sft_batch: empty batch")
    for i, response in enumerate(responses):
        if not response:
            raise ValueError(f"pad_sft_batch: response {i} is empty; a response holds at least its EOS")
    sequences = [list(p) + list(r) for p, r in zip(prompts, responses)]
    length = max(len(s) for s in sequences)
    input_ids = torch.tensor([s + [eos_id] * (length - len(s)) for s in sequences], dtype=torch.long)
    prompt_lengths = torch.tensor([len(p) for p in prompts], dtype=torch.long)
    return input_ids, prompt_lengths, length - prompt_lengths
