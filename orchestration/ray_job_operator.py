"""RayJobOperator: a DAG task that runs one project job (`python -m <module> key=value ...`) as a Ray job.

- **One job per task, across retries.** The submission id is fixed by the task instance: `llada-<dag>-
  <run>-<task>[-<map index>]` (made safe for a file name, plus a short hash of the exact values). A retry,
  or a task cleared in the UI while its job runs, looks that id up first (orchestration.ray_jobs.
  attach_or_submit): a running job is reattached, a succeeded one gives its result, and only after a
  failed or stopped one is a new job submitted, as `<id>-try-N`. Clearing a running task in the UI stops
  its job (below) and starts a new try at once, which may find the job still stopping (a training job
  saves a checkpoint first): when the job a try reattached to ends STOPPED, the try submits the next one
  (a training job then resumes from that checkpoint), so a clear reruns the job rather than failing.
- **Deferrable** (the default): once the job is submitted the task defers to RayJobTrigger, which
  follows the job on Airflow's triggerer (orchestration.ray_jobs.watch: the log streamed, the status
  polled with a growing interval), so no worker slot is held for the hours a training run takes. The
  task resumes only to return the job's result, or to fail with its status and the last lines of its log.
- **Stopping.** Killing the task (mark failed / clear in the UI; SIGTERM of a worker) stops the Ray job:
  `on_kill` on a worker, RayJobTrigger.on_kill on the triggerer. `execution_timeout` stops it too.

- **Corpus versions.** A task with `corpus="write"` writes the DAG run's corpus version, one with
  `corpus="read"` reads a complete one (latest resolved when it starts): either way its corpus folders
  come from that version's folder (orchestration/corpus_tasks.py).

Without RAY_ADDRESS a local Ray head is started for the job and the job is watched in the task (a
triggerer could not reach a head that lives and dies with one task).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import time
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

from airflow.sdk import BaseOperator
from airflow.triggers.base import BaseTrigger, TriggerEvent

from orchestration.ray_jobs import WatchSettings, attach_or_submit, client_for, job_command, raise_for, watch


def submission_base(dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> str:
    """The first try's submission id of one task instance: readable, a valid file name (Ray names the
    driver's log after it), and unique (a hash of the exact values: sanitizing could make two run ids equal)."""
    parts = [dag_id, run_id, task_id] + ([str(map_index)] if map_index >= 0 else [])
    digest = hashlib.sha256("\0".join(parts).encode()).hexdigest()[:8]
    readable = "-".join(re.sub(r"[^A-Za-z0-9_.]+", "-", part).strip("-") for part in parts)
    return f"llada-{readable}-{digest}"


JOB_LOGGER = "ray_job"
"""The trigger logs the job's lines under this name (a task that follows its job itself, under
airflow.task.operators.orchestration...): `AIRFLOW__LOGGING__NAMESPACE_LEVELS="ray_job=INFO
airflow.task.operators.orchestration=INFO"` keeps them when the rest of Airflow logs only warnings, as the
demo does."""


class RayJobTrigger(BaseTrigger):
    """Follows one Ray job on the triggerer and fires once, when it ends (or its deadline passes)."""

    _logger_name = JOB_LOGGER

    def __init__(self, address: str, submission_id: str, deadline: float | None = None,
                 settings: dict[str, float] | None = None, reattached: bool = False):
        super().__init__()
        self.address, self.submission_id, self.deadline = address, submission_id, deadline
        self.settings, self.reattached = settings or {}, reattached

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (f"{type(self).__module__}.{type(self).__qualname__}",
                {"address": self.address, "submission_id": self.submission_id, "deadline": self.deadline,
                 "settings": self.settings, "reattached": self.reattached})

    async def run(self) -> AsyncIterator[TriggerEvent]:
        try:
            outcome = await watch(self.address, self.submission_id, deadline=self.deadline,
                                  settings=WatchSettings(**self.settings), log=self.log.info)
        except Exception as e:  # noqa: BLE001 - reported to the task, which fails naming it
            outcome = {"submission_id": self.submission_id, "status": "UNKNOWN", "message": str(e), "result": {}, "tail": []}
        yield TriggerEvent({**outcome, "address": self.address, "reattached": self.reattached})

    async def on_kill(self) -> None:
        """The task was marked failed, cleared or marked succeeded while deferred: stop its job."""
        client = await asyncio.to_thread(client_for, self.address)
        self.log.info("stopping ray job %s", self.submission_id)
        await asyncio.to_thread(client.stop_job, self.submission_id)


class RayJobOperator(BaseOperator):
    """Run `python -m <module> <overrides(params)>` as a Ray job on $RAY_ADDRESS (or `address`)."""

    ui_color = "#e8f0fe"

    def __init__(self, *, module: str, overrides: Callable[[Mapping[str, Any]], dict[str, Any]], address: str | None = None,
                 corpus: str | None = None, deferrable: bool = True, poll_seconds: float = 2.0, max_poll_seconds: float = 30.0,
                 status_retries: int = 6, **kwargs):
        super().__init__(**kwargs)
        if corpus not in (None, "read", "write"):
            raise ValueError(f"corpus={corpus!r}: None, 'read' or 'write'")
        self.module, self.overrides, self.address, self.deferrable, self.corpus = module, overrides, address, deferrable, corpus
        self.watch_settings = {"poll_seconds": poll_seconds, "max_poll_seconds": max_poll_seconds, "status_retries": status_retries}
        self._running: tuple[str, str] | None = None  # (address, submission id) while this worker watches a job

    def execute(self, context) -> dict[str, Any]:
        address = self.address or os.environ.get("RAY_ADDRESS")
        if not address:
            from stack.local_ray import local_ray_cluster

            self.log.info("RAY_ADDRESS is not set: starting a local Ray head for this job")
            with local_ray_cluster() as head:
                return self._run(context, head.dashboard_url, deferrable=False)
        return self._run(context, address, deferrable=self.deferrable)

    def _run(self, context, address: str, *, deferrable: bool) -> dict[str, Any]:
        ti = context["ti"]
        base = submission_base(ti.dag_id, ti.run_id, ti.task_id, getattr(ti, "map_index", -1))
        params = self._params(context)
        if self.corpus:  # resolved once per try: the job's config records the version it got
            from orchestration.corpus_tasks import corpus_place

            params |= corpus_place(params, context["dag_run"], writing=self.corpus == "write")
        entrypoint = job_command(self.module, dict(self.overrides(params)))
        attached = attach_or_submit(client_for(address), base, self.module, entrypoint, log=self.log.info,
                                    env_vars=self._lineage(ti, context))
        reattached = attached.action == "reattached"
        deadline = time.time() + self.execution_timeout.total_seconds() if self.execution_timeout else None
        if attached.action != "succeeded" and deferrable:
            self.defer(trigger=RayJobTrigger(address, attached.submission_id, deadline, self.watch_settings, reattached),
                       method_name="execute_complete")
        self._running = (address, attached.submission_id)
        try:
            outcome = asyncio.run(watch(address, attached.submission_id, deadline=deadline,
                                        settings=WatchSettings(**self.watch_settings), log=self.log.info))
        finally:
            self._running = None
        return self.execute_complete(context, {**outcome, "address": address, "reattached": reattached})

    def _params(self, context) -> dict[str, Any]:
        """The DAG run's params; in a run started by an asset event, the work_dir (and corpus version) that
        event names."""
        from orchestration.assets import triggering_params

        params = dict(context["params"])
        if triggered := triggering_params(context):
            self.log.info("started by an asset event: %s", ", ".join(f"{k}={v}" for k, v in triggered.items()))
            params |= triggered
        return params

    def _lineage(self, ti, context) -> dict[str, str]:
        """The job's place in MLflow: a child of this DAG run's parent run (orchestration/mlflow_lineage.py)."""
        from common.tracking import DAG_CONTEXT_ENV
        from orchestration.mlflow_lineage import child_context

        try:
            place = child_context(ti.dag_id, ti.run_id, ti.task_id, ti.try_number, context.get("logical_date"))
        except Exception as e:  # noqa: BLE001 - MLflow unreachable: the job runs, its run stands alone
            self.log.warning("no MLflow parent run for this DAG run (%s); the job's run will stand alone", e)
            return {}
        return {DAG_CONTEXT_ENV: json.dumps(place)}

    def execute_complete(self, context, event: dict[str, Any]) -> dict[str, Any]:
        if event["status"] == "STOPPED" and event.get("reattached"):
            # the job this try found running was being stopped: the task was cleared while it ran
            self.log.warning("ray job %s, which this try reattached to, was stopped (clearing a running task stops "
                             "its job): submitting it again", event["submission_id"])
            return self._run(context, event["address"], deferrable=self.deferrable and bool(self.address or os.environ.get("RAY_ADDRESS")))
        if event["status"] == "UNKNOWN":
            raise RuntimeError(f"ray job {event['submission_id']} ({self.module}): lost track of it: {event['message']}")
        result = raise_for(event, self.module)
        if self.outlets:  # what the job wrote, on each asset event (orchestration/assets.py)
            from orchestration.assets import event_extra

            extra = event_extra(result, self._params(context))
            for asset in self.outlets:
                context["outlet_events"][asset].extra = extra
        return result

    def on_kill(self) -> None:
        if self._running:
            address, submission_id = self._running
            self.log.info("stopping ray job %s", submission_id)
            client_for(address).stop_job(submission_id)


def ray_job(module: str, config_cls: type | None = None, *, prefix: str = "",
            overrides: Callable[[Mapping[str, Any]], dict[str, Any]] | None = None, **kwargs) -> RayJobOperator:
    """The task of one job in a DAG: its overrides are its config's fields in the trigger form (under
    `prefix`) plus its folders under work_dir (orchestration.airflow_params.job_overrides), or `overrides`."""
    from orchestration.airflow_params import job_overrides

    if overrides is None:
        def overrides(params, _module=module, _config=config_cls, _prefix=prefix):
            return job_overrides(_module, _config, params, prefix=_prefix)

    return RayJobOperator(module=module, overrides=overrides, **kwargs)
