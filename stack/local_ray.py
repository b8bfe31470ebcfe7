"""A local Ray head (with dashboard and job server) on loopback, started and stopped by us.

`ray stop` would kill every Ray process on the machine, so the head runs under `ray start --block`
in its own process group and is stopped by signalling that group.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from common.paths import PROJECT_ROOT, state_dir


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ray_token_env() -> dict[str, str]:
    """Ray's token auth with the token in a 0600 file of the state folder (made once): what `make up`'s
    head and everything that talks to it (Airflow's tasks, `ray job submit`) use."""
    import secrets

    path = state_dir() / "ray_auth_token"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32))
    return {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(path)}


def ray_env(auth: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for the head, its workers and the jobs they run; `auth`: ray_token_env() for a head
    that others may reach (`make up`). A test's or the demo's head, private to one process tree on
    loopback, runs without a token."""
    env = dict(os.environ)
    venv_bin = str(Path(sys.executable).parent)
    env["PATH"] = venv_bin + os.pathsep + env.get("PATH", "")
    env.update(auth or {})
    env.setdefault("RAY_AUTH_MODE", "disabled")
    env.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    env.setdefault("ONEDNN_MAX_CPU_ISA", "AVX512_CORE_BF16")
    env.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    env["LLADA_STATE_DIR"] = str(state_dir())  # jobs find the same MLflow store and caches
    env.pop("RAY_ADDRESS", None)
    return env


def _temp_dir() -> Path:
    # Unix socket paths are limited to ~107 bytes; Ray nests ~60 bytes of session path under this.
    path = state_dir() / "ray"
    if len(str(path)) > 40:
        digest = hashlib.sha256(str(state_dir()).encode()).hexdigest()[:10]
        path = Path("/tmp") / f"llada-ray-{digest}"
    path.mkdir(parents=True, exist_ok=True)
    return path


@dataclass
class RayHead:
    process: subprocess.Popen
    dashboard_url: str
    gcs_address: str
    log_path: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


def _agent_ports() -> list[str]:
    """Free ports for a node's agents. Ray's defaults (52365 for the dashboard agent, whose HTTP server
    takes job submissions) are fixed: an agent left behind by a killed cluster would hold them, and the
    new head would answer every submission with "No available agent"."""
    return ["--dashboard-agent-listen-port", str(free_port()), "--dashboard-agent-grpc-port", str(free_port()),
            "--runtime-env-agent-port", str(free_port()), "--metrics-export-port", str(free_port())]


def start_head(*, num_cpus: int | None = None, dashboard_port: int | None = None, timeout: float = 90.0,
               auth: dict[str, str] | None = None) -> RayHead:
    """Start `ray start --head --block` on 127.0.0.1 and wait until its job server answers."""
    gcs_port, dashboard_port = free_port(), dashboard_port or free_port()
    temp_dir = _temp_dir()
    (temp_dir / "ray_current_cluster").unlink(missing_ok=True)
    log_path = state_dir() / "logs" / f"ray-head-{gcs_port}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    command = [
        str(Path(sys.executable).parent / "ray"), "start", "--head", "--block",
        "--node-ip-address", "127.0.0.1", "--port", str(gcs_port),
        "--dashboard-host", "127.0.0.1", "--dashboard-port", str(dashboard_port),
        "--temp-dir", str(temp_dir), "--object-store-memory", str(1 << 30), "--disable-usage-stats", *_agent_ports(),
    ]
    if num_cpus is not None:
        command += ["--num-cpus", str(num_cpus)]
    log = open(log_path, "ab")
    process = subprocess.Popen(command, cwd=PROJECT_ROOT, env=ray_env(auth), stdout=log, stderr=subprocess.STDOUT,
                               start_new_session=True)
    head = RayHead(process, f"http://127.0.0.1:{dashboard_port}", f"127.0.0.1:{gcs_port}", log_path)
    # with token auth the job API answers only requests that carry the token
    token = Path(auth["RAY_AUTH_TOKEN_PATH"]).read_text().strip() if auth and "RAY_AUTH_TOKEN_PATH" in auth else None
    version = urllib.request.Request(f"{head.dashboard_url}/api/version",
                                     headers={"Authorization": f"Bearer {token}"} if token else {})
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"ray head exited with {process.returncode}; see {log_path}")
        with contextlib.suppress(OSError):
            with urllib.request.urlopen(version, timeout=2):
                return head
        time.sleep(1)
    head.stop()
    raise TimeoutError(f"ray head did not answer within {timeout:.0f}s; see {log_path}")


def _nodes_alive(head: RayHead) -> dict[str, dict]:
    """The cluster's alive nodes (id -> total resources), from the dashboard's state API."""
    import json

    with urllib.request.urlopen(f"{head.dashboard_url}/api/v0/nodes?limit=100", timeout=5) as response:
        nodes = json.loads(response.read())["data"]["result"]["result"]
    return {node["node_id"]: node.get("resources_total") or {} for node in nodes if node["state"] == "ALIVE"}


def start_worker_node(head: RayHead, *, num_cpus: int, resources: dict[str, float] | None = None,
                      timeout: float = 90.0, attempts: int = 3) -> RayHead:
    """Join one more raylet to `head` on this machine (`ray start --address --block`), with its own
    resources, as another machine of the cluster would; returns it once the head counts it alive.
    Several raylets on one machine is how Ray tests its own fault tolerance (ray.cluster_utils.Cluster).
    A raylet that fails to register (seen on a loaded 2-core machine: "GCS cannot find the node") is
    started again, up to `attempts` times."""
    for attempt in range(1, attempts + 1):
        try:
            return _start_worker_node(head, num_cpus=num_cpus, resources=resources or {}, timeout=timeout)
        except (RuntimeError, TimeoutError) as e:
            if attempt == attempts:
                raise
            print(f"ray worker node did not join ({e}); starting it again", flush=True)
    raise AssertionError("unreachable")


def _kill_group(process: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


def _start_worker_node(head: RayHead, *, num_cpus: int, resources: dict[str, float], timeout: float) -> RayHead:
    import json

    before = set(_nodes_alive(head))  # a node killed a moment ago may still be among them: new ids are what counts
    log_path = head.log_path.with_name(f"{head.log_path.stem}-worker-{free_port()}.log")
    command = [
        str(Path(sys.executable).parent / "ray"), "start", "--address", head.gcs_address, "--block",
        "--node-ip-address", "127.0.0.1", "--num-cpus", str(num_cpus), "--resources", json.dumps(resources),
        "--object-store-memory", str(1 << 29), "--disable-usage-stats", *_agent_ports(),
    ]
    log = open(log_path, "ab")
    process = subprocess.Popen(command, cwd=PROJECT_ROOT, env=ray_env(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    node = RayHead(process, head.dashboard_url, head.gcs_address, log_path)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            _kill_group(process)  # what it started, its raylet among them
            raise RuntimeError(f"ray worker node exited with {process.returncode}; see {log_path}")
        with contextlib.suppress(OSError, KeyError, ValueError):
            # this raylet: a new alive node holding its resources (another node's late registration is not it)
            joined = [total for node_id, total in _nodes_alive(head).items()
                      if node_id not in before and all(name in total for name in resources)]
            if joined:
                time.sleep(2)  # `ray start` exits when its raylet could not finish registering: not that
                if process.poll() is None:
                    return node
                _kill_group(process)
                raise RuntimeError(f"ray worker node exited with {process.returncode} after joining; see {log_path}")
        time.sleep(1)
    node.stop()
    raise TimeoutError(f"ray worker node did not join within {timeout:.0f}s; see {log_path}")


@contextlib.contextmanager
def local_ray_cluster(*, num_cpus: int | None = None) -> Iterator[RayHead]:
    """A head for the duration of the block; RAY_ADDRESS points at its job server meanwhile."""
    head = start_head(num_cpus=num_cpus)
    previous = os.environ.get("RAY_ADDRESS")
    os.environ["RAY_ADDRESS"] = head.dashboard_url
    try:
        yield head
    finally:
        if previous is None:
            os.environ.pop("RAY_ADDRESS", None)
        else:
            os.environ["RAY_ADDRESS"] = previous
        head.stop()

