"""The optimizer every training path uses: AdamW with weight decay on matrices only."""

from __future__ import annotations


def build_optimizer(
    model, *, lr: float, weight_decay: float, betas: tuple[float, float] = (0.9, 0.95), fused: bool = False
):
    """torch AdamW over `model`'s parameters: weight decay on the >= 2-D ones (linear and embedding
    weights), none on the 1-D ones (RMSNorm weights), the usual LLaMA/OLMo practice; eps 1e-8.

    fused: torch's fused CUDA kernel. Without it torch chooses its default implementation (foreach on
    CUDA): passing fused=False to AdamW would force the slower per-tensor loop, so it is left unset.
    """
    import torch

    decay = [p for p in model.parameters() if p.ndim >= 2]
    no_decay = [p for p in model.parameters() if p.ndim < 2]
    return torch.optim.AdamW(
        [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=lr,
        betas=betas,
        eps=1e-8,
        fused=True if fused else None,
    )
