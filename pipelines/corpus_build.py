"""Corpus build: raw documents -> cleaned, filtered, exactly deduplicated Parquet shards of documents.

    python -m pipelines.corpus_build inputs=data/demo/corpus output_dir=out/corpus

Three rounds of Ray tasks, each writing its result under output_dir/_work/ (so the driver never holds
the corpus, and every node of a cluster must see output_dir):

1. clean, one task per read task (a file, or a slice of a large one, pipelines/readers/inputs.py):
   read -> normalize -> Gopher quality -> Gopher repetition -> mojibake repair -> language ID -> C4 ->
   FineWeb -> PII,
   each stage a pure function of an Arrow batch (pipelines/filters/). Writes the kept documents, their
   exact-dedup keys split into hash partitions, quarantined records and a sample of dropped documents.
2. dedup, one task per hash partition: all copies of a text meet in one partition; one survives
   (pipelines/dedup.py), the others are written out as duplicates.
3. write, one task per read task: its documents minus its duplicates, as the final shard.

Resumable: every task writes its files under temporary names, renames them, then writes its
completion marker (_work/done/). A rerun of the same inputs and config, after the job or any worker
was killed at any moment, skips every task with a marker and ends with byte-identical output. A
different config or changed inputs start over.

Output (the tokenizer stage reads it):
    output_dir/documents/shard-00000.parquet ...  id, text, source, language, language_score
    output_dir/manifest.json         shards (file, documents, text bytes, sha256), totals, config; written last
    output_dir/stats.json            per stage: documents and bytes in / kept / dropped by reason, seconds
    output_dir/quarantine.jsonl      every record that could not be read, with its file and offset
    output_dir/dropped_samples.jsonl the first `dropped_samples` dropped documents per reason, for review
    output_dir/config.json
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
from collections import Counter
from collections.abc import Callable
from functools import partial
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from common.cli import run_job
from common.config import ConfigError, from_dict, save_config, to_dict
from common.files import atomic_path, sha256_of, write_json
from pipelines.config import FILTER_STAGES, CorpusBuildConfig
from pipelines.corpus_stats import StageTally, stage_table, sum_stages, text_bytes
from pipelines.dedup import (
    DUPLICATE_SCHEMA,
    KEY_SCHEMA,
    content_keys,
    drop_duplicates,
    find_duplicates,
    split_by_partition,
)
from pipelines.survivors import survivor_priority
from pipelines.filters.base import FilterOutcome
from pipelines.readers.inputs import ReadTask, expand_inputs, plan_tasks
from pipelines.readers.records import DOCUMENT_SCHEMA, QUARANTINE_SCHEMA, ReadLog
from pipelines.task_rounds import PARQUET_OPTIONS, prepare_work, run_round, write_parquet

LOG = "[corpus_build]"
OUTPUT_SCHEMA = DOCUMENT_SCHEMA.append(pa.field("language", pa.string())).append(pa.field("language_score", pa.float32()))
CLEAN_SCHEMA = OUTPUT_SCHEMA.append(pa.field("offset", pa.int64()))
SAMPLE_SCHEMA = pa.schema(
    [("reason", pa.string()), ("id", pa.string()), ("source", pa.string()), ("offset", pa.int64()), ("text", pa.string())]
)
SAMPLE_CHARS = 5_000
"""Dropped documents are sampled with their first 5,000 characters: enough to judge a decision."""

Stage = Callable[[pa.Table], FilterOutcome]


# -- files ----------------------------------------------------------------------------------------


class Work:
    """The layout of output_dir/_work: per-task outputs and completion markers."""

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



# -- stages ---------------------------------------------------------------------------------------


def build_stages(config: CorpusBuildConfig) -> list[tuple[str, Stage]]:
    """The cleaning stages `config` switches on, in order; a bad filter setting fails here, naming it."""
    from pipelines.langid import filter_language
    from pipelines.normalize import NormalizeOptions, drop_short, normalize, repair_mojibake

    options = NormalizeOptions(remove_control_characters=config.remove_control_characters)
    stages: list[tuple[str, Stage]] = [("normalize", lambda table: drop_short(normalize(table, options), config.min_chars))]
    language = ("language", partial(filter_language, languages=config.languages, min_score=config.language_threshold))
    for name in FILTER_STAGES:
        if name == "c4":
            # Mojibake repair and language ID go after the Gopher rules, not first as in FineWeb: per
            # byte ftfy and fastText cost as much as Gopher's word statistics or more, and the Gopher
            # rules drop far more (90% of the shared corpus's bytes against language ID's 24%), so
            # fewer bytes reach them. Stages that only drop commute: the kept documents are the same
            # in either order; only the stage a document failing both is counted under differs.
            if config.fix_mojibake:
                stages.append(("repair", repair_mojibake))
            stages.append(language)
        if getattr(config, name):
            from pipelines.filters import FILTERS

            config_cls, apply = FILTERS[name]
            settings = from_dict(config_cls, config.filter_settings.get(name, {}), source=f"filter_settings.{name}")
            stages.append((name, partial(apply, config=settings)))
    return stages


def sample_dropped(dropped: pa.Table, taken: Counter, limit: int) -> pa.Table | None:
    """The rows of `dropped` that are among the first `limit` of their reason (counted in `taken`)."""
    # Only the reasons are read row by row: a stage that drops most of a batch must not turn every
    # dropped text into a Python string to keep 20 of them.
    rows = []
    for index, reason in enumerate(dropped["reason"].to_pylist()):
        if taken[reason] < limit:
            taken[reason] += 1
            rows.append(index)
    if not rows:
        return None
    picked = dropped.take(rows)
    text = pc.utf8_slice_codeunits(picked["text"], 0, SAMPLE_CHARS)
    return pa.table([picked["reason"], picked["id"], picked["source"], picked["offset"], text], schema=SAMPLE_SCHEMA)


# -- tasks (plain functions; build() runs them as Ray tasks) ---------------------------------------


def clean_task(index: int, task: ReadTask, config: CorpusBuildConfig, work: Work) -> dict:
    """Round 1 for one read task: its cleaned documents, dedup keys, quarantine and dropped samples."""
    from pipelines.readers import read_task

    stages = build_stages(config)
    tallies = {name: StageTally() for name in ["read", *(name for name, _ in stages)]}
    log, taken, keys, samples = ReadLog(), Counter(), [], []
    paths = [work.clean(task), work.quarantine(task)]
    for path in paths:
        path.parent.mkdir(parents=True, exist_ok=True)
    with (
        atomic_path(paths[0]) as clean_tmp,
        atomic_path(paths[1]) as quarantine_tmp,
        pq.ParquetWriter(clean_tmp, CLEAN_SCHEMA, **PARQUET_OPTIONS) as documents,
        pq.ParquetWriter(quarantine_tmp, QUARANTINE_SCHEMA, **PARQUET_OPTIONS) as quarantine,
    ):
        batches = read_task(
            task,
            text_field=config.text_field,
            id_field=config.id_field,
            batch_size=config.batch_size,
            max_document_bytes=config.max_document_bytes,
            log=log,
        )
        for table in batches:
            quarantine.write_table(log.take_quarantined())
            tallies["read"].documents_kept += table.num_rows
            tallies["read"].bytes_kept += text_bytes(table)
            for name, stage in stages:
                started = time.perf_counter()
                outcome = stage(table)
                tallies[name].record(table, outcome.kept, outcome.dropped, outcome.counts, time.perf_counter() - started)
                sample = sample_dropped(outcome.dropped, taken, config.dropped_samples)
                if sample is not None:
                    samples.append(sample)
                table = outcome.kept
            table = table.select(CLEAN_SCHEMA.names).cast(CLEAN_SCHEMA)
            documents.write_table(table)
            keys.append(content_keys(table, index, survivor_priority(table, config.survivor, config.source_ranking)))
        quarantine.write_table(log.take_quarantined())
    tallies["read"].documents_in, tallies["read"].bytes_in = log.records, log.bytes
    tallies["read"].dropped.update(log.dropped)

    all_keys = pa.concat_tables(keys) if keys else KEY_SCHEMA.empty_table()
    for partition, part_keys in enumerate(split_by_partition(all_keys, config.num_partitions)):
        if part_keys.num_rows:
            write_parquet(work.keys(partition) / f"{task.name}.parquet", part_keys)
    write_parquet(work.samples(task), pa.concat_tables(samples) if samples else SAMPLE_SCHEMA.empty_table())
    return {
        "records": log.records,
        "stages": {name: tally.to_dict() for name, tally in tallies.items()},
        "blank_lines": log.blank_lines,
        "skipped_records": dict(log.skipped_records),
        "documents": all_keys.num_rows,
    }


def dedup_task(partition: int, work: Work) -> dict:
    """Round 2 for one hash partition: its duplicates."""
    files = sorted(work.keys(partition).glob("*.parquet"))
    keys = pa.concat_tables([pq.read_table(f) for f in files]) if files else KEY_SCHEMA.empty_table()
    duplicates = find_duplicates(keys.cast(KEY_SCHEMA))
    write_parquet(work.duplicates(partition), duplicates)
    return {"duplicates": duplicates.num_rows}


def write_task(index: int, task: ReadTask, config: CorpusBuildConfig, work: Work) -> dict:
    """Round 3 for one read task: its documents without duplicates; no file when none are left."""
    duplicate_offsets = pa.concat_tables(
        pq.read_table(work.duplicates(p), columns=["offset"], filters=[("task", "=", index)], schema=DUPLICATE_SCHEMA)
        for p in range(config.num_partitions)
    )["offset"]
    out = work.shard(task)
    out.parent.mkdir(parents=True, exist_ok=True)
    documents = kept_bytes = duplicate_bytes = 0
    with atomic_path(out) as tmp, pq.ParquetWriter(tmp, OUTPUT_SCHEMA, **PARQUET_OPTIONS) as writer:
        for batch in pq.ParquetFile(work.clean(task)).iter_batches(batch_size=config.batch_size):
            table = pa.Table.from_batches([batch])
            kept = drop_duplicates(table, duplicate_offsets)
            duplicate_bytes += text_bytes(table) - text_bytes(kept)
            if kept.num_rows:
                writer.write_table(kept.select(OUTPUT_SCHEMA.names))
                documents += kept.num_rows
                kept_bytes += text_bytes(kept)
    result = {"documents": documents, "bytes": kept_bytes, "duplicates": len(duplicate_offsets), "duplicate_bytes": duplicate_bytes}
    if documents == 0:
        out.unlink()
        return result
    return result | {"sha256": sha256_of(out)}


# -- driver ---------------------------------------------------------------------------------------


def build(config: CorpusBuildConfig, files: list[Path], output_dir: Path) -> tuple[dict, dict]:
    """Run the three rounds on the configured runner, move the shards into place; returns (manifest, stats)."""
    from common.runners import make_runner

    tasks = plan_tasks(files, config.split_bytes)
    build_stages(config)  # a bad filter setting fails now, not in every task
    work = Work((output_dir / "_work").resolve())
    prepare_work(work.root, config, files, LOG)
    runner = make_runner(config.runner)
    print(f"{LOG} {len(files)} input files -> {len(tasks)} read tasks", flush=True)
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

    manifest = {
        "shards": shards,
        "documents": sum(s["documents"] for s in shards),
        "bytes": sum(s["bytes"] for s in shards),
        "config": to_dict(config),
    }
    stages = sum_stages([r["stages"] for r in cleans])
    dedup = StageTally(
        documents_in=sum(r["documents"] for r in cleans),
        bytes_in=sum(w["bytes"] + w["duplicate_bytes"] for w in writes),
        documents_kept=manifest["documents"],
        bytes_kept=manifest["bytes"],
        dropped=Counter(duplicate=sum(d["duplicates"] for d in dedups)),
        dropped_bytes=Counter(duplicate=sum(w["duplicate_bytes"] for w in writes)),
        seconds=seconds["dedup"],
    )
    stages["dedup"] = dedup
    dropped: Counter = Counter()
    for tally in stages.values():
        dropped.update(tally.dropped)
    stats = {
        "files": len(files),
        "read_tasks": len(tasks),
        "shards": len(shards),
        "documents_in": stages["read"].documents_in,
        "documents_kept": manifest["documents"],
        "bytes_in": stages["read"].bytes_in,
        "bytes_kept": manifest["bytes"],
        "dropped": dict(sorted(dropped.items())),
        "quarantined": sum(stages["read"].dropped.values()),
        "blank_lines": sum(r["blank_lines"] for r in cleans),
        "skipped_records": dict(sum((Counter(r["skipped_records"]) for r in cleans), Counter())),
        "stages": {name: tally.to_dict() for name, tally in stages.items()},
        "seconds": {name: round(value, 3) for name, value in seconds.items()},
        "peak_rss_mb": {
            name: max(r["peak_rss_mb"] for r in results) for name, results in (("clean", cleans), ("dedup", dedups), ("write", writes))
        },
    }
    return manifest, stats


def place_shards(tasks: list[ReadTask], writes: list[dict], work: Work, output_dir: Path) -> list[dict]:
    """Move the non-empty shards to documents/shard-NNNNN.parquet, numbered in input order; drop stale ones."""
    documents_dir = output_dir / "documents"
    documents_dir.mkdir(parents=True, exist_ok=True)
    shards = []
    for task, result in zip(tasks, writes):
        if not result["documents"]:
            continue
        target = documents_dir / f"shard-{len(shards):05d}.parquet"
        if work.shard(task).is_file():
            os.replace(work.shard(task), target)
        elif not (target.is_file() and sha256_of(target) == result["sha256"]):  # moved by an interrupted run?
            raise RuntimeError(f"{work.shard(task)} is missing and {target} is not it; delete {work.root} and rerun")
        shards.append({"file": f"documents/{target.name}", **{k: result[k] for k in ("documents", "bytes", "sha256")}})
    current = {Path(s["file"]).name for s in shards}
    for stale in documents_dir.glob("shard-*.parquet"):
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


def print_summary(stats: dict) -> None:
    print(f"{LOG} done in {stats['seconds']['total']:.1f}s: {stats['documents_in']:,} records in, "
          f"{stats['documents_kept']:,} documents kept in {stats['shards']} shards "
          f"({stats['bytes_in'] / 1e6:,.1f} MB in, {stats['bytes_kept'] / 1e6:,.1f} MB kept)")
    for line in stage_table({name: StageTally.from_dict(values) for name, values in stats["stages"].items()}):
        print(line)
    if stats["quarantined"]:
        print(f"  {stats['quarantined']:,} records quarantined (quarantine.jsonl): {stats['stages']['read']['dropped']}")
    if stats["skipped_records"]:
        print(f"  records that are not documents, skipped: {stats['skipped_records']}")


def log_to_mlflow(stats: dict, output_dir: Path) -> None:
    import mlflow

    counted = ("files", "read_tasks", "shards", "documents_in", "documents_kept", "bytes_in", "bytes_kept", "quarantined", "blank_lines")
    metrics = {name: stats[name] for name in counted}
    metrics |= {f"dropped.{reason}": count for reason, count in stats["dropped"].items()}
    for stage, tally in stats["stages"].items():
        metrics |= {f"stage.{stage}.{key}": tally[key] for key in ("documents_kept", "bytes_kept", "seconds")}
        metrics |= {f"stage.{stage}.{key}": count for key, count in tally["counts"].items()}
    metrics |= {f"seconds.{name}": value for name, value in stats["seconds"].items()}
    mlflow.log_metrics(metrics)
    for name in ("manifest.json", "stats.json", "dropped_samples.jsonl"):
        mlflow.log_artifact(str(output_dir / name))


def main(config: CorpusBuildConfig) -> dict:
    """Build the corpus described by `config`; returns the stats (also in output_dir/stats.json)."""
    started = time.perf_counter()
    files = expand_inputs(config.inputs)  # a missing input fails here, before anything is written
    unreadable = [str(p) for p in files if not os.access(p, os.R_OK)]
    if unreadable:
        raise ConfigError(f"input files cannot be read (permissions): {', '.join(unreadable)}")
    output_dir = Path(config.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    # The manifest marks a complete build: remove the old one first, so an interrupted rerun is not
    # mistaken for a finished one.
    (output_dir / "manifest.json").unlink(missing_ok=True)
    print(f"{LOG} {len(files)} input files -> {output_dir}", flush=True)

    tracking = contextlib.nullcontext()
    if config.log_to_mlflow:
        from common.tracking import mlflow_run

        tracking = mlflow_run(config.mlflow_experiment, "corpus_build", to_dict(config))
    with tracking as run:
        manifest, stats = build(config, files, output_dir)
        stats["seconds"]["total"] = round(time.perf_counter() - started, 3)
        save_config(config, output_dir / "config.json")
        write_json(output_dir / "stats.json", stats)
        write_json(output_dir / "manifest.json", manifest)
        shutil.rmtree(output_dir / "_work")
        if run is not None:
            log_to_mlflow(stats, output_dir)
    print_summary(stats)
    return {**stats, "output_dir": str(output_dir), "mlflow_run_id": run.info.run_id if run is not None else None}


if __name__ == "__main__":
    raise SystemExit(
        run_job(CorpusBuildConfig, main, description="Raw documents -> cleaned, filtered, deduplicated Parquet document shards.")
    )
