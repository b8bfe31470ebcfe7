"""Learning-rate schedule: warmup-stable-decay, as LLaDA uses (paper section 2.3, appendix B)."""

from __future__ import annotations


def wsd_lr_factor(step: int, *, total_steps: int, warmup_steps: int, decay_fraction: float, final_ratio: float) -> float:
    """Multiplier of the peak lr at optimizer step `step` (0-based).

    Linear warm-up 0 -> 1 over `warmup_steps`, then constant, then a linear decay to `final_ratio`
    over the last `decay_fraction` of the steps. LLaDA-8B's SFT is exactly this (50 warm-up steps,
    last 10% down to 0.1x); its pretraining adds a step down to 1e-4 before the final decay.
    """
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
    decay_steps = round(total_steps * decay_fraction)
    decay_start = total_steps - decay_steps
    if decay_steps == 0 or step < decay_start:
        return 1.0
    progress = (step - decay_start + 1) / decay_steps
    return 1.0 - (1.0 - final_ratio) * min(progress, 1.0)
