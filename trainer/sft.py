"""SFT job: conversations -> (prompt, response) pairs -> SFT loss, from a pretraining checkpoint.

    python -m trainer.sft conversations=data/demo/conversations.jsonl init_checkpoint=out/pretrain
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from common.cli import run_job
from common.config import ConfigError, from_dict
from trainer.config import FINGERPRINTED, SFTConfig
from trainer.loop import IteratorData, Job


def read_pairs(path: str | Path, tokenizer, max_seq_len: int) -> tuple[list[tuple[list[int], list[int]]], dict]:
    """Every assistant turn of every conversation as one (prompt ids, response ids) pair (spec, SFT).

    Bad lines are counted and skipped, with the first few named by line number.
    """
    pairs: list[tuple[list[int], list[int]]] = []
    stats = {"conversations": 0, "pairs": 0, "bad_lines": 0, "truncated": 0, "too_long": 0, "examples": []}
    with open(path, "rb") as f:
        for line_number, raw in enumerate(f, 1):
            if not raw.strip():
                continue
            try:
                messages = json.loads(raw.decode("utf-8"))["messages"]
                turns = tokenizer.encode_conversation(messages)
            except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
                stats["bad_lines"] += 1
                if len(stats["examples"]) < 5:
                    stats["examples"].append(f"{path}:{line_number}: {type(e).__name__}: {e}")
                continue
            stats["conversations"] += 1
            for prompt, response in turns:
                if len(response) >= max_seq_len:
                    stats["too_long"] += 1
                    continue
                if len(prompt) + len(response) > max_seq_len:
                    # Keep the most recent history: cut from the left of the prompt.
                    prompt = prompt[len(prompt) + len(response) - max_seq_len :]
                    stats["truncated"] += 1
                pairs.append((prompt, response))
    stats["pairs"] = len(pairs)
    return pairs, stats


def pair_batches(pairs, *, batch_size: int, eos_id: int, rank: int, world_size: int, seed: int, start: int = 0) -> Iterator:
    """Endless micro-batches (input_ids, prompt_lengths, answer_lengths) of this rank's pairs, reshuffled each
    epoch, from the `start`-th micro-batch on."""
    import numpy as np

    from trainer.diffusion import pad_sft_batch

    mine = pairs[rank::world_size]
    if len(mine) < batch_size:
        raise ConfigError(f"rank {rank} has {len(mine)} SFT pairs, fewer than micro_batch_size={batch_size}")
    per_epoch = len(mine) // batch_size
    epoch, skip = divmod(start, per_epoch)
    while True:
        order = np.random.default_rng(seed + epoch).permutation(len(mine))
        for first in range(skip * batch_size, per_epoch * batch_size, batch_size):
            chosen = [mine[i] for i in order[first : first + batch_size]]
            yield pad_sft_batch([p for p, _ in chosen], [r for _, r in chosen], eos_id)
        epoch, skip = epoch + 1, 0


def sft_objective(mask_id: int, eps: float):
    """(engine, batch, generator) -> (loss, tokens): the spec's SFT objective (prompt never masked)."""
    from trainer.diffusion import sft_forward_process, sft_loss

    def compute(engine, batch, generator):
        input_ids, prompt_lengths, answer_lengths = batch
        noisy, masked, p_mask = sft_forward_process(input_ids, prompt_lengths, mask_id, eps=eps, generator=generator)
        device = engine.device
        logits = engine(noisy.to(device))
        loss = sft_loss(logits, input_ids.to(device), masked.to(device), p_mask.to(device), answer_lengths.to(device))
        return loss, input_ids.numel()

    return compute


def build_sft_job(config: SFTConfig, rank: int, world_size: int) -> Job:
    from tokenizer.encode import Tokenizer
    from trainer.checkpoint import load_model

    tokenizer = Tokenizer.load(config.tokenizer_dir)
    model = load_model(config.init_checkpoint).train()
    model.config.activation_checkpointing = config.activation_checkpointing
    pairs, _ = read_pairs(config.conversations, tokenizer, config.max_seq_len)

    def batches(start: int) -> Iterator:
        return pair_batches(pairs, batch_size=config.micro_batch_size, eos_id=tokenizer.eos_id, rank=rank,
                            world_size=world_size, seed=config.seed, start=start)

    return Job(
        model=model,
        data=IteratorData(batches, per_step=config.grad_accum_steps),
        loss=sft_objective(tokenizer.mask_id, config.eps),
        fingerprint=fingerprint(config, tokenizer.sha256),
    )


def fingerprint(config: SFTConfig, tokenizer_sha256: str) -> dict:
    """What a run resuming this one must share (trainer.config.FINGERPRINTED, the data and the start)."""
    return {
        **{key: getattr(config, key) for key in FINGERPRINTED},
        "conversations": str(Path(config.conversations).resolve()),
        "init_checkpoint": str(Path(config.init_checkpoint).resolve()),
        "max_seq_len": config.max_seq_len,
        "tokenizer_sha256": tokenizer_sha256,
    }


def _worker(loop_config: dict) -> None:
    from trainer import loop

    config = from_dict(SFTConfig, loop_config["config"])
    loop.run(config, build_sft_job, mlflow_run_id=loop_config["mlflow_run_id"], tracking_uri=loop_config["tracking_uri"],
             resume_from=loop_config["resume_from"])


def main(config: SFTConfig) -> dict:
    from common.paths import require_paths
    from tokenizer.encode import Tokenizer
    from trainer.tracked_run import train_tracked

    require_paths([config.conversations, config.init_checkpoint, config.tokenizer_dir])
    for name in ("conversations", "init_checkpoint", "tokenizer_dir"):
        setattr(config, name, str(Path(getattr(config, name)).resolve()))
    # Read once on the driver: bad lines are reported here, before any worker starts.
    tokenizer = Tokenizer.load(config.tokenizer_dir)
    _, stats = read_pairs(config.conversations, tokenizer, config.max_seq_len)
    print(f"[sft] {stats['conversations']} conversations -> {stats['pairs']} pairs "
          f"({stats['bad_lines']} bad lines, {stats['truncated']} truncated, {stats['too_long']} too long)", flush=True)
    for example in stats["examples"]:
        print(f"[sft] skipped {example}", flush=True)
    if stats["pairs"] == 0:
        raise ConfigError(f"no usable conversations in {config.conversations}")
    summary = train_tracked(
        config, _worker, run_name="sft", fingerprint=fingerprint(config, tokenizer.sha256),
        extra_params={f"data_{k}": v for k, v in stats.items() if k != "examples"},
    )
    return {**summary, "data": stats}


if __name__ == "__main__":
    from trainer.recipes import SFT_RECIPES

    raise SystemExit(run_job(SFTConfig, main, recipes=SFT_RECIPES, description="Masked diffusion SFT (LLaDA) on conversations."))
