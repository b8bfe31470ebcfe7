"""`make up` / `make down`: the three UIs answer on loopback, the Airflow login works, Ray's job API wants
its token, and down stops them."""

import json
import socket
import stat
import time
import urllib.error
import urllib.request

import pytest

from stack import services as stack
from common.paths import state_dir

pytestmark = pytest.mark.integration


def port_in_use(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=3):
            return True
    except OSError:
        return False


def status_of(url: str, headers: dict | None = None) -> int:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as e:
        return e.code


def test_up_then_down():
    busy = [name for name, port in stack.PORTS.items() if port_in_use(port)]
    if busy:
        pytest.skip(f"ports of {busy} are taken (is a `make up` stack running?)")
    assert stack.up() == 0
    try:
        # Ray's job API takes the token of the 0600 file under .state/, and nothing without it
        token_file = state_dir() / "ray_auth_token"
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        for path in ("api/version", "api/jobs/"):
            url = f"http://127.0.0.1:{stack.PORTS['ray']}/{path}"
            assert status_of(url) == 401
            assert status_of(url, {"Authorization": f"Bearer {token_file.read_text().strip()}"}) == 200
        assert answers(f"http://127.0.0.1:{stack.PORTS['mlflow']}/health")
        assert answers(f"http://127.0.0.1:{stack.PORTS['airflow']}/api/v2/monitor/health")
        password = json.loads((state_dir() / "airflow" / "simple_auth_manager_passwords.json.generated").read_text())["admin"]
        request = urllib.request.Request(
            f"http://127.0.0.1:{stack.PORTS['airflow']}/auth/token",
            data=json.dumps({"username": "admin", "password": password}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            token = json.loads(response.read())["access_token"]
        listing = urllib.request.Request(f"http://127.0.0.1:{stack.PORTS['airflow']}/api/v2/dags",
                                         headers={"Authorization": f"Bearer {token}"})
        dags = set()
        for _ in range(30):  # the dag-processor parses dags/ shortly after start
            with urllib.request.urlopen(listing, timeout=10) as response:
                dags = {d["dag_id"] for d in json.loads(response.read())["dags"]}
            if {"corpus_build", "pretrain", "sft"} <= dags:
                break
            time.sleep(2)
        assert {"corpus_build", "pretrain", "sft"} <= dags
    finally:
        assert stack.down() == 0
    for name, port in stack.PORTS.items():
        assert not port_in_use(port), f"{name} still listens on {port}"
