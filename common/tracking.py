"""MLflow: one local store under the state folder unless $MLFLOW_TRACKING_URI points at a server."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
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
def mlflow_run(experiment: str, run_name: str, params: dict[str, Any] | None = None, *, run_id: str | None = None) -> Iterator[Any]:
    """Start a run and log `params`, or continue the run `run_id` (a resumed job: its params were logged
    when it started, and MLflow refuses to change a param); print its id so a DAG log can find it."""
    mlflow = setup_mlflow(experiment)
    run = mlflow.start_run(run_id=run_id, run_name=None if run_id else run_name)
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
