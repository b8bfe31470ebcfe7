"""Typed configs of the training jobs (pretrain, SFT, sample). Imports nothing heavy: DAGs read them."""

from __future__ import annotations

from dataclasses import dataclass, field

from common.config import ConfigError, one_of
from formats.layout import default_folder
from trainer.model_config import PRESETS
from trainer.schedule import SCHEDULE_UNITS, check_points

MODEL_PRESETS = tuple(PRESETS)
PRECISIONS = ("fp32", "bf16")
ZERO_STAGES = (0, 1, 2, 3)
REMASKING = ("low_confidence", "random")
"""How the sampler picks the positions it commits (trainer/sampler.py)."""
CACHES = ("none", "prefix", "dual")
"""Key/value caches of the fast sampler (trainer/fast_sampler.py)."""


FINGERPRINTED = ("model", "seed", "eps", "precision", "zero_stage")
"""Keys a resumed run must share with its checkpoint (the job adds its data: the mixture, seq_len, the
tokenizer, the start). steps, the lr schedule, the batch shape, the number of workers, checkpoint_every
and the logging keys may change."""


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
    """Micro-batches accumulated per optimizer step; global batch = micro x accum x workers. Derived from
    global_batch_size when that is set."""
    global_batch_size: int | None = None
    """Sequences per optimizer step over all workers (LLaDA-8B: 1280 in pretraining, 256 in SFT). When set,
    grad_accum_steps = global_batch_size / (micro_batch_size x num_workers), which must be whole: a run
    resumed on another number of workers then keeps the same batches. Empty: micro x accum x workers."""
    lr: float = 1e-3
    """Peak learning rate (LLaDA-8B pretraining: 4e-4; the tiny model trains faster with more)."""
    warmup_steps: int = 10
    """Linear warm-up from 0 to `lr` (LLaDA-8B: 2000)."""
    decay_fraction: float = 0.1
    """Fraction of the steps, at the end, over which the lr decays linearly (warmup-stable-decay)."""
    final_lr_ratio: float = 0.1
    """Learning rate at the last step as a fraction of `lr` (LLaDA: 1e-5 / 1e-4 and 2.5e-6 / 2.5e-5)."""
    lr_schedule: list[list[float]] = field(default_factory=list)
    """Any schedule as [position, lr] points, linear in between, two points at one position for a step
    change, e.g. LLaDA-8B's pretraining in tokens (trainer/recipes.py): [[0, 0], [10.5e9, 4e-4],
    [1.2e12, 4e-4], [1.2e12, 1e-4], [2.0e12, 1e-4], [2.3e12, 1e-5]]. Replaces warmup_steps,
    decay_fraction and final_lr_ratio when given; `lr` must then be the largest lr of the points."""
    lr_schedule_unit: str = one_of("fraction", SCHEDULE_UNITS)
    """What lr_schedule's positions count: fraction of `steps`, optimizer steps, or tokens (pretraining)."""
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
    cpus_per_worker: int | None = None
    """CPU cores Ray reserves for each worker, and the threads its torch computes with. Empty: on CPU, the
    cluster's CPUs shared among the workers (a single worker on 2 cores trains on both); with GPUs, 1."""
    zero_stage: int = one_of(0, ZERO_STAGES)
    """DeepSpeed ZeRO stage 0-3."""
    precision: str = one_of("fp32", PRECISIONS)
    """fp32 or bf16 (on CPU bf16 needs ONEDNN_MAX_CPU_ISA=AVX512_CORE_BF16, set by the Makefile)."""
    activation_checkpointing: bool = False
    """Recompute each block's activations in the backward pass to save memory."""
    log_every: int = 10
    """Log loss, lr and tokens/s to MLflow and stdout every this many steps."""
    eval_every: int = 0
    """Compute the validation loss every this many steps, and after the last one (0: after the last only)."""
    val_sequences: int = 256
    """Sequences of the fixed validation subset (0 turns validation off), each with the same mask every
    evaluation and every run, so val_loss compares across runs."""
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
    shuffle_block: int = 1 << 16
    """Sequences per shuffle block of the sample order (1 << 16: 1 GB of tokens at seq_len 4096)."""

    def __post_init__(self) -> None:
        if self.model not in MODEL_PRESETS:
            raise ConfigError(f"model must be one of {', '.join(MODEL_PRESETS)}, got {self.model!r}")
        if self.precision not in PRECISIONS:
            raise ConfigError(f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        if self.zero_stage not in ZERO_STAGES:
            raise ConfigError(f"zero_stage must be 0, 1, 2 or 3, got {self.zero_stage}")
        for name in ("steps", "micro_batch_size", "grad_accum_steps", "num_workers", "log_every", "keep_checkpoints", "shuffle_block"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.cpus_per_worker is not None and self.cpus_per_worker < 1:
            raise ConfigError(f"cpus_per_worker must be at least 1, got {self.cpus_per_worker}")
        for name in ("checkpoint_every", "max_failures", "eval_every", "val_sequences"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be >= 0, got {getattr(self, name)}")
        if not self.resume.strip():
            raise ConfigError("resume must be auto, never or a checkpoint folder")
        if not 0 < self.eps < 1:
            raise ConfigError(f"eps must be in (0, 1), got {self.eps}")
        if not 0 <= self.decay_fraction <= 1:
            raise ConfigError(f"decay_fraction must be in [0, 1], got {self.decay_fraction}")
        if self.lr_schedule_unit not in SCHEDULE_UNITS:
            raise ConfigError(f"lr_schedule_unit must be one of {', '.join(SCHEDULE_UNITS)}, got {self.lr_schedule_unit!r}")
        if self.lr_schedule:
            try:
                points = check_points(self.lr_schedule)
            except ValueError as e:
                raise ConfigError(str(e)) from None
            if max(lr for _, lr in points) > self.lr * (1 + 1e-9):
                raise ConfigError(f"lr ({self.lr}) must be at least the largest lr of lr_schedule: the schedule scales it")
        if self.global_batch_size is not None:
            per_pass = self.micro_batch_size * self.num_workers
            if self.global_batch_size < 1 or self.global_batch_size % per_pass:
                raise ConfigError(
                    f"global_batch_size={self.global_batch_size} must be a multiple of micro_batch_size x num_workers "
                    f"= {self.micro_batch_size} x {self.num_workers}; change one of them"
                )
            self.grad_accum_steps = self.global_batch_size // per_pass

    @property
    def global_batch(self) -> int:
        """Sequences per optimizer step over all workers."""
        return self.micro_batch_size * self.grad_accum_steps * self.num_workers


@dataclass(kw_only=True)
class PretrainConfig(TrainConfig):
    """Pretraining on packed token shards with the masked diffusion loss."""

    tokens_dir: str = default_folder("trainer.pretrain", "tokens_dir")
    """Token shards written by `pipelines.token_shards` (manifest.json + tokens-*.arrow); the data when
    `mixture` is empty."""
    mixture: dict[str, float] = field(default_factory=dict)
    """Token-shard folders, or folder:source for one document source inside a folder, to weights, e.g.
    {"out/tokens_web": 0.7, "out/tokens_code": 0.3}: each global batch draws from them in these
    proportions (trainer/data/). Empty: tokens_dir alone."""
    corpus: str = ""
    """The corpus version tokens_dir belongs to, `name/version` (formats/corpus_versions.py): the pretrain DAG
    sets it from its corpus_name and corpus_version Params (latest resolved), so config.json and the MLflow
    run record exactly what was read. Empty: a run by hand on a folder of its own."""
    init_checkpoint: str = ""
    """Start from these weights (our export folder, or a Hugging Face LLaDA folder such as LLaDA-8B-Base),
    with a fresh optimizer and schedule: continued pretraining, e.g. LLaDA's annealing phase on another
    mixture or seq_len. Empty: a freshly initialized model."""
    random_length_prob: float = 0.01
    """Probability per step of cutting the micro-batch to a random length (LLaDA: 1%)."""

    @property
    def data(self) -> dict[str, float]:
        """The mixture trained on: `mixture`, or {tokens_dir: 1}."""
        return dict(self.mixture) or {self.tokens_dir: 1.0}



@dataclass(kw_only=True)
class SFTConfig(TrainConfig):
    """Supervised fine-tuning on tokenized conversations, starting from a pretraining checkpoint."""

    output_dir: str = default_folder("trainer.sft", "output_dir")
    """Where the SFT checkpoint is written."""
    sft_tokens_dir: str = default_folder("trainer.sft", "sft_tokens_dir")
    """SFT pairs written by `pipelines.sft_shards` (one per assistant turn, padded to its max_seq_len),
    streamed by the pretraining loader: memory does not grow with the number of pairs."""
    init_checkpoint: str = default_folder("trainer.sft", "init_checkpoint")
    """Checkpoint folder to start from: a pretraining output_dir, or a Hugging Face LLaDA folder
    (LLaDA-8B-Base or -Instruct: config.json + safetensors)."""
    tokenizer_dir: str = ""
    """Tokenizer folder: ours (tokenizer.model) or a Hugging Face one (tokenizer.json). Empty: the tokenizer
    inside init_checkpoint (our checkpoints, like a Hugging Face LLaDA folder, hold their own)."""
    lr: float = 2e-4
    """Peak learning rate (LLaDA-8B SFT: 2.5e-5)."""
    mlflow_experiment: str = "sft"
    """MLflow experiment that receives the run."""


@dataclass(kw_only=True)
class SampleConfig:
    """Generate a completion with the reverse process (docs/SPEC-diffusion.md, Sampling)."""

    checkpoint: str = default_folder("trainer.sample", "checkpoint")
    """Checkpoint folder: ours (model.pt + model_config.json) or a Hugging Face LLaDA folder."""
    tokenizer_dir: str = ""
    """Tokenizer folder, ours or a Hugging Face one. Empty: the tokenizer inside `checkpoint` (every
    training export holds the one it was trained with)."""
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


EVAL_TASKS_DIR = "data/eval_tasks"
"""The local lm-eval tasks shipped in the repo (data/make_eval_tasks.py makes their data)."""


@dataclass(kw_only=True)
class EvaluateConfig:
    """lm-evaluation-harness tasks on a checkpoint (trainer/lm_eval_model.py), logged beside its training run."""

    checkpoint: str = default_folder("trainer.evaluate", "checkpoint")
    """Checkpoint folder: ours (model.pt + model_config.json) or a Hugging Face LLaDA folder."""
    tokenizer_dir: str = ""
    """Tokenizer folder, ours or a Hugging Face one. Empty: the tokenizer inside `checkpoint` (every
    training export holds the one it was trained with)."""
    tasks: list[str] = field(default_factory=lambda: ["demo_cloze"])
    """lm-eval task names: the local ones of include_path (demo_cloze, demo_whatis), or, with a Hugging Face
    datasets cache, lm-eval's own (e.g. mmlu, gsm8k, arc_challenge, hellaswag)."""
    include_path: str = EVAL_TASKS_DIR
    """Folder of local task YAMLs; empty for lm-eval's own tasks only."""
    limit: int | None = None
    """Documents per task (the first ones); empty: all."""
    num_fewshot: int | None = None
    """Few-shot examples per prompt; empty: each task's default."""
    mc_num: int = 128
    """Monte Carlo masked copies per loglikelihood request (LLaDA: 128)."""
    mc_batch_size: int = 32
    """Copies per model call; mc_num must be a multiple."""
    cfg_scale: float = 0.0
    """Unsupervised classifier-free guidance on likelihoods and generations (0 = off)."""
    check_greedy: bool = False
    """Also decode each loglikelihood answer greedily, for the tasks whose metric asks whether it is the greedy
    one (lambada's acc); LLaDA's scripts leave it off for the multiple-choice benchmarks, whose acc ignores it."""
    chat: bool = False
    """Ask every request as a user turn of the chat layout (SFT checkpoints)."""
    gen_length: int = 256
    """generate_until: tokens generated per request."""
    block_length: int = 32
    """generate_until: semi-autoregressive block length (gen_length must be a multiple)."""
    steps: int | None = None
    """generate_until: sampler steps in all; empty: gen_length (one token per step)."""
    threshold: float | None = None
    """generate_until with the fast sampler: commit positions whose probability reaches this."""
    cache: str = one_of("none", CACHES)
    """generate_until with the fast sampler: key/value cache."""
    baseline: bool = True
    """Also score an untrained model of the checkpoint's shape (random weights, `seed`): what training added."""
    seed: int = 0
    """Seed of every Monte Carlo estimate (each request draws from its own generator) and of the baseline."""
    mlflow_experiment: str = ""
    """MLflow experiment; empty: the checkpoint's training run's, whose child run the evaluation becomes."""
    log_to_mlflow: bool = True
    """Log each task's metrics to MLflow, and the results JSON as an artifact."""

    def __post_init__(self) -> None:
        if not self.tasks:
            raise ConfigError("tasks: give at least one lm-eval task name")
        if self.limit is not None and self.limit < 1:
            raise ConfigError(f"limit must be >= 1 (empty: every document), got {self.limit}")
        if self.mc_num < 1 or self.mc_batch_size < 1 or self.mc_num % self.mc_batch_size:
            raise ConfigError(f"mc_num ({self.mc_num}) must be a positive multiple of mc_batch_size ({self.mc_batch_size})")
        if self.cache not in CACHES:
            raise ConfigError(f"cache must be none, prefix or dual, got {self.cache!r}")
        if self.gen_length % self.block_length:
            raise ConfigError(f"gen_length ({self.gen_length}) must be a multiple of block_length ({self.block_length})")
        if (self.steps or self.gen_length) % (self.gen_length // self.block_length):
            raise ConfigError("steps must be a multiple of the number of blocks (gen_length / block_length)")
