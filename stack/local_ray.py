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


def ray_env() -> dict[str, str]:
    """Environment for the head, its workers and the jobs they run."""
    env = dict(os.environ)
    venv_bin = str(Path(sys.executable).parent)
    env["PATH"] = venv_bin + os.pathsep + env.get("PATH", "")
    # Loopback only, so no token: remote clusters use token auth (docker-compose.yml, .env).
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


def start_head(*, num_cpus: int | None = None, dashboard_port: int | None = None, timeout: float = 90.0) -> RayHead:
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
    process = subprocess.Popen(command, cwd=PROJECT_ROOT, env=ray_env(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    head = RayHead(process, f"http://127.0.0.1:{dashboard_port}", f"127.0.0.1:{gcs_port}", log_path)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"ray head exited with {process.returncode}; see {log_path}")
        with contextlib.suppress(OSError):
            with urllib.request.urlopen(f"{head.dashboard_url}/api/version", timeout=2):
                return head
        time.sleep(1)
    head.stop()
    raise TimeoutError(f"ray head did not answer within {timeout:.0f}s; see {log_path}")


def _nodes_alive(head: RayHead) -> set[str]:
    """The ids of the cluster's alive nodes, from the dashboard's state API."""
    import json

    with urllib.request.urlopen(f"{head.dashboard_url}/api/v0/nodes?limit=100", timeout=5) as response:
        nodes = json.loads(response.read())["data"]["result"]["result"]
    return {node["node_id"] for node in nodes if node["state"] == "ALIVE"}


def start_worker_node(head: RayHead, *, num_cpus: int, resources: dict[str, float] | None = None,
                      timeout: float = 90.0) -> RayHead:
    """Join one more raylet to `head` on this machine (`ray start --address --block`), with its own
    resources, as another machine of the cluster would; returns it once the head counts it alive.
    Several raylets on one machine is how Ray tests its own fault tolerance (ray.cluster_utils.Cluster)."""
    import json

    before = _nodes_alive(head)  # a node killed a moment ago may still be among them: new ids are what counts
    log_path = head.log_path.with_name(f"{head.log_path.stem}-worker-{free_port()}.log")
    command = [
        str(Path(sys.executable).parent / "ray"), "start", "--address", head.gcs_address, "--block",
        "--node-ip-address", "127.0.0.1", "--num-cpus", str(num_cpus), "--resources", json.dumps(resources or {}),
        "--object-store-memory", str(1 << 29), "--disable-usage-stats", *_agent_ports(),
    ]
    log = open(log_path, "ab")
    process = subprocess.Popen(command, cwd=PROJECT_ROOT, env=ray_env(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    node = RayHead(process, head.dashboard_url, head.gcs_address, log_path)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"ray worker node exited with {process.returncode}; see {log_path}")
        with contextlib.suppress(OSError, KeyError, ValueError):
            if _nodes_alive(head) - before:
                return node
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

