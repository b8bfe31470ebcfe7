"""Corpus build: JSON lines -> normalized, filtered, exactly deduplicated Parquet shards of documents.

    python -m pipelines.corpus_build inputs=data/demo/corpus output_dir=out/corpus

Three rounds of Ray tasks, each writing its result under output_dir/_work/ (so the driver never holds
the corpus, and every node of a cluster must see output_dir):

1. read, one task per input file: read -> normalize -> drop empty/short -> hash. Writes the documents
   with their line numbers, and their (hash, file_index, line) keys split into hash partitions.
2. dedup, one task per hash partition: all copies of a text share a partition; the first in input
   order survives, the others are written out as (file_index, line) duplicates.
3. write, one task per input file: its documents minus its duplicates, as the final shard.

Output (the tokenizer stage reads it):
    output_dir/documents/shard-00000.parquet ...  id: string, text: string, source: string
    output_dir/manifest.json   shards (file, documents, text bytes, sha256), totals, config; written last
    output_dir/stats.json      documents in / kept / dropped by reason, bytes, bad-record examples, timings
    output_dir/config.json

Shards are byte-identical on a rerun with the same inputs and config; each file is written under a
temporary name and renamed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from common.cli import run_job
from common.config import save_config, to_dict
from common.files import atomic_path
from pipelines.clean import drop_short, normalize
from pipelines.config import CorpusBuildConfig
from pipelines.dedup import (
    KEY_SCHEMA,
    add_content_hash,
    content_keys,
    drop_duplicates,
    find_duplicates,
    split_by_partition,
)
from pipelines.readers import (
    DOCUMENT_SCHEMA,
    MAX_EXAMPLES,
    READ_DROP_REASONS,
    RECORD_SCHEMA,
    ReadCounts,
    expand_inputs,
    read_jsonl,
)

LOG = "[corpus_build]"
DROP_REASONS = ("empty", "too_short", "duplicate", *READ_DROP_REASONS)
PARQUET_OPTIONS: dict[str, Any] = {"compression": "zstd"}


# -- files ----------------------------------------------------------------------------------------


def write_json(path: Path, value: Any) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(value, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def write_parquet(path: Path, table: pa.Table) -> None:
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, **PARQUET_OPTIONS)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def docs_path(work: Path, file_index: int) -> Path:
    return work / "docs" / f"file-{file_index:05d}.parquet"


def keys_dir(work: Path, partition: int) -> Path:
    return work / "keys" / f"part-{partition:05d}"


def duplicates_path(work: Path, partition: int) -> Path:
    return work / "duplicates" / f"part-{partition:05d}.parquet"


def shard_path(work: Path, file_index: int) -> Path:
    return work / "shards" / f"file-{file_index:05d}.parquet"


# -- tasks (plain functions; main() runs them as Ray tasks) ----------------------------------------


def read_file(file_index: int, path: str, source: str, config: CorpusBuildConfig, work: Path) -> dict:
    """Round 1 for one input file: its cleaned documents and its partitioned dedup keys, into `work`."""
    counts = ReadCounts()
    dropped: Counter = Counter()
    keys = []
    out = docs_path(work, file_index)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp, pq.ParquetWriter(tmp, RECORD_SCHEMA, **PARQUET_OPTIONS) as writer:
        batches = read_jsonl(
            Path(path),
            source=source,
            text_field=config.text_field,
            id_field=config.id_field,
            batch_size=config.batch_size,
            counts=counts,
        )
        for batch in batches:
            batch, short = drop_short(normalize(batch), config)
            dropped.update(short)
            writer.write_table(batch)
            keys.append(content_keys(add_content_hash(batch), file_index))
    all_keys = pa.concat_tables(keys) if keys else KEY_SCHEMA.empty_table()
    for partition, part_keys in enumerate(split_by_partition(all_keys, config.num_partitions)):
        if part_keys.num_rows:
            folder = keys_dir(work, partition)
            folder.mkdir(parents=True, exist_ok=True)
            write_parquet(folder / f"file-{file_index:05d}.parquet", part_keys)
    dropped.update(counts.dropped)
    return {
        "records": counts.records,
        "blank_lines": counts.blank_lines,
        "bytes": counts.bytes,
        "dropped": dict(dropped),
        "examples": counts.examples,
    }


def dedup_partition(partition: int, work: Path) -> int:
    """Round 2 for one hash partition: write its duplicates; returns how many."""
    files = sorted(keys_dir(work, partition).glob("*.parquet"))
    keys = pa.concat_tables([pq.read_table(f) for f in files]) if files else KEY_SCHEMA.empty_table()
    duplicates = find_duplicates(keys)
    out = duplicates_path(work, partition)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_parquet(out, duplicates)
    return duplicates.num_rows


def write_shard(file_index: int, config: CorpusBuildConfig, work: Path) -> dict:
    """Round 3 for one input file: its documents without duplicates; no file when none are left."""
    duplicate_lines = pa.concat_tables(
        pq.read_table(duplicates_path(work, p), columns=["line"], filters=[("file_index", "=", file_index)])
        for p in range(config.num_partitions)
    )["line"]
    out = shard_path(work, file_index)
    out.parent.mkdir(parents=True, exist_ok=True)
    documents = text_bytes = 0
    with atomic_path(out) as tmp, pq.ParquetWriter(tmp, DOCUMENT_SCHEMA, **PARQUET_OPTIONS) as writer:
        for batch in pq.ParquetFile(docs_path(work, file_index)).iter_batches(batch_size=config.batch_size):
            kept = drop_duplicates(pa.Table.from_batches([batch]), duplicate_lines)
            if kept.num_rows:
                writer.write_table(kept.select(DOCUMENT_SCHEMA.names))
                documents += kept.num_rows
                text_bytes += pc.sum(pc.binary_length(kept["text"])).as_py()
    result = {"documents": documents, "bytes": text_bytes, "duplicates": len(duplicate_lines)}
    if documents == 0:
        out.unlink()
        return result
    return result | {"sha256": sha256_of(out)}


# -- driver ---------------------------------------------------------------------------------------


def run_round(ray: Any, refs: list, verb: str, things: str, count: Callable[[Any], int], unit: str) -> list:
    """Results of `refs` in submission order, printing "<verb> k/n <things>, <total> <unit>" as each ends."""
    results: dict = {}
    total = 0
    pending = list(refs)
    while pending:
        done, pending = ray.wait(pending, num_returns=1)
        for ref in done:
            results[ref] = ray.get(ref)
            total += count(results[ref])
            print(f"{LOG} {verb} {len(results)}/{len(refs)} {things}, {total:,} {unit}", flush=True)
    return [results[ref] for ref in refs]


def build(config: CorpusBuildConfig, files: list[Path], output_dir: Path) -> tuple[dict, dict]:
    """Run the three rounds on Ray and move the shards into place; returns (manifest, stats)."""
    from common.ray_runtime import init_ray

    ray = init_ray()
    work = (output_dir / "_work").resolve()
    shutil.rmtree(work, ignore_errors=True)  # left by an interrupted run
    read_task, dedup_task, write_task = ray.remote(read_file), ray.remote(dedup_partition), ray.remote(write_shard)
    seconds: dict[str, float] = {}

    started = time.perf_counter()
    refs = [read_task.remote(i, str(path.resolve()), str(path), config, work) for i, path in enumerate(files)]
    reads = run_round(ray, refs, "read", "files", lambda result: result["records"], "docs")
    seconds["read"] = time.perf_counter() - started

    started = time.perf_counter()
    refs = [dedup_task.remote(p, work) for p in range(config.num_partitions)]
    run_round(ray, refs, "dedup", "partitions", lambda duplicates: duplicates, "duplicates")
    seconds["dedup"] = time.perf_counter() - started

    started = time.perf_counter()
    refs = [write_task.remote(i, config, work) for i in range(len(files))]
    writes = run_round(ray, refs, "wrote", "files", lambda result: result["documents"], "docs")

    # Number the non-empty shards in input order, then drop shards a previous, larger run left behind.
    documents_dir = output_dir / "documents"
    documents_dir.mkdir(parents=True, exist_ok=True)
    shards = []
    for file_index, result in enumerate(writes):
        if result["documents"]:
            name = f"shard-{len(shards):05d}.parquet"
            os.replace(shard_path(work, file_index), documents_dir / name)
            shards.append({"file": f"documents/{name}", **{k: result[k] for k in ("documents", "bytes", "sha256")}})
    current = {Path(s["file"]).name for s in shards}
    for stale in documents_dir.glob("shard-*.parquet"):
        if stale.name not in current:
            stale.unlink()
    shutil.rmtree(work)
    seconds["write"] = time.perf_counter() - started

    manifest = {
        "shards": shards,
        "documents": sum(s["documents"] for s in shards),
        "bytes": sum(s["bytes"] for s in shards),
        "config": to_dict(config),
    }
    dropped = Counter({reason: 0 for reason in DROP_REASONS})
    for result in reads:
        dropped.update(result["dropped"])
    dropped["duplicate"] = sum(result["duplicates"] for result in writes)
    stats = {
        "files": len(files),
        "shards": len(shards),
        "documents_in": sum(r["records"] for r in reads),
        "documents_kept": manifest["documents"],
        "dropped": dict(dropped),
        "blank_lines": sum(r["blank_lines"] for r in reads),
        "bytes_in": sum(r["bytes"] for r in reads),
        "bytes_kept": manifest["bytes"],
        "examples": [example for r in reads for example in r["examples"]][:MAX_EXAMPLES],
        "seconds": {name: round(value, 3) for name, value in seconds.items()},
    }
    return manifest, stats


def print_summary(stats: dict) -> None:
    rows = [("documents in", stats["documents_in"]), ("kept", stats["documents_kept"])]
    rows += [(f"dropped {reason}", count) for reason, count in stats["dropped"].items()]
    rows += [("blank lines", stats["blank_lines"]), ("bytes in", stats["bytes_in"]), ("bytes kept", stats["bytes_kept"])]
    rows += [("shards", stats["shards"])]
    width = max(len(name) for name, _ in rows)
    print(f"{LOG} done in {stats['seconds']['total']:.1f}s")
    for name, value in rows:
        print(f"  {name:<{width}}  {value:>14,}")
    for example in stats["examples"]:
        print(f"  skipped {example['file']}:{example['line']}: {example['reason']}: {example['detail']}")


def main(config: CorpusBuildConfig) -> dict:
    """Build the corpus described by `config`; returns the stats (also in output_dir/stats.json)."""
    started = time.perf_counter()
    files = expand_inputs(config.inputs)  # a missing input fails here, before anything is written
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
        if run is not None:
            import mlflow

            counted = ("files", "shards", "documents_in", "documents_kept", "blank_lines", "bytes_in", "bytes_kept")
            metrics = {name: stats[name] for name in counted}
            metrics |= {f"dropped_{reason}": count for reason, count in stats["dropped"].items()}
            metrics |= {f"seconds_{name}": value for name, value in stats["seconds"].items()}
            mlflow.log_metrics(metrics)
            mlflow.log_artifact(str(output_dir / "manifest.json"))
            mlflow.log_artifact(str(output_dir / "stats.json"))
    print_summary(stats)
    return {**stats, "output_dir": str(output_dir), "mlflow_run_id": run.info.run_id if run is not None else None}


if __name__ == "__main__":
    raise SystemExit(
        run_job(CorpusBuildConfig, main, description="JSON lines -> cleaned, deduplicated Parquet document shards.")
    )
