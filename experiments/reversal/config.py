"""The experiment's one typed config: it feeds the command line and the config.json saved beside the results."""

from __future__ import annotations

from dataclasses import dataclass, field

from common.config import ConfigError, one_of
from experiments.reversal.data import FACT_LENGTH, MAX_PAIRS
from trainer.model_config import PRESETS


@dataclass(kw_only=True)
class ReversalConfig:
    """One-directional synthetic facts; a diffusion model and an autoregressive baseline; accuracy both ways."""

    output_dir: str = "out/reversal"
    """Where results.json, config.json, vocab.json and the two checkpoints (diffusion/, autoregressive/) go."""
    num_pairs: int = 200
    """Facts `A's parent is B.`; every name appears in exactly one fact (at most 2,450 pairs)."""
    model: str = one_of("tiny", PRESETS)
    """Model preset for both models (its vocab_size is replaced by this experiment's vocabulary)."""
    steps: int = 2000
    """Optimizer steps for each model (the autoregressive model memorises the facts in ~250, the diffusion
    model needs ~2000: 86% both ways at 2000 with the defaults)."""
    eval_steps: list[int] = field(default_factory=lambda: [250, 1000, 2000])
    """Steps after which both models are evaluated (few and many); each at most `steps`."""
    batch_size: int = 64
    """Facts per optimizer step (drawn without replacement within an epoch, same order for both models)."""
    lr: float = 1e-3
    """AdamW learning rate, constant after the warm-up."""
    warmup_steps: int = 50
    """Linear warm-up from 0 to `lr`."""
    weight_decay: float = 0.0
    """AdamW weight decay (memorising facts is the task, so none by default)."""
    eps: float = 1e-3
    """Forward-process epsilon: p_mask = (1 - eps) t + eps."""
    rank_reverse: bool = True
    """Also report, at the last eval step, the autoregressive model's reverse accuracy by ranking all N
    subjects (N^2 sentences scored)."""
    threads: int = 1
    """torch intra-op threads. Models this small run fastest on one; on a 2-core machine with any other
    load, two threads stall at every parallel region (measured 70-80x slower per step here)."""
    seed: int = 0
    """Seeds the names, the pairing, the initial weights (shared by both models), batch order and masking."""
    canvas_length: int = FACT_LENGTH
    """Tokens per training row and per question: the 10-token fact, then <eos> up to this length (LLaDA's
    SFT pads answers with <eos> the same way). The forward question generates canvas_length - 6 tokens in
    as many steps, mostly <eos>, which is how LLaDA is used (a fixed, generous gen_length) and where fast
    sampling has room to save steps (bench/sampler_speed.py --canvas-length 32)."""

    def __post_init__(self) -> None:
        if not 1 <= self.num_pairs <= MAX_PAIRS:
            raise ConfigError(
                f"num_pairs must be in [1, {MAX_PAIRS}] (two distinct names per pair), got {self.num_pairs}"
            )
        if self.model not in PRESETS:
            raise ConfigError(f"model must be one of {', '.join(PRESETS)}, got {self.model!r}")
        for name in ("steps", "batch_size", "threads"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)}")
        if not self.eval_steps or any(not 1 <= s <= self.steps for s in self.eval_steps):
            raise ConfigError(
                f"eval_steps must be a non-empty list of steps in [1, steps={self.steps}], got {self.eval_steps}"
            )
        if self.canvas_length < FACT_LENGTH:
            raise ConfigError(f"canvas_length must be at least {FACT_LENGTH} (one fact), got {self.canvas_length}")
        if not 0 < self.eps < 1:
            raise ConfigError(f"eps must be in (0, 1), got {self.eps}")
        if self.lr <= 0 or self.warmup_steps < 0 or self.weight_decay < 0:
            raise ConfigError("lr must be positive, warmup_steps and weight_decay at least 0")
