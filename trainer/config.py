"""Typed configs of the training jobs (pretrain, SFT, sample). Imports nothing heavy: DAGs read them."""

from __future__ import annotations

from dataclasses import dataclass

from common.config import ConfigError, one_of
from formats.layout import default_folder
from trainer.model_config import PRESETS

MODEL_PRESETS = tuple(PRESETS)
PRECISIONS = ("fp32", "bf16")
ZERO_STAGES = (0, 1, 2, 3)
REMASKING = ("low_confidence", "random")
"""How the sampler picks the positions it commits (trainer/sampler.py)."""
CACHES = ("none", "prefix", "dual")
"""Key/value caches of the fast sampler (trainer/fast_sampler.py)."""


FINGERPRINTED = ("model", "seed", "eps", "precision", "zero_stage")
"""Keys a resumed run must share with its checkpoint (the job adds its data: tokens, seq_len, tokenizer).
steps, the lr schedule, checkpoint_every and the logging keys may change."""


@dataclass(kw_only=True)
class TrainConfig:
    """What pretraining and SFT share: model, optimisation, parallelism, tracking."""

    output_dir: str = default_folder("trainer.pretrain", "output_dir")
    """Where the final export (model.pt, model_config.json, config.json, metrics.jsonl) and the training
    checkpoints (checkpoints/step-NNNNNNNN/) are written (formats/checkpoint.py)."""
    model: str = one_of("tiny", MODEL_PRESETS)
    """Model preset: tiny, llada_1b or llada_8b (shapes in docs/SPEC-diffusion.md)."""
    steps: int = 100
    """Optimizer steps."""
    micro_batch_size: int = 8
    """Sequences per worker per forward pass (LLaDA-8B: 4)."""
    grad_accum_steps: int = 1
    """Micro-batches accumulated per optimizer step; global batch = micro x accum x workers."""
    lr: float = 1e-3
    """Peak learning rate (LLaDA-8B pretraining: 4e-4; the tiny model trains faster with more)."""
    warmup_steps: int = 10
    """Linear warm-up from 0 to `lr` (LLaDA-8B: 2000)."""
    decay_fraction: float = 0.1
    """Fraction of the steps, at the end, over which the lr decays linearly (warmup-stable-decay)."""
    final_lr_ratio: float = 0.1
    """Learning rate at the last step as a fraction of `lr` (LLaDA: 1e-5 / 1e-4 and 2.5e-6 / 2.5e-5)."""
    weight_decay: float = 0.1
    """AdamW weight decay (LLaDA: 0.1)."""
    grad_clip: float = 1.0
    """Gradient-norm clipping (0 turns it off)."""
    eps: float = 1e-3
    """Forward-process epsilon: p_mask = (1 - eps) t + eps."""
    seed: int = 0
    """Seeds the model init, data order and masking."""
    num_workers: int = 1
    """Ray Train workers (data-parallel ranks)."""
    use_gpu: bool = False
    """One GPU per worker (NCCL); CPU workers use gloo."""
    zero_stage: int = one_of(0, ZERO_STAGES)
    """DeepSpeed ZeRO stage 0-3."""
    precision: str = one_of("fp32", PRECISIONS)
    """fp32 or bf16 (on CPU bf16 needs ONEDNN_MAX_CPU_ISA=AVX512_CORE_BF16, set by the Makefile)."""
    activation_checkpointing: bool = False
    """Recompute each block's activations in the backward pass to save memory."""
    log_every: int = 10
    """Log loss, lr and tokens/s to MLflow and stdout every this many steps."""
    mlflow_experiment: str = "pretrain"
    """MLflow experiment that receives the run."""
    checkpoint_every: int = 0
    """Save a training checkpoint (model, optimizer, scheduler, data position) every this many optimizer
    steps; 0 saves one only at the end. A stop request (SIGTERM to the job) also saves one."""
    keep_checkpoints: int = 3
    """Keep the newest this many training checkpoints; older ones are deleted after each save."""
    resume: str = "auto"
    """auto: continue from the newest complete checkpoint in output_dir (start afresh when there is none);
    never: delete output_dir's checkpoints and start afresh; or the path of a checkpoint folder to continue
    from. Continuing keeps the MLflow run, and refuses a checkpoint made with other fingerprinted keys."""
    max_failures: int = 0
    """Restarts of the workers after one dies, each from the newest checkpoint (Ray Train's FailureConfig)."""

    def __post_init__(self) -> None:
        if self.model not in MODEL_PRESETS:
            raise ConfigError(f"model must be one of {', '.join(MODEL_PRESETS)}, got {self.model!r}")
        if self.precision not in PRECISIONS:
            raise ConfigError(f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        if self.zero_stage not in ZERO_STAGES:
            raise ConfigError(f"zero_stage must be 0, 1, 2 or 3, got {self.zero_stage}")
        for name in ("steps", "micro_batch_size", "grad_accum_steps", "num_workers", "log_every", "keep_checkpoints"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)}")
        for name in ("checkpoint_every", "max_failures"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be >= 0, got {getattr(self, name)}")
        if not self.resume.strip():
            raise ConfigError("resume must be auto, never or a checkpoint folder")
        if not 0 < self.eps < 1:
            raise ConfigError(f"eps must be in (0, 1), got {self.eps}")
        if not 0 <= self.decay_fraction <= 1:
            raise ConfigError(f"decay_fraction must be in [0, 1], got {self.decay_fraction}")


@dataclass(kw_only=True)
class PretrainConfig(TrainConfig):
    """Pretraining on packed token shards with the masked diffusion loss."""

    tokens_dir: str = default_folder("trainer.pretrain", "tokens_dir")
    """Token shards written by `pipelines.token_shards` (manifest.json + tokens-*.arrow)."""
    random_length_prob: float = 0.01
    """Probability per step of cutting the micro-batch to a random length (LLaDA: 1%)."""


@dataclass(kw_only=True)
class SFTConfig(TrainConfig):
    """Supervised fine-tuning on conversations, starting from a pretraining checkpoint."""

    output_dir: str = default_folder("trainer.sft", "output_dir")
    """Where the SFT checkpoint is written."""
    conversations: str = "data/demo/conversations.jsonl"
    """JSON lines of {"messages": [{"role", "content"}, ...]}."""
    init_checkpoint: str = default_folder("trainer.sft", "init_checkpoint")
    """Checkpoint folder to start from (a pretraining output_dir)."""
    tokenizer_dir: str = default_folder("trainer.sft", "tokenizer_dir")
    """Tokenizer folder (tokenizer.model + special_tokens.json)."""
    max_seq_len: int = 256
    """Prompt + response longer than this are cut from the left of the prompt (counted)."""
    lr: float = 2e-4
    """Peak learning rate (LLaDA-8B SFT: 2.5e-5)."""
    mlflow_experiment: str = "sft"
    """MLflow experiment that receives the run."""


@dataclass(kw_only=True)
class SampleConfig:
    """Generate a completion with the reverse process (docs/SPEC-diffusion.md, Sampling)."""

    checkpoint: str = default_folder("trainer.sample", "checkpoint")
    """Checkpoint folder (model.pt + model_config.json)."""
    tokenizer_dir: str = default_folder("trainer.sample", "tokenizer_dir")
    """Tokenizer folder."""
    prompt: str = "What does the `ls` command do?"
    """User message; it is wrapped in the chat layout when `chat` is true."""
    chat: bool = True
    """Wrap the prompt in LLaDA's chat layout (for SFT checkpoints)."""
    gen_length: int = 32
    """Tokens to generate."""
    block_length: int = 32
    """Semi-autoregressive block length (gen_length must be a multiple)."""
    steps: int = 32
    """Reverse-process steps in all (a multiple of the number of blocks)."""
    temperature: float = 0.0
    """Gumbel-noise temperature; 0 is deterministic."""
    cfg_scale: float = 0.0
    """Classifier-free guidance scale (0 = off)."""
    remasking: str = one_of("low_confidence", REMASKING)
    """low_confidence or random."""
    seed: int = 0
    """Seed for temperature > 0 or random remasking."""
    threshold: float | None = None
    """Fast sampling (trainer.fast_sampler): commit every masked position of the block whose probability
    reaches this (0.9 in Fast-dLLM; 19x faster at -0.5 point on bench/README.md's reversal task). Empty: the
    exact schedule."""
    cache: str = one_of("none", CACHES)
    """Fast sampling: "none", "prefix" or "dual" key/value cache, refreshed per block (an approximation:
    see bench/README.md for what it costs a small model)."""
    refresh_every: int | None = None
    """Fast sampling with a cache: also rebuild it every this many steps of a block. Empty: once per block."""

    @property
    def fast(self) -> bool:
        """Whether trainer.fast_sampler.generate_fast samples (any fast option set)."""
        return self.threshold is not None or self.cache != "none"

    def __post_init__(self) -> None:
        if self.remasking not in REMASKING:
            raise ConfigError(f"remasking must be low_confidence or random, got {self.remasking!r}")
        if self.cache not in CACHES:
            raise ConfigError(f"cache must be none, prefix or dual, got {self.cache!r}")
        if self.threshold is not None and not 0 < self.threshold <= 1:
            raise ConfigError(f"threshold must be in (0, 1], got {self.threshold}")
        if self.refresh_every is not None and (self.refresh_every < 1 or self.cache == "none"):
            raise ConfigError("refresh_every must be >= 1 and needs cache=prefix or cache=dual")
        if self.fast and self.cfg_scale:
            raise ConfigError("classifier-free guidance (cfg_scale) is offered by the exact sampler only: unset threshold and cache")
        if self.threshold is not None and self.remasking != "low_confidence":
            raise ConfigError("threshold needs remasking=low_confidence")
        if self.gen_length % self.block_length:
            raise ConfigError(f"gen_length ({self.gen_length}) must be a multiple of block_length ({self.block_length})")
        if self.steps % (self.gen_length // self.block_length):
            raise ConfigError("steps must be a multiple of the number of blocks (gen_length / block_length)")
