"""Run a project job on Ray through the Job Submission API, streaming its log; used by the DAG tasks.

The job is the same command line a user types (`python -m <module> key=value ...`), so a DAG task
and a shell run do exactly the same thing.
"""

from __future__ import annotations

import json
import os
import shlex
import time
from typing import Any

from common.cli import RESULT_MARKER
from common.paths import PROJECT_ROOT


def job_command(module: str, overrides: dict[str, Any]) -> str:
    """The entry point: `cd <project> && python -m module key=value ...` (values JSON-encoded when not scalar)."""
    args = []
    for key, value in overrides.items():
        text = json.dumps(value) if isinstance(value, (list, dict)) else str(value)
        args.append(shlex.quote(f"{key}={text}"))
    workdir = os.environ.get("LLADA_JOB_WORKDIR") or str(PROJECT_ROOT)
    return f"cd {shlex.quote(workdir)} && python -m {module} {' '.join(args)}".rstrip()


def parse_result(logs: str) -> dict[str, Any] | None:
    """The job's summary, printed by common.cli.run_job as its last `JOB_RESULT {...}` line."""
    for line in reversed(logs.splitlines()):
        if line.startswith(RESULT_MARKER):
            return json.loads(line[len(RESULT_MARKER) :])
    return None


def submit_when_agent_is_up(client: Any, entrypoint: str, module: str, *, log=print, timeout: float = 120.0) -> str:
    """`client.submit_job`, retried while the head answers "No available agent": a head that just
    started (or a loaded machine) brings its job agent up some seconds after its dashboard."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return client.submit_job(entrypoint=entrypoint, metadata={"module": module})
        except RuntimeError as e:
            if "No available agent" not in str(e) or time.monotonic() > deadline:
                raise
            log("ray job agent not up yet; retrying the submission")
            time.sleep(3)


def submit_and_wait(module: str, overrides: dict[str, Any], *, address: str, poll_seconds: float = 2.0, log=print) -> dict[str, Any]:
    """Submit to the Ray cluster at `address`, stream its log through `log`, raise if the job fails."""
    from ray.job_submission import JobStatus, JobSubmissionClient

    client = JobSubmissionClient(address)
    entrypoint = job_command(module, overrides)
    job_id = submit_when_agent_is_up(client, entrypoint, module, log=log)
    log(f"submitted ray job {job_id} to {address}: {entrypoint}")
    shown = 0
    while True:
        status = client.get_job_status(job_id)
        logs = client.get_job_logs(job_id)
        for line in logs[shown:].splitlines():
            log(line)
        shown = len(logs)
        if status in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.STOPPED):
            break
        time.sleep(poll_seconds)
    if status != JobStatus.SUCCEEDED:
        info = client.get_job_info(job_id)
        tail = "\n".join(logs.splitlines()[-15:])
        raise RuntimeError(f"ray job {job_id} ({module}) {status.value}: {info.message}\n{tail}")
    return parse_result(logs) or {}


def run_ray_job(module: str, overrides: dict[str, Any], *, log=print) -> dict[str, Any]:
    """Submit to $RAY_ADDRESS, or to a local Ray head started for this job when it is unset."""
    address = os.environ.get("RAY_ADDRESS")
    if address:
        return submit_and_wait(module, overrides, address=address, log=log)
    from stack.local_ray import local_ray_cluster

    log("RAY_ADDRESS is not set: starting a local Ray head for this job")
    with local_ray_cluster() as head:
        return submit_and_wait(module, overrides, address=head.dashboard_url, log=log)
