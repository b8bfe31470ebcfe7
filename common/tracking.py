"""MLflow: one local store under the state folder unless $MLFLOW_TRACKING_URI points at a server."""

from __future__ import annotations

import contextlib
import json
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
    ensure_experiment(mlflow, experiment)
    mlflow.set_experiment(experiment)
    return mlflow


DAG_CONTEXT_ENV = "LLADA_DAG_CONTEXT"
"""A job run by a DAG task finds its place in MLflow here (JSON, set by orchestration/mlflow_lineage.py):
the DAG run's parent run and experiment, a label of the DAG run for run names, and the task's tags."""

DAG_RUN_TAG = "llada.dag_run"
"""Tag of a DAG run's parent run, "<dag_id>/<run_id>": how its later tasks, and the demo, find it."""

# Experiments are model training, not GenAI: the tag MLflow 3's UI set aside for this, for the UIs that read
# it. MLflow 3.17's UI picks its view from the link instead (ui_link).
EXPERIMENT_KIND = ("mlflow.experimentKind", "custom_model_development")

TRAINING_VIEW = "workflowType=machine_learning"
"""MLflow 3.17's UI takes its view from a link's `workflowType`, else from the browser's last choice (GenAI
at first, where an experiment opens on traces): read off its bundle, where the experimentKind tag no longer
decides it. Links with this open on the model-training view (runs table, metric charts)."""


def ui_link(ui_url: str, experiment_id: str | None = None) -> str:
    """A link into the MLflow UI at `ui_url` that opens on its model-training view: the experiments, or one
    experiment's runs."""
    page = f"experiments/{experiment_id}/runs" if experiment_id else "experiments"
    return f"{ui_url.rstrip('/')}/#/{page}?{TRAINING_VIEW}"


def dag_context() -> dict[str, Any]:
    raw = os.environ.get(DAG_CONTEXT_ENV)
    return json.loads(raw) if raw else {}


def find_dag_parent_run(dag_id: str, run_id: str):
    """(client, the DAG's experiment id, the parent run of that DAG run or None): the parent run that
    orchestration/mlflow_lineage.py makes, found by its tag; the experiment is made when missing."""
    from mlflow import MlflowClient

    mlflow = setup_mlflow(dag_id)
    client = MlflowClient()
    experiment_id = mlflow.get_experiment_by_name(dag_id).experiment_id
    found = client.search_runs([experiment_id], filter_string=f"tags.`{DAG_RUN_TAG}` = '{dag_id}/{run_id}'", max_results=1)
    return client, experiment_id, found[0] if found else None


def describe_dag_run(dag_id: str, run_id: str) -> list[str]:
    """A DAG run's parent run and its children, one line each (the demo prints them)."""
    client, experiment_id, parent = find_dag_parent_run(dag_id, run_id)
    if parent is None:
        return [f"no MLflow parent run for {dag_id}/{run_id}"]
    children = client.search_runs([experiment_id], filter_string=f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'",
                                  order_by=["attributes.start_time ASC"])
    lines = [f"{parent.info.run_name}  ({parent.info.run_id}, {parent.info.status})"]
    return lines + [f"  └ {child.info.run_name}  ({child.info.run_id}, {child.info.status})" for child in children]


def ensure_experiment(mlflow, experiment: str) -> None:
    found = mlflow.get_experiment_by_name(experiment)
    if found is None:
        mlflow.create_experiment(experiment, artifact_location=f"{artifact_root()}/{experiment}", tags=dict([EXPERIMENT_KIND]))
    elif EXPERIMENT_KIND[0] not in found.tags:  # made before this tag was set, or by MLflow itself
        mlflow.MlflowClient().set_experiment_tag(found.experiment_id, *EXPERIMENT_KIND)


def run_label(job: str, *settings: object) -> str:
    """A run name a person can tell apart in a comparison: the job, then its key settings."""
    return " ".join([job, *(str(s) for s in settings if s not in (None, ""))])


@contextlib.contextmanager
def mlflow_run(experiment: str, run_name: str, params: dict[str, Any] | None = None, *, run_id: str | None = None,
               parent_run_id: str | None = None, tags: dict[str, str] | None = None,
               system_metrics: bool = False) -> Iterator[Any]:
    """Start a run and log `params`, or continue the run `run_id` (a resumed job: its params were logged
    when it started, and MLflow refuses to change a param); print its id so a DAG log can find it.
    `parent_run_id`: the new run is that run's child (MLflow's nested runs, shown under it).
    Run by a DAG task (dag_context()), a new run is a child of the DAG run's parent run, in its
    experiment, tagged with the task, and named with the DAG run's label. `system_metrics`: MLflow samples
    the machine's CPU, memory, disk, network and GPUs (when present) into the run meanwhile."""
    dag = dag_context()
    if dag and not run_id:
        experiment = dag["experiment"]
        parent_run_id = parent_run_id or dag["parent_run_id"]
        run_name = f"{run_name} · {dag['label']}"
        tags = {**dag["tags"], **(tags or {})}
    mlflow = setup_mlflow(experiment)
    tags = {**(tags or {}), **({"mlflow.parentRunId": parent_run_id} if parent_run_id else {})}
    run = mlflow.start_run(run_id=run_id, run_name=None if run_id else run_name, tags=tags or None,
                           log_system_metrics=system_metrics or None)
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


def log_folder_dataset(mlflow, folder: str | os.PathLike, *, context: str, name: str = "", version: str = "") -> None:
    """Record a stage's output folder (one with a manifest.json) as an input dataset of the active run:
    named `name` (default: after the folder), its digest the manifest's sha256 (MLflow keeps 36 characters;
    the whole one is the input's `manifest_sha256` tag), its source the folder's path, its `version` (a
    corpus version) an input tag."""
    from pathlib import Path

    from mlflow.data.dataset_source_registry import resolve_dataset_source
    from mlflow.data.meta_dataset import MetaDataset

    from common.files import sha256_of
    from common.job_harness import MANIFEST

    folder = Path(folder).resolve()
    digest = sha256_of(folder / MANIFEST)
    dataset = MetaDataset(source=resolve_dataset_source(folder.as_uri()), name=name or folder.name, digest=digest[:36])
    tags = {"manifest_sha256": digest, "path": str(folder)} | ({"version": version} if version else {})
    mlflow.log_input(dataset, context=context, tags=tags)


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
