"""The side effects of training, each its own callback (OLMo-core's split): the loop owns the steps.

Every callback sees the same events: `on_start` (after a resume, if any), `on_sync` at each sync point
(with the step's loss reduced over ranks), `on_end` after the last step. Rank 0 alone writes the
console line, MLflow and metrics.jsonl; every rank takes part in a checkpoint and in a stop request.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from common.files import write_atomically
from formats.checkpoint import METRICS_LOG, STOP_REQUEST, read_metrics_log


def is_eval_step(config, step: int) -> bool:
    """Steps after which the validation loss is computed: every eval_every-th and the last."""
    return config.val_sequences > 0 and (step == config.steps or bool(config.eval_every and step % config.eval_every == 0))


def is_log_step(config, step: int) -> bool:
    """Steps whose metrics are logged: every log_every-th, every evaluation and the last. (Step 1 is a sync
    point too, for train_metrics.json's first_loss, but not logged.)"""
    return step == config.steps or step % config.log_every == 0 or is_eval_step(config, step)


class Callback:
    def on_start(self, state, *, resumed: bool) -> None: ...

    def wants_stop(self) -> bool:
        return False

    def on_sync(self, state, metrics: dict[str, float], *, engine: Any, stop: bool) -> None: ...

    def on_end(self, state, *, engine: Any) -> None: ...


class ConsoleLog(Callback):
    """`[pretrain] step 20/200 loss ... lr ... tokens/s ...` at every log step."""

    def __init__(self, config, say):
        self.config, self.say = config, say
        self.tokens, self.started = 0, time.perf_counter()

    def on_start(self, state, *, resumed: bool) -> None:
        self.tokens, self.started = state.tokens, time.perf_counter()

    def on_sync(self, state, metrics, *, engine, stop) -> None:
        if not is_log_step(self.config, state.step):
            return
        elapsed = max(time.perf_counter() - self.started, 1e-9)
        metrics["tokens_per_s"] = (state.tokens - self.tokens) / elapsed
        self.tokens, self.started = state.tokens, time.perf_counter()
        validation = f" val_loss {metrics['val_loss']:.4f}" if "val_loss" in metrics else ""
        self.say(
            f"[{self.config.mlflow_experiment}] step {state.step}/{self.config.steps} loss {metrics['loss']:.4f}{validation} "
            f"lr {metrics['lr']:.2e} tokens/s {metrics['tokens_per_s']:.0f}"
        )


class MetricsFile(Callback):
    """output_dir/metrics.jsonl: one line per logged step. A resumed run first drops the lines after its
    checkpoint (the steps it will train again), so the file holds each step once."""

    def __init__(self, config):
        self.config = config
        self.path = Path(config.output_dir) / METRICS_LOG

    def on_start(self, state, *, resumed: bool) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        kept = []
        if resumed and self.path.is_file():
            kept = [line for line in self.path.read_text(encoding="utf-8").splitlines() if json.loads(line)["step"] <= state.step]
        write_atomically(self.path, "".join(line + "\n" for line in kept))

    def on_sync(self, state, metrics, *, engine, stop) -> None:
        if not is_log_step(self.config, state.step):
            return
        line = {"step": state.step, "loss": metrics["loss"], "lr": metrics["lr"], "tokens": state.tokens}
        if "val_loss" in metrics:
            line["val_loss"] = metrics["val_loss"]
        if state.tokens_by_source:
            line["tokens_by_source"] = dict(sorted(state.tokens_by_source.items()))
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(line) + "\n")


class MLflowMetrics(Callback):
    """Rank 0's MLflow metrics, one batch per log step, sent in the background (common.tracking.MetricSender):
    a round trip to the server never stalls a step, and a server outage is retried, not fatal.

    A resumed run logs into the same run; steps that run already logged before it was stopped are
    skipped, so no step appears twice in a metric's history."""

    def __init__(self, config, run_id: str, tracking_uri: str | None, say):
        from mlflow import MlflowClient

        from common.tracking import MetricSender

        self.config, self.run_id = config, run_id
        self.client = MlflowClient(tracking_uri=tracking_uri)
        self.sender = MetricSender(self.client, run_id, warn=say)
        self.logged_up_to = 0

    def on_start(self, state, *, resumed: bool) -> None:
        if resumed:
            history = self.client.get_metric_history(self.run_id, "loss")
            self.logged_up_to = max((m.step for m in history), default=0)

    def on_sync(self, state, metrics, *, engine, stop) -> None:
        if is_log_step(self.config, state.step) and state.step > self.logged_up_to:
            values = {**metrics, "tokens": state.tokens}
            values |= {f"tokens.{source}": count for source, count in state.tokens_by_source.items()}
            self.sender.send(values, state.step)
        if stop:
            self.sender.flush()

    def on_end(self, state, *, engine) -> None:
        if state.step > self.logged_up_to:
            self.sender.send({"final_loss": read_metrics_log(self.config.output_dir)[-1]["loss"]}, state.step)
        self.sender.flush()


class Checkpointer(Callback):
    """A training checkpoint every checkpoint_every steps, on a stop request, and after the last step."""

    def __init__(self, config, rank: int, job, say):
        self.config, self.rank, self.job, self.say = config, rank, job, say
        self.saved_at = -1

    def on_start(self, state, *, resumed: bool) -> None:
        self.saved_at = state.step if resumed else -1

    def on_sync(self, state, metrics, *, engine, stop) -> None:
        every = self.config.checkpoint_every
        if stop or (every and state.step % every == 0):
            self.save(state, engine)

    def on_end(self, state, *, engine) -> None:
        if self.saved_at != state.step:
            self.save(state, engine)

    def save(self, state, engine) -> None:
        import dataclasses

        from trainer.checkpointing import save_checkpoint

        train = {k: v for k, v in dataclasses.asdict(state).items() if k != "mlflow_run_id"}
        trainer_state = {
            "step": state.step,
            "train": train,
            "data": self.job.data.state_dict(),
            "mlflow_run_id": state.mlflow_run_id,
            "fingerprint": self.job.fingerprint,
        }
        folder = save_checkpoint(engine, self.config.output_dir, state.step, trainer_state, rank=self.rank, keep=self.config.keep_checkpoints)
        self.saved_at = state.step
        if self.rank == 0:
            self.say(f"[{self.config.mlflow_experiment}] checkpoint {folder}")


class Validation(Callback):
    """The validation loss (trainer/validation.py) at every evaluation step, computed by all ranks
    together; it adds `val_loss` to the metrics the callbacks after it log."""

    def __init__(self, config, rank: int, world_size: int, validation, say):
        self.config, self.rank, self.world_size, self.validation, self.say = config, rank, world_size, validation, say

    def on_start(self, state, *, resumed: bool) -> None:
        if self.rank == 0 and not resumed:
            self.say(f"[{self.config.mlflow_experiment}] validation: {self.validation.sequences} fixed sequences")

    def on_sync(self, state, metrics, *, engine, stop) -> None:
        from trainer.validation import validation_loss

        if is_eval_step(self.config, state.step):
            metrics["val_loss"] = validation_loss(engine, self.validation, rank=self.rank, world_size=self.world_size)


class StopRequest(Callback):
    """A stop asked for by the driver (it writes output_dir/stop_requested on SIGTERM): every rank votes
    at the next sync point, and the loop saves a checkpoint and ends there."""

    def __init__(self, config):
        self.path = Path(config.output_dir) / STOP_REQUEST

    def wants_stop(self) -> bool:
        return self.path.exists()


def default_callbacks(config, rank: int, world_size: int, job, *, run_id: str | None, tracking_uri: str | None,
                      say) -> list[Callback]:
    callbacks: list[Callback] = [StopRequest(config)]
    if job.validation is not None:  # first: the loggers after it see val_loss
        callbacks.append(Validation(config, rank, world_size, job.validation, say))
    if rank == 0:
        callbacks += [ConsoleLog(config, say), MetricsFile(config)]
        if run_id:
            callbacks.append(MLflowMetrics(config, run_id, tracking_uri, say))
    callbacks.append(Checkpointer(config, rank, job, say))
    return callbacks
