"""A DAG run's place in MLflow: one parent run per DAG run (in the DAG's experiment), every task's job a
child run under it, so the MLflow UI shows a build or a training stage as one row that opens into its
jobs. The task passes its place to the job in common.tracking.DAG_CONTEXT_ENV; the job's
common.tracking.mlflow_run reads it. The DAG's callbacks end the parent run with the DAG run's state.
"""

from __future__ import annotations

import functools
import subprocess
from typing import Any

from common.paths import PROJECT_ROOT
from common.tracking import DAG_RUN_TAG, find_dag_parent_run

@functools.cache
def git_commit() -> str:
    result = subprocess.run(["git", "rev-parse", "HEAD"], cwd=PROJECT_ROOT, capture_output=True, text=True)
    return result.stdout.strip() if result.returncode == 0 else ""


def dag_run_label(run_id: str) -> str:
    """`manual__2026-12-01T22:27:07.123+00:00` -> `manual 2026-12-01 22:27:07`: short, and still tells runs
    apart (two runs triggered in the same minute, as a person comparing settings does, differ in seconds)."""
    kind, _, when = run_id.partition("__")
    return f"{kind} {when[:19].replace('T', ' ')}" if when else run_id


def child_context(dag_id: str, run_id: str, task_id: str, try_number: int, logical_date: Any) -> dict[str, Any]:
    """The parent run of this DAG run (created by its first task), and what its child runs carry."""
    client, experiment_id, parent = find_dag_parent_run(dag_id, run_id)
    common_tags = {"airflow.dag_id": dag_id, "airflow.run_id": run_id, "airflow.logical_date": str(logical_date or ""),
                   "mlflow.source.git.commit": git_commit()}
    if parent is None:
        parent = client.create_run(experiment_id, run_name=f"{dag_id} · {dag_run_label(run_id)}",
                                   tags={**common_tags, DAG_RUN_TAG: f"{dag_id}/{run_id}", "airflow.try_number": str(try_number)})
    return {"parent_run_id": parent.info.run_id, "experiment": dag_id, "label": dag_run_label(run_id),
            "tags": {**common_tags, "airflow.task_id": task_id, "airflow.try_number": str(try_number)}}


def end_parent_run(context) -> None:
    """DAG callback: the DAG run's parent run ends FINISHED or FAILED with it."""
    dag_run = context["dag_run"]
    client, _, parent = find_dag_parent_run(dag_run.dag_id, dag_run.run_id)
    if parent is not None:
        state = str(getattr(dag_run.state, "value", dag_run.state))
        client.set_terminated(parent.info.run_id, status="FINISHED" if state == "success" else "FAILED")


def dag_callbacks() -> dict[str, Any]:
    """The `@dag(...)` arguments that end each DAG run's parent run."""
    return {"on_success_callback": end_parent_run, "on_failure_callback": end_parent_run}
