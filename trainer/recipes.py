"""Training recipes: functions returning a config with a published (or demo) set of hyperparameters.

    python -m trainer.pretrain recipe=llada_8b mixture='{"out/tokens": 1}' num_workers=64 use_gpu=true
    python -m trainer.sft recipe=llada_8b init_checkpoint=... sft_tokens_dir=...

The command line applies `key=value` overrides on top of the recipe (common/cli.py). The numbers are
docs/SPEC-diffusion.md's "Published training recipe"; what the paper does not give (ZeRO stage,
checkpoint cadence) is marked as ours.
"""

from __future__ import annotations

import math

from trainer.config import PretrainConfig, SFTConfig

LLADA_SEQ_LEN = 4096
LLADA_GLOBAL_BATCH = 1280
LLADA_TOKENS = 2.3e12


def llada_pretraining_schedule(global_batch: int = LLADA_GLOBAL_BATCH, seq_len: int = LLADA_SEQ_LEN) -> list[list[float]]:
    """LLaDA-8B's pretraining lr in tokens: 0 -> 4e-4 over 2,000 steps, 4e-4 until 1.2T tokens, 1e-4 for
    the next 0.8T, then linear 1e-4 -> 1e-5 over the last 0.3T (paper section 2.3)."""
    warmup_tokens = 2000 * global_batch * seq_len
    return [[0, 0.0], [warmup_tokens, 4e-4], [1.2e12, 4e-4], [1.2e12, 1e-4], [2.0e12, 1e-4], [LLADA_TOKENS, 1e-5]]


def tiny() -> PretrainConfig:
    """The CPU demo: the tiny model, 200 steps of 16 sequences, an intermediate checkpoint and evaluation."""
    return PretrainConfig(model="tiny", steps=200, micro_batch_size=16, lr=2e-3, warmup_steps=20, log_every=20,
                          checkpoint_every=100, eval_every=100)


def llada_8b() -> PretrainConfig:
    """LLaDA-8B pretraining: 2.3T tokens of 4096 (the token shards must be written with seq_len=4096),
    global batch 1280 (4 per GPU), AdamW with weight decay 0.1, the lr schedule above, bf16, 1% random
    lengths. Ours: ZeRO-2, a checkpoint and an evaluation every 1,000 steps."""
    return PretrainConfig(
        model="llada_8b",
        steps=math.ceil(LLADA_TOKENS / (LLADA_GLOBAL_BATCH * LLADA_SEQ_LEN)),
        micro_batch_size=4,
        global_batch_size=LLADA_GLOBAL_BATCH,
        lr=4e-4,
        lr_schedule=llada_pretraining_schedule(),
        lr_schedule_unit="tokens",
        weight_decay=0.1,
        precision="bf16",
        zero_stage=2,
        use_gpu=True,
        random_length_prob=0.01,
        log_every=10,
        checkpoint_every=1000,
        eval_every=1000,
    )


def llada_1b() -> PretrainConfig:
    """LLaDA-8B's recipe on the 1B shape (the paper's scaling runs share the 8B's settings)."""
    config = llada_8b()
    config.model = "llada_1b"
    return config


RECIPES = {"tiny": tiny, "llada_1b": llada_1b, "llada_8b": llada_8b}
"""Pretraining recipes by the name `recipe=` takes."""


def llada_8b_sft() -> SFTConfig:
    """LLaDA-8B SFT: 4.5M pairs for 3 epochs at global batch 256 (52,735 steps), lr 0 -> 2.5e-5 over 50
    steps, constant, linear to 2.5e-6 over the last 10%, weight decay 0.1, bf16 (the pairs written by
    pipelines.sft_shards with max_seq_len=4096)."""
    return SFTConfig(
        model="llada_8b",
        steps=math.ceil(3 * 4.5e6 / 256),
        micro_batch_size=4,
        global_batch_size=256,
        lr=2.5e-5,
        warmup_steps=50,
        decay_fraction=0.1,
        final_lr_ratio=0.1,
        weight_decay=0.1,
        precision="bf16",
        zero_stage=2,
        use_gpu=True,
        checkpoint_every=1000,
    )


SFT_RECIPES = {"llada_8b": llada_8b_sft}
"""SFT recipes by the name `recipe=` takes."""
