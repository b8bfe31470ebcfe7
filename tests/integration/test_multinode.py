"""A Ray cluster of three nodes on loopback (a head with no CPUs and two 1-CPU worker nodes, separate
raylets as on separate machines): the corpus jobs and a 2-worker training run go through the Ray Job API
exactly as a DAG task submits them, and their tasks are spread over both worker nodes, as are the two
training workers. A worker node
killed while one of its tasks runs leaves each corpus job (build, fuzzy dedup, token shards) to finish
on the other: its output is byte-identical to the undisturbed run's. A worker node killed under a
training worker: the job restarts its workers (max_failures) from the newest checkpoint once the node
is back."""

from __future__ import annotations

import contextlib
import json
import os
import re
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


def corpus_jobs(work: Path) -> dict[str, tuple[str, dict, str]]:
    """Per corpus job: (module, overrides writing under `work`, the Ray task name its rounds run as)."""
    return {
        "corpus_build": ("pipelines.corpus_build", {"inputs": [str(DEMO)], "output_dir": str(work / "corpus"),
                                                     "split_bytes": 100_000, "log_to_mlflow": False, **NO_FILTERS}, "run_and_mark"),
        "fuzzy_dedup": ("pipelines.fuzzy_dedup", {"corpus_dir": str(work / "corpus"), "output_dir": str(work / "corpus_fuzzy"),
                                                   "documents_per_partition": 100, "log_to_mlflow": False}, "run_and_mark"),
        "token_shards": ("pipelines.token_shards", {"corpus_dir": str(work / "corpus_fuzzy"), "tokenizer_dir": str(work / "tokenizer"),
                                                     "output_dir": str(work / "tokens"), "seq_len": 32, "validation_fraction": 0.05,
                                                     "log_to_mlflow": False}, "tokenize_shard"),
    }


def running_on(node) -> list[str]:
    """The command lines of the processes under one node's raylet."""
    import psutil

    found = []
    for child in psutil.Process(node.process.pid).children(recursive=True):
        try:
            found.append(" ".join(child.cmdline()))
        except psutil.Error:  # ended meanwhile
            pass
    return found


def output_bytes(folder: Path) -> dict[str, bytes]:
    """Every data file of a job's output folder (not its config, stats or report, which hold paths and timings)."""
    files = [*folder.glob("documents/*.parquet"), *folder.glob("*.parquet"), *folder.glob("tokens-*.arrow"), *folder.glob("validation/tokens-*.arrow")]
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(files)}


@pytest.fixture(scope="module")
def chain(cluster, tmp_path_factory) -> Path:
    """The corpus chain, undisturbed, on the cluster: corpus/, corpus_fuzzy/, tokenizer/, tokens/."""
    head, _ = cluster
    work = tmp_path_factory.mktemp("multinode")
    jobs = corpus_jobs(work)
    for name in ("corpus_build", "fuzzy_dedup"):
        module, overrides, _ = jobs[name]
        job(head, module, **overrides)
    job(head, "tokenizer.train", corpus_dir=str(work / "corpus_fuzzy"), output_dir=str(work / "tokenizer"), vocab_size=1024,
        log_to_mlflow=False)
    module, overrides, _ = jobs["token_shards"]
    job(head, module, **overrides)
    return work


def test_corpus_jobs_spread_over_two_nodes(cluster, chain):
    head, _ = cluster
    assert len(task_nodes(head, "run_and_mark")) == 2  # the build's and the dedup's task rounds used both nodes
    assert len(task_nodes(head, "tokenize_shard")) == 2
    assert json.loads((chain / "tokens" / "manifest.json").read_text())["sequences"] > 0


def submit_in_background(head, module: str, overrides: dict):
    """`submit_and_wait` in a child process (its output: the job's log), so the test can act meanwhile."""
    import subprocess
    import sys

    command = [sys.executable, "-c", "import sys, json; from orchestration.ray_jobs import submit_and_wait; "
               f"submit_and_wait({module!r}, json.loads(sys.argv[1]), address={head.dashboard_url!r})", json.dumps(overrides)]
    return subprocess.Popen(command, cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def lose_node(cluster, index: int) -> None:
    """SIGKILL a worker node's raylet and everything under it at once (a machine lost): its process group,
    and every process under it by pid, since a worker outside the group outlived its raylet long enough to
    finish a short training run (no restart happened: seen once in a full make test)."""
    import psutil

    node = cluster[1][index]
    under = psutil.Process(node.process.pid).children(recursive=True)
    os.killpg(node.process.pid, signal.SIGKILL)
    for process in under:
        with contextlib.suppress(psutil.Error):
            process.kill()
    node.process.wait()


def rejoin_node(cluster, index: int) -> None:
    from stack.local_ray import start_worker_node

    head, nodes = cluster
    nodes[index] = start_worker_node(head, num_cpus=1, resources={("node_a", "node_b")[index]: 1})


def test_training_on_two_nodes_resumes_from_the_newest_checkpoint_when_one_is_lost(cluster, chain, tmp_path):
    """Two Ray Train workers, one per node; the second node is lost after the first checkpoint: the job
    restarts its workers (max_failures) once the node is back and trains each step once."""
    head, nodes = cluster
    output_dir, steps = tmp_path / "pretrain", 24
    submitter = submit_in_background(head, "trainer.pretrain", {
        "tokens_dir": str(chain / "tokens"), "output_dir": str(output_dir), "num_workers": 2, "steps": steps,
        "micro_batch_size": 4, "log_every": 1, "checkpoint_every": 4, "val_sequences": 0, "max_failures": 1})
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and submitter.poll() is None and not list((output_dir / "checkpoints").glob("step-*")):
        time.sleep(0.05)
    training_here = [w for w in running_on(nodes[1]) if "RayTrainWorker" in w]
    from ray.util.state import list_actors

    workers = list_actors(address=head.dashboard_url, filters=[("class_name", "=", "RayTrainWorker"), ("state", "=", "ALIVE")],
                          limit=100, detail=True)
    assert len({w.node_id for w in workers}) == 2  # one training worker per node
    lose_node(cluster, 1)
    try:
        # The kill came mid-run: a checkpoint existed, a training worker ran on the node, the run had not ended.
        logged = [json.loads(line)["step"] for line in (output_dir / "metrics.jsonl").read_text().splitlines()]
        assert training_here and max(logged) < steps and not (output_dir / "complete.json").exists()
    finally:
        rejoin_node(cluster, 1)  # the restarted worker group needs two nodes again
    output = submitter.communicate(timeout=600)[0]
    assert submitter.returncode == 0, output[-3000:]
    assert re.search(r"resuming at step ([1-9]\d*)", output), output[-3000:]
    lines = [json.loads(line)["step"] for line in (output_dir / "metrics.jsonl").read_text().splitlines()]
    assert lines == list(range(1, steps + 1)) and (output_dir / "complete.json").is_file()  # each step once


@pytest.mark.parametrize("name", ["corpus_build", "fuzzy_dedup", "token_shards"])
def test_a_worker_node_lost_mid_job_changes_no_byte(cluster, chain, name, tmp_path):
    head, nodes = cluster
    # The job again, reading the undisturbed chain's input and writing its own output folder.
    module, overrides, task_name = corpus_jobs(chain)[name]
    output_dir = tmp_path / "output"
    overrides = {**overrides, "output_dir": str(output_dir)}
    submitter = submit_in_background(head, module, overrides)
    victim = nodes[1]
    deadline, in_flight = time.monotonic() + 180, []
    while time.monotonic() < deadline and not in_flight and submitter.poll() is None:
        # A Ray worker process is titled ray::<task> while it runs one: the second node's, seen at once
        # (the state API reports task states a second or so late, and these tasks last about as long).
        in_flight = [w for w in running_on(victim) if f"ray::{task_name}" in w]
        time.sleep(0.02)
    lose_node(cluster, 1)
    try:
        # The kill came mid-run: one of the job's tasks was running on that node, and the job had not finished.
        assert in_flight, f"no {task_name} task ran on the second node"
        assert not (output_dir / "manifest.json").exists()
        output = submitter.communicate(timeout=600)[0]
        assert submitter.returncode == 0, output[-3000:]
        expected = output_bytes(chain / Path(corpus_jobs(chain)[name][1]["output_dir"]).name)
        assert expected and output_bytes(output_dir) == expected
    finally:
        rejoin_node(cluster, 1)  # the next case needs two nodes again
