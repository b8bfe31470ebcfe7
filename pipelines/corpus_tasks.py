"""The task bodies of the corpus build's three rounds: plain functions of their inputs and the work folder.

pipelines/corpus_build.py runs them on the configured runner (pipelines/task_rounds.py); each writes
only its own files under output_dir/_work (pipelines/corpus_work.py) and returns its counts.
"""

from __future__ import annotations

import time
from collections import Counter

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from common.files import atomic_path, sha256_of
from formats.corpus import CORPUS_SCHEMA
from pipelines.config import CorpusBuildConfig
from pipelines.corpus_stages import build_stages
from pipelines.corpus_stats import StageTally, text_bytes
from pipelines.corpus_work import Work
from pipelines.dedup import DUPLICATE_SCHEMA, KEY_SCHEMA, content_keys, drop_duplicates, find_duplicates, split_by_partition
from pipelines.readers.inputs import ReadTask
from pipelines.readers.records import QUARANTINE_SCHEMA, ReadLog
from pipelines.survivors import survivor_priority
from pipelines.task_rounds import PARQUET_OPTIONS, write_parquet

CLEAN_SCHEMA = CORPUS_SCHEMA.append(pa.field("offset", pa.int64()))
"""A cleaned document before the dedup: its offset in the input decides which copy survives."""
SAMPLE_SCHEMA = pa.schema(
    [("reason", pa.string()), ("id", pa.string()), ("source", pa.string()), ("offset", pa.int64()), ("text", pa.string())]
)
SAMPLE_CHARS = 5_000
"""Dropped documents are sampled with their first 5,000 characters: enough to judge a decision."""


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
            extractor=config.extractor,
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
    with atomic_path(out) as tmp, pq.ParquetWriter(tmp, CORPUS_SCHEMA, **PARQUET_OPTIONS) as writer:
        for batch in pq.ParquetFile(work.clean(task)).iter_batches(batch_size=config.batch_size):
            table = pa.Table.from_batches([batch])
            kept = drop_duplicates(table, duplicate_offsets)
            duplicate_bytes += text_bytes(table) - text_bytes(kept)
            if kept.num_rows:
                writer.write_table(kept.select(CORPUS_SCHEMA.names))
                documents += kept.num_rows
                kept_bytes += text_bytes(kept)
    result = {"documents": documents, "bytes": kept_bytes, "duplicates": len(duplicate_offsets), "duplicate_bytes": duplicate_bytes}
    if documents == 0:
        out.unlink()
        return result
    return result | {"sha256": sha256_of(out)}
