"""MLflow: one local store under the state folder unless $MLFLOW_TRACKING_URI points at a server."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any

from common.paths import state_dir
from common.termination import Terminated


def tracking_uri() -> str:
    uri = os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return uri
    return f"sqlite:///{state_dir() / 'mlflow' / 'mlflow.db'}"


def artifact_root() -> str:
    return os.environ.get("MLFLOW_ARTIFACT_ROOT") or (state_dir() / "mlflow" / "artifacts").as_uri()


def setup_mlflow(experiment: str):
    """Point mlflow at the store and make sure `experiment` exists; returns the mlflow module."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    import mlflow

    uri = tracking_uri()
    if uri.startswith("sqlite:///"):
        (state_dir() / "mlflow").mkdir(parents=True, exist_ok=True)
    previous = os.environ.get("MLFLOW_TRACKING_URI")
    mlflow.set_tracking_uri(uri)
    # set_tracking_uri also exports MLFLOW_TRACKING_URI; undo that so a later LLADA_STATE_DIR still counts.
    if previous is None:
        os.environ.pop("MLFLOW_TRACKING_URI", None)
    if mlflow.get_experiment_by_name(experiment) is None:
        mlflow.create_experiment(experiment, artifact_location=f"{artifact_root()}/{experiment}")
    mlflow.set_experiment(experiment)
    return mlflow


@contextlib.contextmanager
def mlflow_run(experiment: str, run_name: str, params: dict[str, Any] | None = None, *, run_id: str | None = None,
               parent_run_id: str | None = None) -> Iterator[Any]:
    """Start a run and log `params`, or continue the run `run_id` (a resumed job: its params were logged
    when it started, and MLflow refuses to change a param); print its id so a DAG log can find it.
    `parent_run_id`: the new run is that run's child (MLflow's nested runs, shown under it)."""
    mlflow = setup_mlflow(experiment)
    tags = {"mlflow.parentRunId": parent_run_id} if parent_run_id else None
    run = mlflow.start_run(run_id=run_id, run_name=None if run_id else run_name, tags=tags)
    # Ended by hand, not by start_run's context (which says FAILED for any exception): a SIGTERM is KILLED.
    # A block that ends the run itself (mlflow.end_run) leaves nothing active, and the end_run below does nothing.
    try:
        if params and not run_id:
            mlflow.log_params({k: (str(v)[:6000]) for k, v in params.items()})
        print(f"mlflow run: {run.info.run_id} (experiment {experiment}{', continued' if run_id else ''})", flush=True)
        yield run
    except Terminated:
        mlflow.end_run(status="KILLED")
        raise
    except BaseException:
        mlflow.end_run(status="FAILED")
        raise
    mlflow.end_run(status="FINISHED")


class MetricSender:
    """Metric batches sent to one MLflow run in the background, in order, each retried with backoff while
    the tracking server cannot be reached (a restart, a network cut): the sender never raises, so an
    outage never stops the job that logs. MLflow's HTTP client retries each request a few times on its
    own (MLFLOW_HTTP_REQUEST_MAX_RETRIES); this keeps retrying past that, up to `give_up_after` seconds
    per batch, then drops the batch with a warning (training keeps its own record: metrics.jsonl)."""

    def __init__(self, client, run_id: str, *, give_up_after: float = 900.0, max_delay: float = 30.0,
                 warn: Callable[[str], None] = print):
        self.client, self.run_id = client, run_id
        self.give_up_after, self.max_delay, self.warn = give_up_after, max_delay, warn
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mlflow-metrics")  # one thread: in order
        self._pending: list[Future] = []  # touched by the caller's thread only
        self.failed_batches = 0

    def send(self, metrics: dict[str, float], step: int) -> None:
        """Queue one step's metrics; returns at once."""
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        batch = [Metric(key, float(value), now, step) for key, value in metrics.items()]
        self._pending = [future for future in self._pending if not future.done()]
        self._pending.append(self._executor.submit(self._send_with_retry, batch, step))

    def flush(self) -> None:
        """Wait until every queued batch is sent (or given up)."""
        wait(self._pending)

    def _send_with_retry(self, batch: list, step: int) -> None:
        deadline, delay, attempt = time.monotonic() + self.give_up_after, 1.0, 0
        while True:
            try:
                self.client.log_batch(self.run_id, metrics=batch)
                if attempt:
                    self.warn(f"mlflow: reachable again; step {step}'s metrics sent after {attempt} failed attempts")
                return
            except Exception as error:  # an outage is any error: connection refused, 5xx, a timeout
                attempt += 1
                if time.monotonic() + delay > deadline:
                    self.failed_batches += 1
                    self.warn(f"mlflow: giving up on step {step}'s metrics after {attempt} attempts ({error}); "
                              "metrics.jsonl still has them")
                    return
                if attempt == 1:
                    self.warn(f"mlflow: cannot log step {step} ({type(error).__name__}: {str(error)[:200]}); "
                              f"retrying with backoff for up to {self.give_up_after:.0f} s, training goes on")
                time.sleep(delay)
                delay = min(delay * 2, self.max_delay)
