"""Kill the corpus build (its driver, or a worker) at random moments; reruns must end byte-identical.

The build runs as `python -m pipelines.corpus_build` subprocesses joined to one local Ray head, on the
demo corpus decompressed to plain JSON lines and split into many byte-range tasks, with every
cleaning stage on. A SIGKILLed driver takes its job's Ray tasks with it; a SIGKILLed worker's task is
retried by Ray. Either way each task's files are renamed into place before its completion marker, so
the rerun redoes only unfinished tasks.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import zstandard

from common.paths import PROJECT_ROOT

pytestmark = pytest.mark.integration

DEMO_CORPUS = PROJECT_ROOT / "data" / "demo" / "corpus"
COMPARED = ("manifest.json", "quarantine.jsonl", "dropped_samples.jsonl")


@pytest.fixture(scope="module")
def ray_head():
    from stack.local_ray import start_head

    head = start_head(num_cpus=2)
    yield head
    head.stop()


@pytest.fixture(scope="module")
def plain_inputs(tmp_path_factory) -> Path:
    """The demo corpus as plain .jsonl (so files split into byte ranges), plus one bad line."""
    folder = tmp_path_factory.mktemp("inputs")
    for path in sorted(DEMO_CORPUS.glob("*.jsonl.zst")):
        with open(path, "rb") as f:
            data = zstandard.ZstdDecompressor().stream_reader(f).read()
        (folder / path.name.removesuffix(".zst")).write_bytes(data)
    (folder / "zz-bad.jsonl").write_bytes(b'{"text": "unterminated\n' + json.dumps({"text": "fine " * 40}).encode() + b"\n")
    return folder


def start_build(ray_head, inputs: Path, output_dir: Path) -> subprocess.Popen:
    env = dict(os.environ, RAY_ADDRESS=ray_head.gcs_address)
    command = [
        sys.executable, "-m", "pipelines.corpus_build", f"inputs={inputs}", f"output_dir={output_dir}",
        "split_bytes=200000", "num_partitions=3", "log_to_mlflow=false",
    ]
    return subprocess.Popen(command, cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def wait_for_unfinished_round(process: subprocess.Popen, *, skip: int) -> str:
    """Read the build's output up to the (skip + 1)-th line "<stage> k/n ..." of a task this run finished
    with k < n (the round's other tasks still running); returns that line."""
    import re

    seen = 0
    for raw in process.stdout:
        line = raw.decode(errors="replace")
        match = re.search(r"\] \w+ (\d+)/(\d+) ", line)
        if match and int(match.group(1)) < int(match.group(2)):
            if seen == skip:
                return line
            seen += 1
    raise AssertionError("the build ended before a round with tasks in flight")


def finish(process: subprocess.Popen) -> str:
    output = process.communicate(timeout=300)[0].decode(errors="replace")
    assert process.returncode == 0, output[-3000:]
    return output


def outputs(output_dir: Path) -> dict[str, bytes]:
    """Every output that must be byte-identical; stats.json without its timings."""
    files = {f"documents/{p.name}": p.read_bytes() for p in sorted((output_dir / "documents").glob("*.parquet"))}
    files |= {name: (output_dir / name).read_bytes() for name in COMPARED}
    # The manifest names its own output_dir, which differs between the runs compared here.
    files["manifest.json"] = files["manifest.json"].replace(str(output_dir).encode(), b"OUTPUT_DIR")
    stats = json.loads((output_dir / "stats.json").read_text())
    stats.pop("seconds")
    stats.pop("peak_rss_mb")
    for stage in stats["stages"].values():
        stage.pop("seconds")
    files["stats.json (without seconds)"] = json.dumps(stats).encode()
    return files


@pytest.fixture(scope="module")
def reference(ray_head, plain_inputs, tmp_path_factory) -> tuple[dict[str, bytes], float]:
    output_dir = tmp_path_factory.mktemp("reference") / "corpus"
    started = time.monotonic()
    output = finish(start_build(ray_head, plain_inputs, output_dir))
    assert "clean 1/" in output and "read tasks" in output
    return outputs(output_dir), time.monotonic() - started


def test_reference_build_splits_files_and_runs_every_stage(reference):
    files, _ = reference
    stats = json.loads(files["stats.json (without seconds)"])
    assert stats["read_tasks"] > stats["files"]  # plain files were split into byte ranges
    assert list(stats["stages"]) == [
        "read", "normalize", "gopher_quality", "gopher_repetition", "repair", "language", "c4", "fineweb", "pii", "dedup"
    ]
    assert stats["quarantined"] == 1
    assert stats["documents_kept"] > 0


def test_driver_killed_at_random_moments_then_rerun_is_byte_identical(ray_head, plain_inputs, reference, tmp_path):
    expected, _ = reference
    output_dir = tmp_path / "corpus"
    rng = random.Random(1234)
    for attempt in range(3):
        process = start_build(ray_head, plain_inputs, output_dir)
        # Kill right after a task of a round ends while others of that round remain (k/n, k < n): tasks are
        # in flight, at a random one of the first such moments of this attempt.
        round_line = wait_for_unfinished_round(process, skip=rng.randint(0, 2))
        time.sleep(rng.uniform(0, 0.3))
        process.send_signal(signal.SIGKILL)
        rest = process.communicate()[0].decode(errors="replace")
        # The kill landed mid-run: the driver was still running, had not finished, left no manifest.
        assert process.returncode == -signal.SIGKILL and "done in" not in rest, f"attempt {attempt}: {round_line}{rest[-2000:]}"
        assert not (output_dir / "manifest.json").exists()
    done_before_rerun = len(list((output_dir / "_work" / "done").glob("*/*.json"))) if (output_dir / "_work").exists() else 0
    output = finish(start_build(ray_head, plain_inputs, output_dir))
    assert outputs(output_dir) == expected
    assert not (output_dir / "_work").exists()
    if done_before_rerun:  # the kills left finished tasks behind, and the rerun used them
        assert "done before)" in output


def test_worker_killed_mid_task_is_retried_and_output_is_identical(ray_head, plain_inputs, reference, tmp_path):
    expected, _ = reference
    output_dir = tmp_path / "corpus"
    process = start_build(ray_head, plain_inputs, output_dir)
    killed = 0
    deadline = time.monotonic() + 120
    while not killed and process.poll() is None and time.monotonic() < deadline:
        for worker in psutil.process_iter(["cmdline"]):
            if any("ray::run_and_mark" in part for part in worker.info["cmdline"] or []):
                worker.kill()
                killed += 1
                break
        time.sleep(0.2)
    finish(process)
    assert killed == 1
    assert outputs(output_dir) == expected
