"""Pretraining job: packed token shards -> masked diffusion loss -> checkpoint (docs/SPEC-diffusion.md).

    python -m trainer.pretrain tokens_dir=out/tokens steps=100 [--dry-run]
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from common.cli import run_job
from common.config import ConfigError, from_dict
from trainer.config import FINGERPRINTED, PretrainConfig
from trainer.loop import IteratorData, Job


def token_batches(tokens, *, batch_size: int, rank: int, world_size: int, seed: int, start: int = 0) -> Iterator:
    """Endless micro-batches of this rank's rows, reshuffled each epoch (same order on every rerun), from
    the `start`-th micro-batch on (found by arithmetic: nothing before it is read)."""
    import numpy as np
    import torch

    rows = np.arange(rank, len(tokens), world_size)
    if len(rows) < batch_size:
        raise ConfigError(
            f"rank {rank} has {len(rows)} sequences, fewer than micro_batch_size={batch_size}: write more token shards"
        )
    per_epoch = len(rows) // batch_size
    epoch, skip = divmod(start, per_epoch)
    while True:
        order = np.random.default_rng(seed + epoch).permutation(rows)
        for first in range(skip * batch_size, per_epoch * batch_size, batch_size):
            index = np.sort(order[first : first + batch_size])
            yield torch.from_numpy(tokens[index].astype(np.int64))
        epoch, skip = epoch + 1, 0


def pretrain_loss(mask_id: int, eps: float, random_length_prob: float):
    """(engine, batch, generator) -> (loss, tokens): the spec's pretraining objective."""
    from trainer.diffusion import forward_process, masked_diffusion_loss, random_length_cut

    def compute(engine, input_ids, generator):
        input_ids = random_length_cut(input_ids, prob=random_length_prob, generator=generator)
        noisy, masked, p_mask = forward_process(input_ids, mask_id, eps=eps, generator=generator)
        logits = engine(noisy.to(engine.device))
        loss = masked_diffusion_loss(logits, input_ids.to(engine.device), masked.to(engine.device), p_mask.to(engine.device))
        return loss, input_ids.numel()

    return compute


def fingerprint(config: PretrainConfig, manifest: dict) -> dict:
    """What a run resuming this one must share: the model and its noise, and the data (trainer.config.FINGERPRINTED)."""
    return {
        **{key: getattr(config, key) for key in FINGERPRINTED},
        "tokens_dir": str(Path(config.tokens_dir).resolve()),
        "seq_len": manifest["seq_len"],
        "tokenizer_sha256": manifest.get("tokenizer_sha256"),
    }


def build_pretrain_job(config: PretrainConfig, rank: int, world_size: int) -> Job:
    from formats.token_shards import load_token_shards
    from trainer.model import MaskPredictor
    from trainer.model_config import model_config

    tokens, manifest = load_token_shards(config.tokens_dir)
    specials = manifest["special_tokens"]
    model = MaskPredictor(
        model_config(config.model, vocab_size=specials["vocab_size"], activation_checkpointing=config.activation_checkpointing)
    )

    def batches(start: int) -> Iterator:
        return token_batches(tokens, batch_size=config.micro_batch_size, rank=rank, world_size=world_size, seed=config.seed, start=start)

    return Job(
        model=model,
        data=IteratorData(batches, per_step=config.grad_accum_steps),
        loss=pretrain_loss(specials["mask"], config.eps, config.random_length_prob),
        fingerprint=fingerprint(config, manifest),
    )


def _worker(loop_config: dict) -> None:
    from trainer import loop

    config = from_dict(PretrainConfig, loop_config["config"])
    loop.run(config, build_pretrain_job, mlflow_run_id=loop_config["mlflow_run_id"], tracking_uri=loop_config["tracking_uri"],
             resume_from=loop_config["resume_from"])


def main(config: PretrainConfig) -> dict:
    from formats.token_shards import read_manifest
    from trainer.tracked_run import train_tracked

    manifest = read_manifest(config.tokens_dir)
    config.tokens_dir = str(Path(config.tokens_dir).resolve())
    return train_tracked(
        config,
        _worker,
        run_name="pretrain",
        fingerprint=fingerprint(config, manifest),
        extra_params={"tokens_dir": config.tokens_dir, "tokenizer_sha256": manifest.get("tokenizer_sha256"),
                      "train_sequences": manifest.get("sequences"), "seq_len": manifest.get("seq_len")},
    )

if __name__ == "__main__":
    raise SystemExit(run_job(PretrainConfig, main, description="Masked diffusion pretraining (LLaDA) on token shards."))
