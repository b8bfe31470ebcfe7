"""Corpus build: raw documents -> cleaned, filtered, exactly deduplicated Parquet shards of documents.

    python -m pipelines.corpus_build inputs=data/demo/corpus output_dir=out/corpus

Three rounds of tasks (Ray tasks, or in this process with runner=local), each writing its result under
output_dir/_work/ (pipelines/corpus_work.py; so the driver never holds the corpus, and every node of a
cluster must see output_dir). The task bodies are in pipelines/corpus_tasks.py:

1. clean, one task per read task (a file, or a slice of a large one, pipelines/readers/inputs.py): read,
   then the cleaning stages in the order of `pipelines.config.STAGES` (normalization, language ID and the
   quality filters of pipelines/filters/, each a pure function of an Arrow batch; pipelines/corpus_stages.py).
   Writes the kept documents, their exact-dedup keys split into hash partitions, quarantined records and a
   sample of dropped documents.
2. dedup, one task per hash partition: all copies of a text meet in one partition; one survives
   (pipelines/dedup.py), the others are written out as duplicates. One partition per
   bytes_per_partition of input unless num_partitions is given, so a task's keys stay bounded.
3. write, one task per read task: its documents minus its duplicates, as the final shard.

Resumable: every task writes its files under temporary names, renames them, then writes its
completion marker (_work/done/, pipelines/task_rounds.py). A rerun of the same inputs and config, after
the job or any worker was killed at any moment, skips every task with a marker and ends with
byte-identical output. A different config or changed inputs start over.

Output (formats/corpus.py; the fuzzy dedup reads it):
    output_dir/documents/shard-00000.parquet ...  id, text, source, language, language_score
    output_dir/manifest.json         shards (file, documents, text bytes, sha256), totals, config; written last
    output_dir/stats.json            per stage: documents and bytes in / kept / dropped by reason, seconds
    output_dir/quarantine.jsonl      every record that could not be read, with its file and offset
    output_dir/dropped_samples.jsonl the first `dropped_samples` dropped documents per reason, for review
    output_dir/config.json
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from pathlib import Path

from common.cli import run_job
from common.config import ConfigError, to_dict
from common.job_harness import Built, run_folder_job
from formats.corpus import write_manifest
from pipelines.config import CorpusBuildConfig
from pipelines.corpus_stages import build_stages
from pipelines.corpus_stats import build_stats, nothing_kept, summary_lines
from pipelines.corpus_tasks import clean_task, dedup_task, write_task
from pipelines.corpus_work import Work, gather_quarantine, gather_samples, place_shards
from pipelines.readers.inputs import expand_inputs, plan_tasks
from pipelines.task_rounds import prepare_work, run_round, work_dir

LOG = "[corpus_build]"


def build(config: CorpusBuildConfig, files: list[Path], output_dir: Path) -> Built:
    """Run the three rounds on the configured runner, move the shards into place; returns the stats and
    the manifest's writer, which refuses a corpus of no document (nothing downstream takes it)."""
    from common.runners import make_runner

    tasks = plan_tasks(files, config.split_bytes)
    build_stages(config)  # a bad filter setting fails now, not in every task
    work = Work(work_dir(output_dir))
    prepare_work(work.root, config, files, LOG)
    runner = make_runner(config.runner)
    print(f"{LOG} {len(files)} input files -> {len(tasks)} read tasks, {config.num_partitions} dedup partitions", flush=True)
    seconds: dict[str, float] = {}

    started = time.perf_counter()
    calls = [(i, task, config, work) for i, task in enumerate(tasks)]
    cleans = run_round(runner, work.root, "clean", clean_task, calls, log=LOG, things="read tasks", count="records", unit="records read")
    seconds["clean"] = time.perf_counter() - started

    started = time.perf_counter()
    calls = [(p, work) for p in range(config.num_partitions)]
    dedups = run_round(runner, work.root, "dedup", dedup_task, calls, log=LOG, things="partitions", count="duplicates", unit="duplicates")
    seconds["dedup"] = time.perf_counter() - started

    started = time.perf_counter()
    calls = [(i, task, config, work) for i, task in enumerate(tasks)]
    writes = run_round(runner, work.root, "write", write_task, calls, log=LOG, things="read tasks", count="documents", unit="documents")
    shards = place_shards(tasks, writes, work, output_dir)
    gather_quarantine(tasks, work, output_dir)
    gather_samples(tasks, work, output_dir, config.dropped_samples)
    seconds["write"] = time.perf_counter() - started

    stats = build_stats(files=len(files), shards=shards, cleans=cleans, dedups=dedups, writes=writes, seconds=seconds)

    def manifest() -> None:
        if not stats["documents_kept"]:
            raise ConfigError(nothing_kept(stats, output_dir))
        write_manifest(output_dir, shards, to_dict(config))

    return Built(stats, manifest)


def dedup_partitions(config: CorpusBuildConfig, files: list[Path]) -> int:
    """num_partitions, or one exact-dedup partition per bytes_per_partition of input (as the fuzzy dedup
    sizes its partitions by documents_per_partition): a task's keys do not grow with the input."""
    if config.num_partitions is not None:
        return config.num_partitions
    return max(1, math.ceil(sum(f.stat().st_size for f in files) / config.bytes_per_partition))


def main(config: CorpusBuildConfig) -> dict:
    """Build the corpus described by `config`; returns the stats (also in output_dir/stats.json)."""
    files = expand_inputs(config.inputs)  # a missing input fails here, before anything is written
    unreadable = [str(p) for p in files if not os.access(p, os.R_OK)]
    if unreadable:
        raise ConfigError(f"input files cannot be read (permissions): {', '.join(unreadable)}")
    config = dataclasses.replace(config, num_partitions=dedup_partitions(config, files))  # recorded in config.json
    output_dir = Path(config.output_dir)
    print(f"{LOG} {len(files)} input files -> {output_dir}", flush=True)
    return run_folder_job(config, "corpus_build", lambda: build(config, files, output_dir), work=work_dir(output_dir),
                          artifacts=("dropped_samples.jsonl",), table=summary_lines)


if __name__ == "__main__":
    raise SystemExit(
        run_job(CorpusBuildConfig, main, description="Raw documents -> cleaned, filtered, deduplicated Parquet document shards.")
    )
