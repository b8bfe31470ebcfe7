"""The work folder of a corpus build (output_dir/_work), and how its per-task files become the output.

Every task of the three rounds writes only under _work, one file per task or hash partition, so any
task can rerun alone; the driver then moves the shards into documents/ (formats/corpus.py) and gathers
the quarantined records and dropped samples into one JSON-lines file each, all in input order.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq

from common.files import atomic_path, sha256_of
from formats.corpus import DOCUMENTS_DIR, SHARD_GLOB, shard_entry, shard_name
from pipelines.readers.inputs import ReadTask


class Work:
    """The layout of output_dir/_work: per-task outputs (completion markers: pipelines/task_rounds.py)."""

    def __init__(self, root: Path):
        self.root = root

    def clean(self, task: ReadTask) -> Path:
        return self.root / "clean" / f"{task.name}.parquet"

    def keys(self, partition: int) -> Path:
        return self.root / "keys" / f"part-{partition:05d}"

    def quarantine(self, task: ReadTask) -> Path:
        return self.root / "quarantine" / f"{task.name}.parquet"

    def samples(self, task: ReadTask) -> Path:
        return self.root / "samples" / f"{task.name}.parquet"

    def duplicates(self, partition: int) -> Path:
        return self.root / "duplicates" / f"part-{partition:05d}.parquet"

    def shard(self, task: ReadTask) -> Path:
        return self.root / "shards" / f"{task.name}.parquet"


def place_shards(tasks: list[ReadTask], writes: list[dict], work: Work, output_dir: Path) -> list[dict]:
    """Move the non-empty shards to documents/shard-NNNNN.parquet, numbered in input order; drop stale ones.
    Returns the manifest's shard entries."""
    documents_dir = output_dir / DOCUMENTS_DIR
    documents_dir.mkdir(parents=True, exist_ok=True)
    shards = []
    for task, result in zip(tasks, writes):
        if not result["documents"]:
            continue
        target = documents_dir / shard_name(len(shards))
        if work.shard(task).is_file():
            os.replace(work.shard(task), target)
        elif not (target.is_file() and sha256_of(target) == result["sha256"]):  # moved by an interrupted run?
            raise RuntimeError(f"{work.shard(task)} is missing and {target} is not it; delete {work.root} and rerun")
        shards.append(shard_entry(target.name, result))
    current = {Path(s["file"]).name for s in shards}
    for stale in documents_dir.glob(SHARD_GLOB):
        if stale.name not in current:
            stale.unlink()
    return shards


def gather_quarantine(tasks: list[ReadTask], work: Work, output_dir: Path) -> None:
    """output_dir/quarantine.jsonl: every quarantined record, in input order."""
    with atomic_path(output_dir / "quarantine.jsonl") as tmp, open(tmp, "w", encoding="utf-8") as out:
        for task in tasks:
            for row in pq.read_table(work.quarantine(task)).to_pylist():
                out.write(json.dumps(row, sort_keys=True) + "\n")


def gather_samples(tasks: list[ReadTask], work: Work, output_dir: Path, limit: int) -> None:
    """output_dir/dropped_samples.jsonl: the first `limit` dropped documents of each reason, in input order."""
    taken: Counter = Counter()
    with atomic_path(output_dir / "dropped_samples.jsonl") as tmp, open(tmp, "w", encoding="utf-8") as out:
        for task in tasks:
            for row in pq.read_table(work.samples(task)).to_pylist():
                if taken[row["reason"]] < limit:
                    taken[row["reason"]] += 1
                    out.write(json.dumps(row, sort_keys=True, ensure_ascii=False) + "\n")
