"""A DAG run's MLflow parent run: created by its first task, found by the others, carried to each job."""

import json

from common.tracking import DAG_CONTEXT_ENV, describe_dag_run, mlflow_run, run_label
from orchestration.mlflow_lineage import child_context, dag_run_label


def test_labels_tell_runs_apart():
    assert dag_run_label("manual__2026-12-01T22:27:07.123456+00:00") == "manual 2026-12-01 22:27:07"
    assert dag_run_label("scheduled__2026-12-02T00:00:00+00:00") == "scheduled 2026-12-02 00:00:00"
    assert run_label("pretrain", "tiny", "2x", "zero2", "", None, "bf16") == "pretrain tiny 2x zero2 bf16"


def test_tasks_of_one_dag_run_share_a_parent_and_their_jobs_nest_under_it(monkeypatch):
    run_id = "manual__2026-12-01T10:00:00+00:00"
    first = child_context("lineage_dag", run_id, "first", 1, "2026-12-01T10:00:00+00:00")
    second = child_context("lineage_dag", run_id, "second", 2, "2026-12-01T10:00:00+00:00")
    other = child_context("lineage_dag", "manual__2026-12-02T10:00:00+00:00", "first", 1, None)
    assert first["parent_run_id"] == second["parent_run_id"] != other["parent_run_id"]
    assert (second["tags"]["airflow.task_id"], second["tags"]["airflow.try_number"]) == ("second", "2")

    monkeypatch.setenv(DAG_CONTEXT_ENV, json.dumps(second))
    with mlflow_run("ignored_when_run_by_a_dag", "job settings") as run:  # what the job does
        pass
    assert run.data.tags["mlflow.parentRunId"] == first["parent_run_id"]
    lines = describe_dag_run("lineage_dag", run_id)
    assert lines[0].startswith("lineage_dag · manual 2026-12-01 10:00:00  (")
    assert lines[1].startswith("  └ job settings · manual 2026-12-01 10:00:00  (") and "FINISHED" in lines[1]
