"""The DAG tasks' RayJobOperator with a real local Ray head and Airflow (`dag.test` on SQLite, in child
processes so a test can kill one): an Airflow retry while its job runs reattaches and leaves exactly one
Ray job; a SIGTERMed task stops its job; an execution timeout stops it; a deferred task's trigger stops its
job when a user kills the task. The job is tests/orchestration/slow_job.py, the DAG operator_probe."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from common.paths import PROJECT_ROOT

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def probe(tmp_path_factory):
    """(Ray head, Airflow home) for operator_probe runs."""
    from stack.local_ray import start_head

    home = tmp_path_factory.mktemp("airflow")
    env = dict(os.environ, AIRFLOW_HOME=str(home), AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{home / 'airflow.db'}",
               AIRFLOW__CORE__DAGS_FOLDER=str(PROJECT_ROOT / "tests" / "orchestration" / "dags"))
    subprocess.run([str(Path(sys.executable).parent / "airflow"), "db", "migrate"], env=env, check=True, capture_output=True)
    head = start_head(num_cpus=1)
    yield head, home
    head.stop()


def start_probe(probe, logical_date: str, conf: dict, **env: str) -> subprocess.Popen:
    head, home = probe
    environment = {**os.environ, "RAY_ADDRESS": head.dashboard_url, **env}
    return subprocess.Popen([sys.executable, "-m", "tests.orchestration.run_probe", str(home), logical_date, json.dumps(conf)],
                            cwd=PROJECT_ROOT, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)


def finish_probe(process: subprocess.Popen) -> tuple[dict, str]:
    output = process.communicate(timeout=300)[0].decode(errors="replace")
    lines = [line for line in output.splitlines() if line.startswith("PROBE ")]
    assert lines, output[-4000:]
    return json.loads(lines[-1].removeprefix("PROBE ")), output


def jobs_of(probe, logical_date: str) -> list:
    """The Ray jobs of operator_probe's task in the run of `logical_date` (every try)."""
    from ray.job_submission import JobSubmissionClient

    from orchestration.ray_job_operator import submission_base

    base = submission_base("operator_probe", f"manual__{logical_date}", "job")
    return [j for j in JobSubmissionClient(probe[0].dashboard_url).list_jobs() if (j.submission_id or "").startswith(base)]


def wait_for_ticks(probe, logical_date: str, ticks: int = 3, timeout: float = 120):
    """The run's one job, once it is RUNNING and has printed `ticks` lines: work is in flight."""
    from ray.job_submission import JobSubmissionClient

    client = JobSubmissionClient(probe[0].dashboard_url)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        jobs = jobs_of(probe, logical_date)
        if jobs and jobs[0].status == "RUNNING" and f"tick {ticks}/" in client.get_job_logs(jobs[0].submission_id):
            return jobs[0]
        time.sleep(0.5)
    raise AssertionError(f"no running job of {logical_date} printed {ticks} ticks within {timeout:.0f}s")


def wait_for_status(probe, submission_id: str, status: str, timeout: float = 30) -> None:
    from ray.job_submission import JobSubmissionClient

    client = JobSubmissionClient(probe[0].dashboard_url)
    deadline = time.monotonic() + timeout
    while client.get_job_status(submission_id) != status:
        assert time.monotonic() < deadline, f"{submission_id} is {client.get_job_status(submission_id)}, not {status}"
        time.sleep(0.5)


def test_a_retry_while_the_job_runs_reattaches_and_leaves_one_job(probe):
    """The Ray dashboard becomes unreachable while the task is deferred: the trigger's status polls are
    retried with backoff, then the task fails; Airflow's retry (try 2), with the dashboard back, finds the
    job still running, reattaches instead of submitting a second one, and returns its result."""
    from urllib.parse import urlparse

    from tests.orchestration.tcp_proxy import TcpProxy

    date = "2026-01-01T00:00:00+00:00"
    proxy = TcpProxy(urlparse(probe[0].dashboard_url).port)
    process = start_probe(probe, date, {"seconds": 15}, RAY_ADDRESS=proxy.url, PROBE_RETRIES="1", PROBE_RETRY_DELAY="6",
                          PROBE_STATUS_RETRIES="2")
    job = wait_for_ticks(probe, date)
    proxy.cut()
    time.sleep(6)
    assert [j.status for j in jobs_of(probe, date)] == ["RUNNING"]  # try 1 lost track of its job mid-run
    proxy.restore()
    summary, output = finish_probe(process)
    assert "status poll failed (" in output and "retrying in 1s" in output and "the status poll failed 3 times" in output
    assert summary["state"] == "success" and summary["try_number"] == 2, output[-4000:]
    assert summary["result"] == {"ticks": 75}
    assert f"ray job {job.submission_id} of an earlier try is RUNNING: reattaching" in output
    assert [(j.submission_id, j.status) for j in jobs_of(probe, date)] == [(job.submission_id, "SUCCEEDED")]  # one job
    # deferred: each try's task part ended before the job did; the trigger followed the job's log
    assert output.count("Pausing task as DEFERRED") == 2
    assert output.index("Pausing task as DEFERRED") < output.index("tick 3/75") < output.rindex("tick 75/75") < output.rindex("Trigger completed")


def test_a_sigterm_stops_the_job_then_the_retry_submits_try_2_which_its_execution_timeout_stops(probe):
    """A task watching its job on a worker (deferrable=False) is SIGTERMed, as Airflow does to a task
    marked failed: on_kill stops the Ray job. The task run again finds that job stopped and submits try 2,
    deferred; its execution_timeout passes first, and the trigger stops that job too."""
    date = "2026-01-02T00:00:00+00:00"
    process = start_probe(probe, date, {"seconds": 60}, PROBE_DEFERRABLE="false")
    job = wait_for_ticks(probe, date)
    os.kill(process.pid, signal.SIGTERM)
    summary, output = finish_probe(process)
    wait_for_status(probe, job.submission_id, "STOPPED")
    assert summary["state"] == "failed" and f"stopping ray job {job.submission_id}" in output, output[-4000:]

    summary, output = finish_probe(start_probe(probe, date, {"seconds": 60}, PROBE_EXECUTION_TIMEOUT="5"))
    assert summary["state"] == "failed" and "submitting try 2" in output, output[-4000:]
    assert f"ray job {job.submission_id}-try-2 (tests.orchestration.slow_job) did not finish within its execution_timeout" in output
    assert sorted((j.submission_id, j.status) for j in jobs_of(probe, date)) == [
        (job.submission_id, "STOPPED"), (f"{job.submission_id}-try-2", "STOPPED")]


def test_a_cleared_task_whose_job_is_still_stopping_submits_it_again(probe):
    """Clearing a running task in the UI stops its job (the trigger's on_kill) and starts the next try at
    once: that try finds the job still RUNNING while it stops (a training job saves a checkpoint first),
    reattaches, sees it end STOPPED, and submits try 2 instead of failing (found by hand on `make up`). The
    job is given its STOP_GRACE_SECONDS to end (Ray's default would kill it 3 s after the SIGTERM)."""
    from ray.job_submission import JobSubmissionClient

    date = "2026-01-04T00:00:00+00:00"
    process = start_probe(probe, date, {"seconds": 30, "linger": 25})
    job = wait_for_ticks(probe, date)
    os.kill(process.pid, signal.SIGKILL)  # the cleared try: its trigger is gone ...
    process.wait()
    JobSubmissionClient(probe[0].dashboard_url).stop_job(job.submission_id)  # ... after its on_kill stopped the job
    summary, output = finish_probe(start_probe(probe, date, {"seconds": 2, "linger": 25}))
    assert f"ray job {job.submission_id} of an earlier try is RUNNING: reattaching" in output, output[-4000:]
    assert f"ray job {job.submission_id}, which this try reattached to, was stopped" in output, output[-4000:]
    assert summary["state"] == "success" and summary["result"] == {"ticks": 10}, output[-4000:]
    assert sorted((j.submission_id, j.status) for j in jobs_of(probe, date)) == [
        (job.submission_id, "STOPPED"), (f"{job.submission_id}-try-2", "SUCCEEDED")]
    logs = JobSubmissionClient(probe[0].dashboard_url).get_job_logs(job.submission_id)
    assert "(stopping)" in logs and "stopped after tick" in logs  # it went on after the SIGTERM, then ended itself


def test_the_deferred_tasks_trigger_stops_its_job_when_the_task_is_killed(probe):
    """Marking a deferred task failed (or clearing it) makes the triggerer call the trigger's on_kill."""
    from ray.job_submission import JobSubmissionClient

    from orchestration.ray_job_operator import RayJobTrigger
    from orchestration.ray_jobs import attach_or_submit, job_command

    head = probe[0]
    base = "llada-trigger-on-kill-test"
    attached = attach_or_submit(JobSubmissionClient(head.dashboard_url), base, "tests.orchestration.slow_job",
                                job_command("tests.orchestration.slow_job", {"seconds": 60}))
    trigger = RayJobTrigger(head.dashboard_url, attached.submission_id, settings={"poll_seconds": 0.5})

    async def kill_while_running():
        following = asyncio.create_task(anext(trigger.run()))
        while "tick 3/" not in JobSubmissionClient(head.dashboard_url).get_job_logs(attached.submission_id):
            await asyncio.sleep(0.5)
        assert not following.done()
        following.cancel()  # what the triggerer does, then it calls on_kill
        await trigger.on_kill()

    asyncio.run(kill_while_running())
    wait_for_status(probe, attached.submission_id, "STOPPED")
