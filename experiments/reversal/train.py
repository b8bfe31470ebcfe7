"""The two models, trained alike: same preset, same initial weights, same batches, same steps.

Why the diffusion model can answer in reverse: the forward process masks each token independently, so it
hides A while B is visible as often as the converse, and the one-way sentence trains p(A | B) as much as
p(B | A). Next-token prediction only ever trains p(A) and p(B | A).
"""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F

from experiments.reversal.config import ReversalConfig
from experiments.reversal.data import MASK_ID, VOCAB
from experiments.reversal.evaluate import evaluate_autoregressive, evaluate_diffusion
from trainer.diffusion import forward_process, masked_diffusion_loss
from trainer.model import MaskPredictor
from trainer.model_config import model_config
from trainer.optim import build_optimizer

LOG = "[reversal]"


def diffusion_loss(model, ids: torch.Tensor, generator: torch.Generator, eps: float) -> torch.Tensor:
    """The pretraining objective (docs/SPEC-diffusion.md; paper eq. 3) on a batch of whole facts."""
    noisy, masked, p_mask = forward_process(ids, MASK_ID, eps=eps, generator=generator)
    return masked_diffusion_loss(model(noisy), ids, masked, p_mask)


def autoregressive_loss(model, ids: torch.Tensor, generator: torch.Generator, eps: float) -> torch.Tensor:
    """Next-token cross-entropy: every token predicted from the ones before it (generator and eps unused)."""
    logits = model(ids[:, :-1])  # (B, L - 1, V)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1))


def batch_order(num_facts: int, batch_size: int, steps: int, seed: int) -> torch.Tensor:
    """(steps, batch_size) fact indices: epochs of seeded permutations, the same for both models."""
    generator = torch.Generator().manual_seed(seed)
    needed = steps * batch_size
    order = torch.cat([torch.randperm(num_facts, generator=generator) for _ in range(-(-needed // num_facts))])
    return order[:needed].view(steps, batch_size)


def build_model(config: ReversalConfig, *, causal: bool) -> MaskPredictor:
    """Same preset, same seed, so the two models start from identical weights."""
    torch.manual_seed(config.seed)
    return MaskPredictor(model_config(config.model, vocab_size=len(VOCAB), causal=causal))


def train_and_evaluate(config: ReversalConfig, facts: torch.Tensor, *, causal: bool, log=print):
    """Train one model for config.steps; evaluate at config.eval_steps: (model, [row per eval step])."""
    model = build_model(config, causal=causal)
    model.train()
    optimizer = build_optimizer(model, lr=config.lr, weight_decay=config.weight_decay)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1.0, (s + 1) / max(1, config.warmup_steps)))
    loss_fn = autoregressive_loss if causal else diffusion_loss
    generator = torch.Generator().manual_seed(config.seed + 1)
    order = batch_order(facts.shape[0], config.batch_size, config.steps, config.seed)
    kind = "autoregressive" if causal else "diffusion"
    rows, train_seconds, eval_at = [], 0.0, set(config.eval_steps)
    start = time.perf_counter()
    for step in range(1, config.steps + 1):
        loss = loss_fn(model, facts[order[step - 1]], generator, config.eps)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        if step in eval_at:
            train_seconds += time.perf_counter() - start
            eval_start = time.perf_counter()
            if causal:
                last = step == max(config.eval_steps)
                accuracy = evaluate_autoregressive(model, facts, rank_reverse=config.rank_reverse and last)
            else:
                accuracy = evaluate_diffusion(model, facts)
            row = {
                "model": kind,
                "steps": step,
                "tokens": step * config.batch_size * facts.shape[1],
                "loss": loss.item(),
                "train_seconds": round(train_seconds, 2),
                "eval_seconds": round(time.perf_counter() - eval_start, 2),
                **accuracy,
            }
            scores = " ".join(f"{k} {v:.3f}" for k, v in accuracy.items())
            log(f"{LOG} {kind} step {step}: loss {row['loss']:.4f} {scores}")
            rows.append(row)
            start = time.perf_counter()
    model.eval()
    return model, rows
