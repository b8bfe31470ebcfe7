"""Learning-rate schedules: warmup-stable-decay, as LLaDA uses (paper section 2.3, appendix B), and any
piecewise-linear schedule given as points, which can express LLaDA-8B's pretraining one exactly."""

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


SCHEDULE_UNITS = ("fraction", "steps", "tokens")
"""What the positions of an lr_schedule count: the fraction of the run's steps, optimizer steps, or tokens."""


def check_points(points: list[list[float]]) -> list[tuple[float, float]]:
    """lr_schedule points as (position, lr) pairs; raises ValueError unless positions are >= 0 and never
    decrease and lrs are >= 0."""
    pairs = []
    for point in points:
        if len(point) != 2:
            raise ValueError(f"each lr_schedule point is [position, lr], got {point!r}")
        pairs.append((float(point[0]), float(point[1])))
    if not pairs:
        raise ValueError("lr_schedule has no points")
    if any(position < 0 or lr < 0 for position, lr in pairs):
        raise ValueError(f"lr_schedule positions and lrs must be >= 0, got {points!r}")
    if any(b[0] < a[0] for a, b in zip(pairs, pairs[1:])):
        raise ValueError(f"lr_schedule positions must not decrease, got {points!r}")
    return pairs


def piecewise_lr(position: float, points: list[tuple[float, float]]) -> float:
    """The lr at `position` of a schedule given as (position, lr) points: linear between neighbours, flat
    before the first and after the last. Two points at one position make a step: the later one holds from
    there on (LLaDA-8B's drop from 4e-4 to 1e-4 after 1.2T tokens)."""
    if position < points[0][0]:
        return points[0][1]
    for (x0, y0), (x1, y1) in zip(points, points[1:]):
        if x0 <= position < x1:
            return y0 + (y1 - y0) * (position - x0) / (x1 - x0)
    return points[-1][1]


def lr_at_step(step: int, *, points: list[tuple[float, float]], unit: str, total_steps: int, tokens_per_step: int | None) -> float:
    """The lr of optimizer step `step` (0-based) under a points schedule: the schedule read where the step
    ends (step + 1 steps done), the convention of wsd_lr_factor's warm-up."""
    done = step + 1
    if unit == "fraction":
        position = done / total_steps
    elif unit == "steps":
        position = done
    elif unit == "tokens":
        if tokens_per_step is None:
            raise ValueError("an lr_schedule in tokens needs a fixed number of tokens per step (pretraining)")
        position = done * tokens_per_step
    else:
        raise ValueError(f"lr_schedule_unit must be one of {', '.join(SCHEDULE_UNITS)}, got {unit!r}")
    return piecewise_lr(position, points)
