"""A project-local Airflow: AIRFLOW_HOME under the state folder, SQLite metadata, our dags/ folder.

Call `configure()` before anything imports airflow (importing it without AIRFLOW_HOME creates ~/airflow).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from common.paths import PROJECT_ROOT, state_dir


def configure(home: Path | None = None) -> Path:
    home = home or state_dir() / "airflow"
    home.mkdir(parents=True, exist_ok=True)
    os.environ["AIRFLOW_HOME"] = str(home)
    os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(PROJECT_ROOT / "dags"))
    os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    os.environ.setdefault("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", f"sqlite:///{home / 'airflow.db'}")
    os.environ.setdefault("AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION", "False")
    return home


def migrate() -> None:
    """`airflow db migrate` (idempotent, ~5 s on SQLite)."""
    airflow = Path(sys.executable).parent / "airflow"
    result = subprocess.run([str(airflow), "db", "migrate"], capture_output=True, text=True, env=os.environ.copy())
    if result.returncode:
        raise RuntimeError(f"airflow db migrate failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")


def load_dags() -> dict:
    """The project's DAGs by id, parsed the way the scheduler does; import errors are raised."""
    from airflow.models import DagBag

    bag = DagBag(dag_folder=os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
    if bag.import_errors:
        raise RuntimeError(f"DAG import errors: {bag.import_errors}")
    return bag.dags


def run_dag(dag, conf: dict) -> str:
    """Run a DAG through Airflow in this process (`dag.test`); return its final state."""
    dag_run = dag.test(run_conf=conf)
    return str(dag_run.state)
