"""Rounds of tasks that survive a kill: each task writes its outputs, then a completion marker.

A task's outputs are written under temporary names and renamed (common.files.atomic_path); its marker,
written last by the task itself, holds its result. A rerun of the round skips every task whose marker
exists and reads its result back, so only unfinished tasks run again (datatrove's completion files).
Tasks must be deterministic: a task that ran twice leaves the same bytes. Where the tasks run is the
runner's business (common/runners.py: Ray tasks, or this process).
"""

from __future__ import annotations

import json
import resource
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from common.config import to_dict
from common.files import atomic_path, write_atomically
from common.runners import Runner

PARQUET_OPTIONS: dict[str, Any] = {"compression": "zstd"}


def write_parquet(path: Path, table: pa.Table) -> None:
    """One task output: `table` as zstd Parquet, written atomically; creates the folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, **PARQUET_OPTIONS)


def work_dir(output_dir: Path) -> Path:
    """Where a job's task rounds keep their files and markers: output_dir/_work (every node must see it)."""
    return (output_dir / "_work").resolve()


NOT_FINGERPRINTED = ("log_to_mlflow", "mlflow_experiment", "runner")
"""Config keys that do not change a job's outputs."""


def prepare_work(work: Path, config: Any, inputs: Sequence[Path], log: str) -> None:
    """Keep `work` from an interrupted run only if the same config made it from the same inputs
    (path, size, modification time); otherwise start it afresh."""
    settings = {k: v for k, v in to_dict(config).items() if k not in NOT_FINGERPRINTED}
    stamps = [{"file": str(p.resolve()), "size": p.stat().st_size, "mtime_ns": p.stat().st_mtime_ns} for p in inputs]
    fingerprint = json.dumps({"config": settings, "inputs": stamps}, indent=2, sort_keys=True) + "\n"
    marker = work / "fingerprint.json"
    if marker.is_file() and marker.read_text(encoding="utf-8") == fingerprint:
        print(f"{log} resuming the interrupted run in {work}", flush=True)
        return
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    write_atomically(marker, fingerprint)


def marker_path(work: Path, stage: str, index: int) -> Path:
    return work / "done" / stage / f"{index:05d}.json"


def run_and_mark(task: Callable[..., dict], marker: str, *args: Any) -> dict:
    """On a worker: `task(*args)`, then its marker. Adds the worker process's peak RSS so far, in MB."""
    result = dict(task(*args))
    result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    Path(marker).parent.mkdir(parents=True, exist_ok=True)
    write_atomically(marker, json.dumps(result))  # key order kept: a resumed result reads back exactly as returned
    return result


def run_round(
    runner: Runner,
    work: Path,
    stage: str,
    task: Callable[..., dict],
    calls: Sequence[tuple],
    *,
    log: str,
    label: str | None = None,
    things: str,
    count: str,
    unit: str,
) -> list[dict]:
    """`task(*call)` for every call not already marked done, on `runner`; results in call order, each
    with "resumed": whether it was read back from an earlier run's marker.

    Prints "<log> <label or stage> k/n <things>, <sum of result[count]> <unit>" as each task ends.
    """
    label = label or stage
    results: dict[int, dict] = {}
    for index in range(len(calls)):
        marker = marker_path(work, stage, index)
        if marker.is_file():
            results[index] = {**json.loads(marker.read_text(encoding="utf-8")), "resumed": True}
    resumed = f" ({len(results)} done before)" if results else ""

    def report() -> None:
        total = sum(r[count] for r in results.values())
        print(f"{log} {label} {len(results)}/{len(calls)} {things}, {total:,} {unit}{resumed}", flush=True)

    todo = [index for index in range(len(calls)) if index not in results]
    if not todo:
        report()
    marked = [(task, str(marker_path(work, stage, index)), *calls[index]) for index in todo]
    for position, result in runner.map_unordered(run_and_mark, marked):
        results[todo[position]] = {**result, "resumed": False}
        report()
    return [results[index] for index in range(len(calls))]
