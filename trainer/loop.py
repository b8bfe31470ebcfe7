"""The training loop one Ray Train worker runs; pretraining and SFT plug in their data and loss.

The loop owns the steps; side effects (MLflow metrics, the checkpoint) happen on rank 0 only.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common.config import save_config
from common.files import write_json
from formats.checkpoint import CONFIG, TRAIN_METRICS, write_model_config
from trainer import distributed
from trainer.schedule import wsd_lr_factor


@dataclass
class Job:
    """What differs between pretraining and SFT."""

    model: Any
    """The freshly built (or loaded) MaskPredictor."""
    batches: Iterator[Any]
    """This rank's endless stream of micro-batches."""
    loss: Callable[[Any, Any, Any], tuple[Any, int]]
    """(engine, batch, torch.Generator) -> (scalar loss, tokens in the batch)."""


def run(config, build_job: Callable[[Any, int, int], Job], *, mlflow_run_id: str | None, tracking_uri: str | None) -> None:
    """Train `config.steps` optimizer steps; save the checkpoint and train_metrics.json beside it."""
    import torch

    rank, world_size = distributed.world()
    torch.manual_seed(config.seed)
    job = build_job(config, rank, world_size)
    engine = distributed.build_engine(
        job.model,
        config,
        lambda step: wsd_lr_factor(
            step,
            total_steps=config.steps,
            warmup_steps=config.warmup_steps,
            decay_fraction=config.decay_fraction,
            final_ratio=config.final_lr_ratio,
        ),
    )
    # Each rank masks differently (seed + rank) but reproducibly.
    generator = torch.Generator().manual_seed(config.seed * 1000 + rank)
    logger = _MetricLogger(mlflow_run_id, tracking_uri) if rank == 0 else None

    first_loss = last_loss = math.nan
    window_tokens, window_start = 0, time.perf_counter()
    for step in range(config.steps):
        step_loss = 0.0
        for _ in range(config.grad_accum_steps):
            batch = next(job.batches)
            loss, tokens = job.loss(engine, batch, generator)
            engine.backward(loss)
            engine.step()
            step_loss += loss.item() / config.grad_accum_steps
            window_tokens += tokens * world_size
        if step == 0:
            first_loss = step_loss
        last_loss = step_loss
        if not math.isfinite(step_loss):
            raise FloatingPointError(f"loss is {step_loss} at step {step}")
        if (step + 1) % config.log_every == 0 or step + 1 == config.steps:
            elapsed = time.perf_counter() - window_start
            metrics = {
                "loss": step_loss,
                "lr": engine.get_lr()[0],
                "tokens_per_s": window_tokens / max(elapsed, 1e-9),
            }
            if logger:
                logger.log(metrics, step + 1)
                _say(f"[{config.mlflow_experiment}] step {step + 1}/{config.steps} "
                     f"loss {metrics['loss']:.4f} lr {metrics['lr']:.2e} tokens/s {metrics['tokens_per_s']:.0f}")
            window_tokens, window_start = 0, time.perf_counter()

    output_dir = Path(config.output_dir)
    if rank == 0:
        output_dir.mkdir(parents=True, exist_ok=True)
    distributed.save_weights(engine, output_dir)
    if rank == 0:
        write_model_config(job.model.config, output_dir)
        save_config(config, output_dir / CONFIG)
        metrics = {"first_loss": first_loss, "final_loss": last_loss, "steps": config.steps}
        write_json(output_dir / TRAIN_METRICS, metrics)
        if logger:
            logger.log({"final_loss": last_loss}, config.steps)


def _say(line: str) -> None:
    # Not print(): Ray Train V2 patches print in its workers to both echo and log, so each line
    # would reach the job log twice.
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


class _MetricLogger:
    """Rank 0's MLflow metrics, one batched call per log step (each call is a round trip to a server)."""

    def __init__(self, run_id: str | None, tracking_uri: str | None) -> None:
        self.run_id = run_id
        if run_id:
            from mlflow import MlflowClient

            self.client = MlflowClient(tracking_uri=tracking_uri)

    def log(self, metrics: dict[str, float], step: int) -> None:
        if not self.run_id:
            return
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self.client.log_batch(self.run_id, metrics=[Metric(k, float(v), now, step) for k, v in metrics.items()])
