"""The training loop one Ray Train worker runs; pretraining and SFT plug in their data and loss.

The loop owns the steps (OLMo-core's split): it draws this rank's micro-batches, runs forward and
backward through the DeepSpeed engine, and at sync points (the first and last step, every log_every and
checkpoint_every steps) reduces the step's loss and the tokens seen across ranks in one collective.
Everything else is a callback (trainer/callbacks.py): the console line, MLflow, metrics.jsonl,
training checkpoints, the stop request. Losses stay on the device between sync points: no `.item()`
per micro-batch.

Resuming is exact: the engine restores model, optimizer and scheduler; the data stream restores its
position; the masking noise of every micro-batch is a function of (seed, step, rank, micro-batch), so
a resumed step draws the same noise as the uninterrupted run.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from common.config import save_config
from common.files import write_json
from formats.checkpoint import (
    COMPLETE,
    CONFIG,
    MODEL_CONFIG,
    TOKENIZER_REF,
    TRAIN_METRICS,
    WEIGHTS,
    mark_complete,
    read_metrics_log,
    write_model_config,
    write_tokenizer_ref,
)
from trainer import distributed
from trainer.callbacks import is_log_step
from trainer.schedule import check_points, lr_at_step, wsd_lr_factor


class StepData(Protocol):
    """This rank's stream of training data, one optimizer step at a time."""

    def next_step(self) -> list[Any]:
        """The micro-batches of the next optimizer step (grad_accum_steps of them)."""
        ...

    def state_dict(self) -> dict:
        """The stream's position: a few integers, saved in every checkpoint."""
        ...

    def load_state_dict(self, state: dict) -> None: ...


@dataclass
class Job:
    """What differs between pretraining and SFT."""

    model: Any
    """The freshly built (or loaded) MaskPredictor."""
    data: StepData
    """This rank's data."""
    loss: Callable[[Any, Any, Any], tuple[Any, int]]
    """(engine, micro-batch, torch.Generator) -> (scalar loss, tokens in the micro-batch)."""
    fingerprint: dict[str, Any]
    """What a run resuming this one must share (config keys, data identity); see trainer.config.FINGERPRINTED."""
    sources: Callable[[Any], dict[str, int]] = lambda batch: {}
    """Tokens per data source in a micro-batch (mixtures); empty when there is one source."""
    tokens_per_step: int | None = None
    """Tokens of every optimizer step over all ranks when that is fixed (pretraining): lets lr_schedule count tokens."""
    validation: Any = None
    """The fixed validation set (trainer/validation.py), or None."""


@dataclass
class TrainState:
    """Where the run is: saved in every checkpoint, updated at sync points."""

    step: int = 0
    tokens: int = 0
    tokens_by_source: dict[str, int] = field(default_factory=dict)
    first_loss: float = math.nan
    mlflow_run_id: str | None = None


def masking_generator(seed: int, step: int, rank: int, micro_batch: int):
    """The torch.Generator of one micro-batch's forward-process noise: the same on a rerun of that step."""
    import numpy as np
    import torch

    return torch.Generator().manual_seed(int(np.random.SeedSequence([seed, step, rank, micro_batch]).generate_state(1)[0]))


def lr_factor(config, tokens_per_step: int | None = None) -> Callable[[int], float]:
    """Multiplier of config.lr at each optimizer step (0-based): lr_schedule's points when given, else
    warmup-stable-decay from warmup_steps, decay_fraction and final_lr_ratio."""
    if config.lr_schedule:
        points = check_points(config.lr_schedule)
        return lambda step: lr_at_step(step, points=points, unit=config.lr_schedule_unit, total_steps=config.steps,
                                       tokens_per_step=tokens_per_step) / config.lr
    return lambda step: wsd_lr_factor(
        step,
        total_steps=config.steps,
        warmup_steps=config.warmup_steps,
        decay_fraction=config.decay_fraction,
        final_ratio=config.final_lr_ratio,
    )


def is_sync_step(config, step: int) -> bool:
    """Steps (counted from 1) whose loss and tokens are reduced across ranks: logged, evaluated or checkpointed."""
    every = config.checkpoint_every
    return step == 1 or is_log_step(config, step) or bool(every and step % every == 0)


def run(config, build_job: Callable[[Any, int, int], Job], *, mlflow_run_id: str | None, tracking_uri: str | None,
        resume_from: str | None = None) -> None:
    """Train up to `config.steps` optimizer steps, from the newest checkpoint if there is one; then export."""
    import torch

    from trainer.callbacks import default_callbacks
    from trainer.checkpointing import load_checkpoint, resume_point

    rank, world_size = distributed.world()
    distributed.set_threads(config)
    torch.manual_seed(config.seed)
    job = build_job(config, rank, world_size)
    engine = distributed.build_engine(job.model, config, lr_factor(config, job.tokens_per_step))
    state = TrainState(mlflow_run_id=mlflow_run_id)
    start = resume_point(config.output_dir, resume_from, warn=_say if rank == 0 else lambda _: None)
    if start is not None:
        saved = load_checkpoint(engine, start)
        job.data.load_state_dict(saved["data"])
        state = TrainState(**{**saved["train"], "mlflow_run_id": mlflow_run_id})
        if rank == 0:
            _say(f"[{config.mlflow_experiment}] resuming at step {state.step} from {start}")
    callbacks = default_callbacks(config, rank, world_size, job, run_id=mlflow_run_id, tracking_uri=tracking_uri, say=_say)
    for callback in callbacks:
        callback.on_start(state, resumed=start is not None)

    sources = sorted(job.fingerprint.get("sources", []))
    pending = torch.zeros(1 + len(sources), dtype=torch.float64)  # tokens since the last sync, then by source
    while state.step < config.steps:
        step_loss = torch.zeros((), device=engine.device)
        micro_batches = job.data.next_step()
        for index, batch in enumerate(micro_batches):
            loss, tokens = job.loss(engine, batch, masking_generator(config.seed, state.step, rank, index))
            engine.backward(loss)
            engine.step()
            step_loss += loss.detach() / len(micro_batches)
            pending[0] += tokens
            for name, count in job.sources(batch).items():
                pending[1 + sources.index(name)] += count
        state.step += 1
        if not is_sync_step(config, state.step):
            continue
        # One collective per sync point: the step's loss, the tokens since the last one, the stop votes.
        stop_vote = torch.tensor([float(any(callback.wants_stop() for callback in callbacks))], dtype=torch.float64)
        totals = distributed.all_reduce_sum(torch.cat([step_loss.double().cpu().reshape(1), pending, stop_vote]), engine.device)
        loss_value, stop = totals[0].item() / world_size, bool(totals[-1] > 0)
        state.tokens += int(totals[1])
        for name, count in zip(sources, totals[2:-1].tolist()):
            state.tokens_by_source[name] = state.tokens_by_source.get(name, 0) + int(count)
        pending.zero_()
        if state.step == 1 and math.isnan(state.first_loss):
            state.first_loss = loss_value
        if not math.isfinite(loss_value):
            raise FloatingPointError(f"loss is {loss_value} at step {state.step}")
        metrics = {"loss": loss_value, "lr": engine.get_lr()[0]}
        for callback in callbacks:
            callback.on_sync(state, metrics, engine=engine, stop=stop)
        if stop:
            if rank == 0:
                _say(f"[{config.mlflow_experiment}] stopped at step {state.step} on request; rerun to resume")
            return
    for callback in callbacks:
        callback.on_end(state, engine=engine)
    export(config, engine, job, state, rank)


def export(config, engine, job: Job, state: TrainState, rank: int) -> None:
    """The final export: model.pt, model_config.json, config.json, train_metrics.json, then complete.json."""
    output_dir = Path(config.output_dir)
    if rank == 0:
        output_dir.mkdir(parents=True, exist_ok=True)
        (output_dir / COMPLETE).unlink(missing_ok=True)
    distributed.save_weights(engine, output_dir)
    if rank == 0:
        write_model_config(job.model.config, output_dir)
        save_config(config, output_dir / CONFIG)
        last = read_metrics_log(output_dir)[-1]  # the last step is always logged (and evaluated)
        metrics = {"first_loss": state.first_loss, "final_loss": last["loss"], "steps": state.step}
        if "val_loss" in last:
            metrics["val_loss"] = last["val_loss"]
        write_json(output_dir / TRAIN_METRICS, metrics)
        names = [WEIGHTS, MODEL_CONFIG, CONFIG, TRAIN_METRICS]
        if job.fingerprint.get("tokenizer_sha256"):
            write_tokenizer_ref(output_dir, job.fingerprint["tokenizer_sha256"], job.fingerprint["vocab_size"])
            names.append(TOKENIZER_REF)
        mark_complete(output_dir, names)


def _say(line: str) -> None:
    # Not print(): Ray Train V2 patches print in its workers to both echo and log, so each line
    # would reach the job log twice.
    import sys

    sys.stdout.write(line + "\n")
    sys.stdout.flush()
