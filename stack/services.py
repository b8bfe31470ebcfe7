"""`make up` / `make down`: Airflow (UI + API), a Ray head with its dashboard and the MLflow UI on loopback.

All state lives under the state folder (.state/): Airflow's SQLite DB and logs, Ray's session files,
the MLflow store. The processes outlive `make up`; their process groups are recorded in
.state/stack.json and `make down` stops them.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from stack import airflow_home
from stack.local_ray import ray_env, ray_token_env, start_head
from common.paths import PROJECT_ROOT, state_dir
from common.tracking import artifact_root, tracking_uri, ui_link

PORTS = {"airflow": 8080, "ray": 8265, "mlflow": 5000}
BIN = Path(sys.executable).parent


def _pid_file() -> Path:
    return state_dir() / "stack.json"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


def _wait_http(url: str, name: str, process: subprocess.Popen, log: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with {process.returncode}; see {log}")
        with contextlib.suppress(OSError):
            with urllib.request.urlopen(url, timeout=2):
                return
        time.sleep(1)
    raise TimeoutError(f"{name} did not answer at {url} within {timeout:.0f}s; see {log}")


def _spawn(name: str, command: list[str], env: dict[str, str]) -> tuple[subprocess.Popen, Path]:
    log = state_dir() / "logs" / f"{name}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen(command, cwd=PROJECT_ROOT, env=env, stdout=open(log, "ab"), stderr=subprocess.STDOUT, start_new_session=True)
    return process, log


def start_mlflow_server(port: int, store_uri: str, artifacts: str, *, name: str = "mlflow", workers: int = 1) -> subprocess.Popen:
    """`mlflow server` on 127.0.0.1:port over `store_uri`, in its own process group (log under the state
    folder's logs/); returns once /health answers. One worker process by default: a local stack's load
    is one user, and each worker costs ~150 MB and seconds of start-up."""
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", "MLFLOW_DISABLE_TELEMETRY": "true"}
    if store_uri.startswith("sqlite:///"):
        Path(store_uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    process, log = _spawn(name, [str(BIN / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(port),
                                 "--backend-store-uri", store_uri, "--default-artifact-root", artifacts, "--workers", str(workers)], env)
    try:
        _wait_http(f"http://127.0.0.1:{port}/health", name, process, log)
    except Exception:
        stop_process_group(process)
        raise
    return process


def stop_process_group(process: subprocess.Popen, timeout: float = 30) -> None:
    """SIGTERM the process group `process` leads, then SIGKILL what is left after `timeout`."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def up() -> int:
    if _pid_file().exists() and any(_alive(pid) for pid in json.loads(_pid_file().read_text()).values()):
        print(f"the stack is already running ({_pid_file()}); `make down` stops it")
        return 1
    pids: dict[str, int] = {}
    try:
        print("[up] ray head ...", flush=True)
        auth = ray_token_env()  # others on this machine may reach the job API: it takes the token
        head = start_head(dashboard_port=PORTS["ray"], auth=auth)
        pids["ray"] = head.process.pid

        print("[up] mlflow ui ...", flush=True)
        uri = tracking_uri()
        mlflow = start_mlflow_server(PORTS["mlflow"], uri, artifact_root())
        pids["mlflow"] = mlflow.pid

        print("[up] airflow (api-server, scheduler, dag-processor, triggerer) ...", flush=True)
        home = airflow_home.configure()
        env = {**ray_env(auth), "RAY_ADDRESS": head.dashboard_url, "AIRFLOW__API__HOST": "127.0.0.1",
               "AIRFLOW__API__PORT": str(PORTS["airflow"]), "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin"}
        for key in ("AIRFLOW_HOME", "AIRFLOW__CORE__DAGS_FOLDER", "AIRFLOW__CORE__LOAD_EXAMPLES", "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"):
            env[key] = os.environ[key]
        airflow, log = _spawn("airflow", [str(BIN / "airflow"), "standalone"], env)
        pids["airflow"] = airflow.pid
        _wait_http(f"http://127.0.0.1:{PORTS['airflow']}/api/v2/monitor/health", "airflow", airflow, log, timeout=180)
    except Exception:
        _stop(pids)
        raise
    finally:
        if pids:
            _pid_file().write_text(json.dumps(pids) + "\n")
    passwords = home / "simple_auth_manager_passwords.json.generated"
    login = json.loads(passwords.read_text()) if passwords.exists() else {}
    print(f"airflow   http://127.0.0.1:{PORTS['airflow']}   login: " + ", ".join(f"{u} / {p}" for u, p in login.items()))
    print(f"ray       http://127.0.0.1:{PORTS['ray']}   (RAY_ADDRESS for jobs; token auth: "
          f"RAY_AUTH_MODE=token RAY_AUTH_TOKEN_PATH={auth['RAY_AUTH_TOKEN_PATH']})")
    mlflow_ui = ui_link(f"http://127.0.0.1:{PORTS['mlflow']}")  # opens on the runs view, not GenAI's
    print(f"mlflow    {mlflow_ui}   (store {uri})")
    print(f"logs      {state_dir() / 'logs'};  stop with: make down")
    return 0


def _stop(pids: dict[str, int]) -> None:
    for name, pid in pids.items():
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_alive(pid) for pid in pids.values()):
        time.sleep(0.5)
    for pid in pids.values():
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)


def down() -> int:
    if not _pid_file().exists():
        print("the stack is not running")
        return 0
    pids = json.loads(_pid_file().read_text())
    _stop(pids)
    _pid_file().unlink()
    print("stopped: " + ", ".join(pids))
    return 0


if __name__ == "__main__":
    commands = {"up": up, "down": down}
    if len(sys.argv) != 2 or sys.argv[1] not in commands:
        print("usage: python -m stack.services up|down", file=sys.stderr)
        sys.exit(2)
    sys.exit(commands[sys.argv[1]]())
