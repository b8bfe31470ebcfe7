"""Run the operator_probe DAG once through Airflow (`dag.test`), in this process, on the Airflow home and
logical date given (a second call with the same date retries the same run's task): `python -m tests.orchestration.run_probe HOME LOGICAL_DATE '{"seconds": 5}'`.
Prints `PROBE {"state": ..., "tries": ..., "result": ...}` last."""

from __future__ import annotations

import json
import os
import sys
from datetime import datetime
from pathlib import Path

from common.paths import PROJECT_ROOT


def main(home: str, logical_date: str, conf: str) -> None:
    os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(PROJECT_ROOT / "tests" / "orchestration" / "dags")
    from stack import airflow_home

    airflow_home.configure(Path(home))
    dag = airflow_home.load_dags()["operator_probe"]
    when = datetime.fromisoformat(logical_date)  # run_after too: the run id derives from it, so a rerun is a retry
    run = dag.test(run_after=when, logical_date=when, run_conf=json.loads(conf))
    ti = run.get_task_instance("job")
    print("PROBE " + json.dumps({"state": str(run.state), "run_id": run.run_id, "try_number": ti.try_number,
                                 "result": ti.xcom_pull(task_ids="job") if str(run.state) == "success" else None}), flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:4])
