"""Run a project job on Ray through the Job Submission API: the client half of the DAG tasks' operator
(orchestration/ray_job_operator.py), free of Airflow so that a script or a test can use it alone.

The job is the same command line a user types (`python -m <module> key=value ...`), so a DAG task
and a shell run do exactly the same thing. A job has a submission id chosen by the caller (the operator
derives it from the task instance), so a retry finds the job its earlier try started instead of
submitting a second one: `find_tries` and `attach_or_submit`. `watch` follows a job to its end: the log
streamed incrementally (Ray's websocket tail, resumed from an offset after a dropped connection), the
status polled with a growing interval and retried with backoff when a poll fails, the job stopped at a
deadline. It is a coroutine, so the operator's trigger runs it on Airflow's triggerer as it is.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from common.cli import RESULT_MARKER
from common.paths import PROJECT_ROOT

TERMINAL = ("SUCCEEDED", "FAILED", "STOPPED")
STOP_GRACE_SECONDS = 120
"""How long a stopped job (stop_job: a killed or cleared task, a timeout) may take to end after its SIGTERM
before Ray kills it: a training job saves a checkpoint first (trainer/tracked_run.py), which takes longer
than Ray's default of 3 s (RAY_JOB_STOP_WAIT_TIME_S, read by the job's supervisor from the job's env)."""
TAIL_LINES = 20


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


def client_for(address: str):
    import logging

    from ray.job_submission import JobSubmissionClient

    logging.getLogger("ray.dashboard.modules.job.sdk").setLevel(logging.WARNING)  # not a line per closed log stream
    return JobSubmissionClient(address)


# ------------------------------------------------------------------------------------------------ tries


def try_id(base: str, attempt: int) -> str:
    """The submission id of attempt 1, 2, ...: `base`, then `base-try-2`, ..."""
    return base if attempt == 1 else f"{base}-try-{attempt}"


def find_tries(client, base: str) -> list[tuple[int, Any]]:
    """The cluster's jobs submitted under `base` (by earlier tries of one task), oldest attempt first."""
    pattern = re.compile(re.escape(base) + r"(?:-try-(\d+))?")
    found = []
    for job in client.list_jobs():
        match = pattern.fullmatch(job.submission_id or "")
        if match:
            found.append((int(match.group(1) or 1), job))
    return sorted(found, key=lambda pair: pair[0])


@dataclass(frozen=True)
class Attached:
    """What `attach_or_submit` found or did: the job to watch (`submission_id`), and why."""

    submission_id: str
    action: str  # "submitted" | "reattached" | "succeeded" (an earlier try's job finished: take its result)


def attach_or_submit(client, base: str, module: str, entrypoint: str, *, log: Callable[[str], None] = print,
                     env_vars: dict[str, str] | None = None, agent_timeout: float = 120.0) -> Attached:
    """Reattach to the newest try under `base` while it runs, take it when it succeeded, else submit the
    next try (`base-try-N` after N - 1 failed or stopped ones), with `env_vars` in the job's environment."""
    tries = find_tries(client, base)
    if tries:
        attempt, job = tries[-1]
        status = str(job.status.value if hasattr(job.status, "value") else job.status)
        if status not in TERMINAL:
            log(f"ray job {job.submission_id} of an earlier try is {status}: reattaching, not submitting again")
            return Attached(job.submission_id, "reattached")
        if status == "SUCCEEDED":
            log(f"ray job {job.submission_id} of an earlier try succeeded: taking its result")
            return Attached(job.submission_id, "succeeded")
        log(f"ray job {job.submission_id} of an earlier try {status}: submitting try {attempt + 1}")
        submission_id = try_id(base, attempt + 1)
    else:
        submission_id = base
    _submit_when_agent_is_up(client, entrypoint, module, submission_id, env_vars or {}, log=log, timeout=agent_timeout)
    log(f"submitted ray job {submission_id}: {entrypoint}")
    return Attached(submission_id, "submitted")


def _submit_when_agent_is_up(client, entrypoint: str, module: str, submission_id: str, env_vars: dict[str, str], *, log,
                             timeout: float) -> None:
    """`client.submit_job`, retried while the head answers "No available agent": a head that just
    started (or a loaded machine) brings its job agent up some seconds after its dashboard."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            # the job's output lock names it (common/locks.py)
            client.submit_job(entrypoint=entrypoint, submission_id=submission_id, metadata={"module": module},
                              runtime_env={"env_vars": {"LLADA_JOB_OWNER": f"ray job {submission_id}",
                                                        "RAY_JOB_STOP_WAIT_TIME_S": str(STOP_GRACE_SECONDS), **env_vars}})
            return
        except RuntimeError as e:
            if "No available agent" not in str(e) or time.monotonic() > deadline:
                raise
            log("ray job agent not up yet; retrying the submission")
            time.sleep(3)


# ------------------------------------------------------------------------------------------------ watch


@dataclass(frozen=True)
class WatchSettings:
    """How a job is followed. The status poll's interval grows from `poll_seconds` by half each poll up to
    `max_poll_seconds` (a week-long run is polled twice a minute, not every 2 s; its log streams meanwhile);
    a failed poll is retried `status_retries` times, waiting 1, 2, 4, ... s, before the watch fails."""

    poll_seconds: float = 2.0
    max_poll_seconds: float = 30.0
    status_retries: int = 6
    log_reconnects: int = 5


async def watch(address: str, submission_id: str, *, deadline: float | None = None, settings: WatchSettings = WatchSettings(),
                log: Callable[[str], None] = print) -> dict[str, Any]:
    """Follow one job to its end; returns {"submission_id", "status", "message", "result", "tail"} where
    status is the job's terminal status, or "TIMEOUT" when `deadline` (epoch seconds) came first and the
    job was stopped. Blocking client calls run in threads: this runs on a shared event loop (the triggerer's)."""
    client = await asyncio.to_thread(client_for, address)
    stream_done = asyncio.Event()
    streamer = asyncio.create_task(_stream_log(client, submission_id, log, stream_done, settings))
    try:
        wait = settings.poll_seconds
        while True:
            status = await _status(client, submission_id, settings, log)
            if status in TERMINAL:
                break
            if deadline is not None and time.time() >= deadline:
                log(f"ray job {submission_id}: execution timeout reached; stopping it")
                await asyncio.to_thread(client.stop_job, submission_id)
                return {**await _outcome(client, submission_id), "status": "TIMEOUT"}
            if stream_done.is_set():  # the log ended: the status follows within moments
                await asyncio.sleep(min(wait, settings.poll_seconds))
            else:
                remaining = wait if deadline is None else max(0.0, min(wait, deadline - time.time()))
                try:
                    await asyncio.wait_for(stream_done.wait(), timeout=remaining)
                except TimeoutError:
                    pass
            wait = min(wait * 1.5, settings.max_poll_seconds)
        try:  # the last lines are usually still in flight
            await asyncio.wait_for(asyncio.shield(streamer), timeout=10)
        except (TimeoutError, asyncio.TimeoutError):
            pass
        return await _outcome(client, submission_id)
    finally:
        streamer.cancel()


async def _status(client, submission_id: str, settings: WatchSettings, log) -> str:
    for attempt in range(settings.status_retries + 1):
        try:
            status = await asyncio.to_thread(client.get_job_status, submission_id)
            return str(status.value if hasattr(status, "value") else status)
        except Exception as e:  # noqa: BLE001 - connection errors of every kind (requests, Ray's RuntimeError)
            if attempt == settings.status_retries:
                raise RuntimeError(f"ray job {submission_id}: the status poll failed {attempt + 1} times; last error: {e}") from e
            delay = 2.0**attempt
            log(f"ray job {submission_id}: status poll failed ({type(e).__name__}: {e}); retrying in {delay:.0f}s")
            await asyncio.sleep(delay)
    raise AssertionError("unreachable")


async def _stream_log(client, submission_id: str, log, done: asyncio.Event, settings: WatchSettings) -> None:
    """Print the job's log as it grows, line by line. Ray's tail endpoint starts from the beginning on
    every connection, so after a dropped connection the part already shown is skipped."""
    shown, pending = 0, ""
    for attempt in range(settings.log_reconnects + 1):
        seen = 0
        try:
            async for chunk in client.tail_job_logs(submission_id):
                new = chunk[max(0, shown - seen):] if seen < shown else chunk
                seen += len(chunk)
                shown = max(shown, seen)
                pending += new
                *lines, pending = pending.split("\n")
                for line in lines:
                    log(line)
            break
        except asyncio.CancelledError:
            raise
        except Exception as e:  # noqa: BLE001 - a dropped websocket: reconnect
            if attempt == settings.log_reconnects:
                log(f"ray job {submission_id}: the log stream failed ({e}); its tail follows at the end")
                break
            await asyncio.sleep(2.0**attempt)
    if pending:
        log(pending)
    done.set()


async def _outcome(client, submission_id: str) -> dict[str, Any]:
    """The finished job's result, read once from its whole log (its last lines name the error)."""
    info = await asyncio.to_thread(client.get_job_info, submission_id)
    logs = await asyncio.to_thread(client.get_job_logs, submission_id)
    status = info.status.value if hasattr(info.status, "value") else str(info.status)
    return {"submission_id": submission_id, "status": status, "message": info.message or "",
            "result": parse_result(logs) or {}, "tail": logs.splitlines()[-TAIL_LINES:]}


def raise_for(outcome: dict[str, Any], module: str) -> dict[str, Any]:
    """The job's result, or an error naming the job, its status and the last lines of its log."""
    if outcome["status"] == "SUCCEEDED":
        return outcome["result"]
    tail = "\n".join(outcome["tail"])
    what = "did not finish within its execution_timeout and was stopped" if outcome["status"] == "TIMEOUT" else outcome["status"]
    raise RuntimeError(f"ray job {outcome['submission_id']} ({module}) {what}: {outcome['message']}\nlast lines of its log:\n{tail}")


# ------------------------------------------------------------------------------------------------ scripts


def submit_and_wait(module: str, overrides: dict[str, Any], *, address: str, submission_id: str | None = None,
                    settings: WatchSettings = WatchSettings(), log=print) -> dict[str, Any]:
    """Submit (or reattach to) one job on the cluster at `address`, stream its log, return its result or
    raise: what a DAG task does, for scripts and tests without Airflow."""
    import uuid

    client = client_for(address)
    base = submission_id or f"llada-{module.replace('.', '-')}-{uuid.uuid4().hex[:12]}"
    attached = attach_or_submit(client, base, module, job_command(module, overrides), log=log)
    return raise_for(asyncio.run(watch(address, attached.submission_id, settings=settings, log=log)), module)
