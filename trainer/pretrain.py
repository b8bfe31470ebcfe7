"""Pretraining job: a mixture of token-shard folders -> masked diffusion loss -> checkpoint (docs/SPEC-diffusion.md).

    python -m trainer.pretrain tokens_dir=out/tokens steps=100 [--dry-run]
    python -m trainer.pretrain mixture='{"out/tokens_web": 0.7, "out/tokens_code": 0.3}' global_batch_size=64
    python -m trainer.pretrain recipe=llada_8b mixture=... (trainer/recipes.py)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from common.cli import run_job
from common.config import ConfigError, from_dict
from trainer.config import FINGERPRINTED, PretrainConfig
from trainer.loop import Job
from trainer.recipes import RECIPES


def pretrain_loss(mask_id: int, eps: float, random_length_prob: float):
    """(engine, micro-batch, generator) -> (loss, tokens): the spec's pretraining objective."""
    import numpy as np
    import torch

    from trainer.diffusion import forward_process, masked_diffusion_loss, random_length_cut

    def compute(engine, batch, generator):
        input_ids = torch.from_numpy(batch.tokens.astype(np.int64))
        input_ids = random_length_cut(input_ids, prob=random_length_prob, generator=generator)
        noisy, masked, p_mask = forward_process(input_ids, mask_id, eps=eps, generator=generator)
        logits = engine(noisy.to(engine.device))
        loss = masked_diffusion_loss(logits, input_ids.to(engine.device), masked.to(engine.device), p_mask.to(engine.device))
        return loss, input_ids.numel()

    return compute


def fingerprint(config: PretrainConfig, data: dict[str, Any]) -> dict:
    """What a run resuming this one must share: the model and its noise, the start, and the data's sample
    order (mixture, seq_len, tokenizer, shuffle_block); trainer.config.FINGERPRINTED."""
    return {
        **{key: getattr(config, key) for key in FINGERPRINTED},
        "mixture": data["weights"],
        "seq_len": data["seq_len"],
        "tokenizer_sha256": data["tokenizer_sha256"],
        "vocab_size": data["vocab_size"],
        "shuffle_block": config.shuffle_block,
        "init_checkpoint": str(Path(config.init_checkpoint).resolve()) if config.init_checkpoint else "",
        "sources": sorted(data["weights"]) if len(data["weights"]) > 1 else [],
    }


def check_init_checkpoint(config: PretrainConfig, vocab_size: int, tokenizer_sha256: str) -> None:
    """An init_checkpoint (ours, or a Hugging Face LLaDA folder) must have the `model` preset's shape, embedding
    rows for every id of the data's tokenizer, and (ours) have been trained with that tokenizer."""
    from trainer.checkpoint import model_fields, tokenizer_mismatch
    from trainer.model_config import model_config

    saved = model_fields(config.init_checkpoint)  # a ConfigError naming what is missing or incomplete
    if problem := tokenizer_mismatch(config.init_checkpoint, tokenizer_sha256, vocab_size):
        raise ConfigError(f"init_checkpoint={config.init_checkpoint} does not go with these token shards: {problem}")
    expected = vars(model_config(config.model, vocab_size=vocab_size))
    differing = [f"{k} {saved.get(k)!r} (model={config.model} over these shards: {v!r})"
                 for k, v in expected.items() if k not in ("activation_checkpointing", "vocab_size") and saved.get(k) != v]
    if differing:
        raise ConfigError(f"init_checkpoint={config.init_checkpoint} has another shape: {'; '.join(differing)}")


def build_pretrain_job(config: PretrainConfig, rank: int, world_size: int) -> Job:
    from trainer.checkpoint import load_model
    from trainer.data import RankData, SequenceLoader, mixture_folders, validation_batches
    from trainer.model import MaskPredictor
    from trainer.model_config import model_config
    from trainer.validation import ValidationSet

    loader = SequenceLoader(config.data, global_batch_size=config.global_batch, seed=config.seed, shuffle_block=config.shuffle_block)
    specials = loader.special_tokens
    if config.init_checkpoint:
        model = load_model(config.init_checkpoint).train()  # weights only: the optimizer and schedule start afresh
        model.config.activation_checkpointing = config.activation_checkpointing
    else:
        model = MaskPredictor(model_config(config.model, vocab_size=loader.vocab_size, activation_checkpointing=config.activation_checkpointing))
    validation = None
    if config.val_sequences:
        batches = [batch for folder in mixture_folders(config.data)
                   for batch in validation_batches(folder, max_sequences=config.val_sequences, micro_batch_size=config.micro_batch_size)]
        validation = ValidationSet(batches, mask_id=specials["mask"], eps=config.eps)
    data = {"weights": {key: float(w) for key, w in zip(loader.keys, loader.weights)}, "seq_len": loader.seq_len,
            "tokenizer_sha256": loader.tokenizer_sha256, "vocab_size": loader.vocab_size}
    several = len(loader.keys) > 1
    return Job(
        model=model,
        data=RankData(loader, rank=rank, world_size=world_size, micro_batch_size=config.micro_batch_size),
        loss=pretrain_loss(specials["mask"], config.eps, config.random_length_prob),
        fingerprint=fingerprint(config, data),
        sources=(lambda batch: batch.tokens_by_source) if several else (lambda batch: {}),
        tokens_per_step=config.global_batch * loader.seq_len,
        validation=validation,
    )


def _worker(loop_config: dict) -> None:
    from trainer import loop

    config = from_dict(PretrainConfig, loop_config["config"])
    loop.run(config, build_pretrain_job, mlflow_run_id=loop_config["mlflow_run_id"], tracking_uri=loop_config["tracking_uri"],
             resume_from=loop_config["resume_from"])


def check_data(config: PretrainConfig) -> dict[str, Any]:
    """Everything about the data that can be wrong, checked on the driver before any worker starts: the
    folders, their files against their manifests, one tokenizer and seq_len, non-empty sources, the
    validation splits, the init checkpoint. Makes the paths absolute in `config`; returns check_mixture's summary."""
    from trainer.data import check_mixture, mixture_folders, resolve_mixture
    from trainer.data.loader import require_validation

    if config.mixture:
        config.mixture = resolve_mixture(config.mixture)
    else:
        config.tokens_dir = next(iter(resolve_mixture(config.tokens_dir)))
    data = check_mixture(config.data)
    if sum(data["sequences"].values()) < config.global_batch:
        raise ConfigError(f"the data holds {sum(data['sequences'].values()):,} sequences, fewer than one global batch of "
                          f"{config.global_batch} ({', '.join(data['sequences'])}): write more token shards or lower the batch")
    if config.val_sequences:
        for folder in mixture_folders(config.data):
            require_validation(folder)
    if config.init_checkpoint:
        config.init_checkpoint = str(Path(config.init_checkpoint).resolve())
        check_init_checkpoint(config, data["vocab_size"], data["tokenizer_sha256"])
    return data


def main(config: PretrainConfig) -> dict:
    from trainer.data import mixture_folders
    from trainer.tracked_run import train_tracked

    data = check_data(config)
    for key, weight in data["weights"].items():
        print(f"[pretrain] {key}: weight {weight:.3f}, {data['sequences'][key]:,} sequences of {data['seq_len']}", flush=True)
    summary = train_tracked(
        config,
        _worker,
        run_name="pretrain",
        fingerprint=fingerprint(config, data),
        extra_params={"tokenizer_sha256": data["tokenizer_sha256"], "train_sequences": sum(data["sequences"].values()),
                      "seq_len": data["seq_len"], "global_batch": config.global_batch},
        inputs={"training": mixture_folders(config.data)},
        tokenizer_dir=tokenizer_of(mixture_folders(config.data)[0]),
    )
    return {**summary, "corpus": config.corpus} if config.corpus else summary


def tokenizer_of(tokens_dir: Path) -> str | None:
    """The tokenizer folder the token shards were made with, as their job's config.json names it."""
    import json

    config = Path(tokens_dir) / "config.json"
    return json.loads(config.read_text()).get("tokenizer_dir") if config.is_file() else None


if __name__ == "__main__":
    raise SystemExit(run_job(PretrainConfig, main, recipes=RECIPES,
                             description="Masked diffusion pretraining (LLaDA) on token shards."))
