"""operator_probe: one RayJobOperator task running tests.orchestration.slow_job, for the operator's tests."""

from __future__ import annotations

import os
from datetime import timedelta

from airflow.sdk import DAG, Param

from orchestration.ray_job_operator import RayJobOperator

with DAG("operator_probe", schedule=None, catchup=False,
         params={"seconds": Param(5.0, type="number"), "fail": Param(False, type="boolean"),
                 "linger": Param(0.0, type="number")}) as dag:
    timeout = os.environ.get("PROBE_EXECUTION_TIMEOUT")
    RayJobOperator(
        task_id="job",
        module="tests.orchestration.slow_job",
        overrides=lambda params: {"seconds": params["seconds"], "fail": params["fail"], "linger": params["linger"]},
        deferrable=os.environ.get("PROBE_DEFERRABLE", "true") == "true",
        poll_seconds=0.5,
        status_retries=int(os.environ.get("PROBE_STATUS_RETRIES", "6")),
        retries=int(os.environ.get("PROBE_RETRIES", "0")),
        retry_delay=timedelta(seconds=float(os.environ.get("PROBE_RETRY_DELAY", "0"))),
        execution_timeout=timedelta(seconds=float(timeout)) if timeout else None,
    )
