"""SFT job: tokenized (prompt, response) pairs -> SFT loss, from a pretraining checkpoint (docs/SPEC-diffusion.md).

    python -m pipelines.sft_shards conversations=data/demo/conversations.jsonl   # once: out/sft_tokens
    python -m trainer.sft sft_tokens_dir=out/sft_tokens init_checkpoint=out/pretrain

The pairs stream through the pretraining loader (trainer/data/): the same elastic, resumable sample
order, and memory that does not grow with the number of pairs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from common.cli import run_job
from common.config import ConfigError, from_dict
from formats.token_shards import SFT_COLUMNS
from trainer.config import FINGERPRINTED, SFTConfig
from trainer.loop import Job


def sft_batch(batch) -> tuple[Any, Any, Any]:
    """A loader micro-batch of pairs as the spec's SFT batch: (input_ids (B, L), prompt_lengths (B,),
    answer_lengths (B,)), cut to its longest pair, so that each response is right-padded with EOS to the
    common length and the padding counts as response (trainer.diffusion.pad_sft_batch's layout)."""
    import numpy as np
    import torch

    length = int(batch.columns["length"].max())
    input_ids = torch.from_numpy(batch.tokens[:, :length].astype(np.int64))
    prompt_lengths = torch.from_numpy(batch.columns["prompt_length"].astype(np.int64))
    return input_ids, prompt_lengths, length - prompt_lengths


def sft_objective(mask_id: int, eps: float):
    """(engine, micro-batch, generator) -> (loss, tokens): the spec's SFT objective (prompt never masked)."""
    from trainer.diffusion import sft_forward_process, sft_loss

    def compute(engine, batch, generator):
        input_ids, prompt_lengths, answer_lengths = sft_batch(batch)
        noisy, masked, p_mask = sft_forward_process(input_ids, prompt_lengths, mask_id, eps=eps, generator=generator)
        device = engine.device
        logits = engine(noisy.to(device))
        loss = sft_loss(logits, input_ids.to(device), masked.to(device), p_mask.to(device), answer_lengths.to(device))
        return loss, input_ids.numel()

    return compute


def build_sft_job(config: SFTConfig, rank: int, world_size: int) -> Job:
    from tokenizer.encode import Tokenizer
    from trainer.checkpoint import load_model
    from trainer.data import RankData, SequenceLoader

    tokenizer = Tokenizer.load(config.tokenizer_dir)
    model = load_model(config.init_checkpoint).train()
    model.config.activation_checkpointing = config.activation_checkpointing
    loader = SequenceLoader(config.sft_tokens_dir, global_batch_size=config.global_batch, seed=config.seed,
                            shuffle_block=config.shuffle_block, tokenizer_sha256=tokenizer.sha256, columns=SFT_COLUMNS)
    return Job(
        model=model,
        data=RankData(loader, rank=rank, world_size=world_size, micro_batch_size=config.micro_batch_size),
        loss=sft_objective(tokenizer.mask_id, config.eps),
        fingerprint=fingerprint(config, loader.seq_len, tokenizer),
    )


def fingerprint(config: SFTConfig, max_seq_len: int, tokenizer) -> dict:
    """What a run resuming this one must share (trainer.config.FINGERPRINTED, the data and the start)."""
    return {
        **{key: getattr(config, key) for key in FINGERPRINTED},
        "sft_tokens_dir": str(Path(config.sft_tokens_dir).resolve()),
        "init_checkpoint": str(Path(config.init_checkpoint).resolve()),
        "max_seq_len": max_seq_len,
        "tokenizer_sha256": tokenizer.sha256,
        "vocab_size": tokenizer.vocab_size,
        "shuffle_block": config.shuffle_block,
    }


def _worker(loop_config: dict) -> None:
    from trainer import loop

    config = from_dict(SFTConfig, loop_config["config"])
    loop.run(config, build_sft_job, mlflow_run_id=loop_config["mlflow_run_id"], tracking_uri=loop_config["tracking_uri"],
             resume_from=loop_config["resume_from"])


def check_pairs(config: SFTConfig, tokenizer_sha256: str) -> dict[str, Any]:
    """The pair folder's manifest, checked before any worker starts: written by pipelines.sft_shards with
    this tokenizer, its files as the manifest says. Raises ConfigError naming the file."""
    from formats.token_shards import MANIFEST, verify_token_folder

    manifest = verify_token_folder(config.sft_tokens_dir, tokenizer_sha256=tokenizer_sha256)
    if manifest.get("kind") != "sft":
        raise ConfigError(f"{Path(config.sft_tokens_dir) / MANIFEST} is not a folder of SFT pairs (no kind: sft): "
                          "write one with python -m pipelines.sft_shards")
    if manifest["sequences"] < config.global_batch:
        raise ConfigError(f"{config.sft_tokens_dir} holds {manifest['sequences']:,} pairs, fewer than one global batch of "
                          f"{config.global_batch}: give more conversations or lower the batch")
    return manifest


def main(config: SFTConfig) -> dict:
    from common.paths import require_paths
    from trainer.checkpoint import tokenizer_mismatch
    from tokenizer.encode import Tokenizer
    from trainer.tracked_run import train_tracked

    config.tokenizer_dir = config.tokenizer_dir or config.init_checkpoint
    require_paths([config.sft_tokens_dir, config.init_checkpoint, config.tokenizer_dir])
    for name in ("sft_tokens_dir", "init_checkpoint", "tokenizer_dir"):
        setattr(config, name, str(Path(getattr(config, name)).resolve()))
    tokenizer = Tokenizer.load(config.tokenizer_dir)
    manifest = check_pairs(config, tokenizer.sha256)
    if problem := tokenizer_mismatch(config.init_checkpoint, tokenizer.sha256, tokenizer.vocab_size):
        raise ConfigError(f"init_checkpoint={config.init_checkpoint} does not go with tokenizer_dir={config.tokenizer_dir}: {problem}")
    counts = manifest["counts"]
    print(f"[sft] {manifest['sequences']:,} pairs of at most {manifest['seq_len']} tokens from {counts['conversations']:,} "
          f"conversations ({counts['bad_lines']} bad lines, {counts['truncated']} truncated, {counts['too_long']} too long "
          f"when written)", flush=True)
    summary = train_tracked(
        config, _worker, run_name="sft", fingerprint=fingerprint(config, manifest["seq_len"], tokenizer),
        extra_params={f"data_{k}": v for k, v in counts.items()} | {"max_seq_len": manifest["seq_len"]},
        inputs={"training": [Path(config.sft_tokens_dir)]},
        tokenizer_dir=config.tokenizer_dir or config.init_checkpoint,
    )
    return {**summary, "data": counts}


if __name__ == "__main__":
    from trainer.recipes import SFT_RECIPES

    raise SystemExit(run_job(SFTConfig, main, recipes=SFT_RECIPES, description="Masked diffusion SFT (LLaDA) on tokenized conversations."))
