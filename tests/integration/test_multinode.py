"""A Ray cluster of three nodes on loopback (a head with no CPUs and two 1-CPU worker nodes, separate
raylets as on separate machines): the corpus jobs and a 2-worker training run go through the Ray Job API
exactly as a DAG task submits them, and their tasks are spread over both worker nodes. A worker node
killed while its tasks run leaves the corpus build to finish on the other: its output is byte-identical
to the undisturbed run's."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from common.paths import PROJECT_ROOT
from orchestration.ray_jobs import submit_and_wait

pytestmark = pytest.mark.integration

DEMO = PROJECT_ROOT / "data" / "demo" / "corpus"
NO_FILTERS = {"gopher_quality": False, "c4": False}  # as the demo: its documentation is not web text


@pytest.fixture(scope="module")
def cluster():
    from stack.local_ray import start_head, start_worker_node

    head = start_head(num_cpus=0)  # the drivers run here; every task and training worker on a worker node
    nodes = []
    try:
        nodes = [start_worker_node(head, num_cpus=1, resources={name: 1}) for name in ("node_a", "node_b")]
        yield head, nodes
    finally:
        for node in nodes:
            node.stop()
        head.stop()


def job(head, module: str, **overrides) -> dict:
    """Submit `python -m module key=value ...` to the cluster's job server, as a DAG task does."""
    return submit_and_wait(module, overrides, address=head.dashboard_url)


def task_nodes(head, name: str) -> set[str]:
    from ray.util.state import list_tasks

    return {t.node_id for t in list_tasks(address=head.dashboard_url, filters=[("func_or_class_name", "=", name)], limit=10_000)}


def build(head, output_dir: Path) -> dict:
    return job(head, "pipelines.corpus_build", inputs=[str(DEMO)], output_dir=str(output_dir), split_bytes=100_000,
               log_to_mlflow=False, **NO_FILTERS)


def shard_bytes(output_dir: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((output_dir / "documents").glob("*.parquet"))}


def test_corpus_jobs_and_training_spread_over_two_nodes(cluster, tmp_path_factory):
    head, _ = cluster
    work = tmp_path_factory.mktemp("multinode")
    build(head, work / "corpus")
    job(head, "pipelines.fuzzy_dedup", corpus_dir=str(work / "corpus"), output_dir=str(work / "corpus_fuzzy"),
        documents_per_partition=1000, log_to_mlflow=False)
    job(head, "tokenizer.train", corpus_dir=str(work / "corpus_fuzzy"), output_dir=str(work / "tokenizer"), vocab_size=1024,
        log_to_mlflow=False)
    job(head, "pipelines.token_shards", corpus_dir=str(work / "corpus_fuzzy"), tokenizer_dir=str(work / "tokenizer"),
        output_dir=str(work / "tokens"), seq_len=32, validation_fraction=0.05, log_to_mlflow=False)
    assert len(task_nodes(head, "run_and_mark")) == 2  # the build's and the dedup's task rounds used both nodes
    assert len(task_nodes(head, "tokenize_shard")) == 2
    assert json.loads((work / "tokens" / "manifest.json").read_text())["sequences"] > 0

    result = job(head, "trainer.pretrain", tokens_dir=str(work / "tokens"), output_dir=str(work / "pretrain"), num_workers=2,
                 steps=4, micro_batch_size=4, log_every=2, val_sequences=8)
    assert result["final_loss"] > 0 and (work / "pretrain" / "complete.json").is_file()
    from ray.util.state import list_actors

    workers = list_actors(address=head.dashboard_url, filters=[("class_name", "=", "RayTrainWorker")], limit=100, detail=True)
    assert len({w.node_id for w in workers}) == 2  # one training worker per node


def test_a_worker_node_lost_mid_build_changes_no_byte(cluster, tmp_path_factory):
    import subprocess
    import sys

    from ray.util.state import list_nodes, list_tasks

    from stack.local_ray import start_worker_node

    head, nodes = cluster
    work = tmp_path_factory.mktemp("node-loss")
    build(head, work / "reference")
    expected = shard_bytes(work / "reference")

    # The same build as a job, and the second worker node killed while tasks run on it.
    command = [sys.executable, "-c", "import sys, json; from orchestration.ray_jobs import submit_and_wait; "
               f"submit_and_wait('pipelines.corpus_build', json.loads(sys.argv[1]), address={head.dashboard_url!r})",
               json.dumps({"inputs": [str(DEMO)], "output_dir": str(work / "corpus"), "split_bytes": 100_000, "log_to_mlflow": False,
                           **NO_FILTERS})]
    submitter = subprocess.Popen(command, cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    victim = nodes[1]
    node_b = next(n.node_id for n in list_nodes(address=head.dashboard_url, detail=True) if n.resources_total.get("node_b"))
    deadline, in_flight = time.monotonic() + 180, []
    while time.monotonic() < deadline and not in_flight:
        in_flight = list_tasks(address=head.dashboard_url, filters=[("state", "=", "RUNNING"), ("node_id", "=", node_b),
                                                                    ("func_or_class_name", "=", "run_and_mark")])
        time.sleep(0.2)
    markers = list((work / "corpus" / "_work").rglob("*.json")) if (work / "corpus" / "_work").exists() else []
    os.killpg(victim.process.pid, signal.SIGKILL)  # the raylet and its workers, at once: a machine lost
    victim.process.wait()
    assert in_flight, "no task ran on the second node"
    assert not (work / "corpus" / "manifest.json").exists()  # the kill came mid-run
    output = submitter.communicate(timeout=600)[0]
    assert submitter.returncode == 0, output[-3000:]
    assert shard_bytes(work / "corpus") == expected
    print(f"killed node_b with {len(in_flight)} task(s) running on it and {len(markers)} markers written")
    nodes[1] = start_worker_node(head, num_cpus=1, resources={"node_b": 1})  # for any test after this one
