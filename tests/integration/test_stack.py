"""`make up` / `make down`: the three UIs answer on loopback, the Airflow login works, and down stops them."""

import json
import socket
import time
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


def test_up_then_down():
    busy = [name for name, port in stack.PORTS.items() if port_in_use(port)]
    if busy:
        pytest.skip(f"ports of {busy} are taken (is a `make up` stack running?)")
    assert stack.up() == 0
    try:
        assert answers(f"http://127.0.0.1:{stack.PORTS['ray']}/api/version")
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
