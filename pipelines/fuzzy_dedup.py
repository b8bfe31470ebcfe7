"""Fuzzy dedup: MinHash-LSH near duplicates removed from a corpus folder, distributed over Ray end to end.

    python -m pipelines.fuzzy_dedup corpus_dir=out/corpus output_dir=out/corpus_fuzzy [preset=nemo ...]

Rounds of Ray tasks (or, with runner=local, calls in this process), each writing under output_dir/_work/
(every node of a cluster must see it; layout in pipelines.fuzzy_work):

1. signatures, one task per input shard: MinHash signatures (pipelines.minhash) -> LSH band keys,
   split into P partitions by key; each document's id and survivor priority; with verify_threshold or
   survivor_threshold, what the verification reads (files that later tasks memory-map and read rows
   of): each document's sorted shingle set (verify_method=shingles) or its signature (=signature).
2. buckets, one task per partition: documents with an equal band key link to the bucket's smallest
   node; with verify_threshold, edges whose Jaccard similarity (true, or estimated:
   pipelines.fuzzy_verify) is below it are dropped.
3. components, rounds of one task per partition: large-star / small-star (pipelines.components)
   until a pair of rounds changes nothing; every component is then a star around its first document.
4. clusters, one task per partition: each star's survivor by the configured priority; with
   survivor_threshold, a member is removed only if it reaches it with that survivor (a chain
   A~B~C does not remove C for A when A and C differ); the others settle among
   themselves the same way (pipelines.components.verified_survivors).
5. write, one task per input shard: its documents minus the removed ones, as the same-named shard.

P = ceil(documents / documents_per_partition), so a task's memory follows the partition size, not
the corpus size. Every task writes its files atomically and then a completion marker
(pipelines.task_rounds); a rerun with the same config and inputs redoes only unfinished tasks and
ends with the same bytes. _work is removed when the run succeeds. The task bodies are in
pipelines.fuzzy_tasks, the stats and summary in pipelines.fuzzy_report; this module runs the rounds.

Output:
    output_dir/documents/shard-NNNNN.parquet  id, text, source: one per input shard, same name, order kept
    output_dir/duplicates.parquet  id, cluster_id, survivor_id for every document of a cluster of >= 2
    output_dir/stats.json          documents and bytes in / kept / removed, by source, clusters, timings
    output_dir/config.json
    output_dir/manifest.json       shards (file, documents, text bytes, sha256), totals, config; written last
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq

from common.cli import run_job
from common.config import ConfigError, to_dict
from common.job_harness import Built, run_folder_job
from common.runners import Runner, make_runner
from formats.corpus import DOCUMENTS_DIR, SHARD_GLOB, document_shards, shard_entry, write_manifest
from pipelines import components
from pipelines.fuzzy_dedup_config import FuzzyDedupConfig
from pipelines.fuzzy_report import build_stats, source_table
from pipelines.fuzzy_tasks import bucket_task, cluster_task, signature_task, star_task, write_task
from pipelines.fuzzy_work import concatenate_duplicates
from pipelines.minhash_presets import MinHashParams, resolve_params
from pipelines.task_rounds import prepare_work, run_round, work_dir

LOG = "[fuzzy_dedup]"


def run_components(runner: Runner, work: Path, num_partitions: int) -> tuple[int, list[dict]]:
    """Star rounds until a large-star and the small-star after it change nothing.

    Returns the number of the round whose input (never run) holds the converged stars, and every
    task's result.
    """
    changes: dict[int, int] = {}
    results: list[dict] = []
    round_number = 1
    while True:
        kind = components.round_kind(round_number)
        round_results = run_round(
            runner,
            work,
            f"components-{round_number:03d}",
            star_task,
            [(round_number, p, work, num_partitions) for p in range(num_partitions)],
            log=LOG,
            label=f"components round {round_number} ({kind.replace('_', '-')})",
            things="partitions",
            count="changes",
            unit="changes",
        )
        results += round_results
        changes[round_number] = sum(r["changes"] for r in round_results)
        if kind == components.SMALL_STAR and components.converged(changes[round_number - 1], changes[round_number]):
            return round_number + 1, results
        round_number += 1


@contextlib.contextmanager
def timed(seconds: dict[str, float], name: str) -> Iterator[None]:
    started = time.perf_counter()
    yield
    seconds[name] = round(time.perf_counter() - started, 3)


def build(config: FuzzyDedupConfig, params: MinHashParams, shards: list[Path], output_dir: Path) -> Built:
    """Run the rounds and put the outputs in place; returns the stats and the manifest's writer."""
    runner = make_runner(config.runner)
    work = work_dir(output_dir)
    prepare_work(work, config, shards, LOG)
    num_documents = sum(pq.ParquetFile(shard).metadata.num_rows for shard in shards)
    num_partitions = max(1, math.ceil(num_documents / config.documents_per_partition))
    print(
        f"{LOG} {len(shards)} shards, {num_documents:,} documents, {num_partitions} partitions; "
        f"{params.ngram}-{params.shingle} shingles, {params.bands} bands x {params.rows} rows",
        flush=True,
    )
    seconds: dict[str, float] = {}
    results: dict[str, list[dict]] = {}
    partitions = range(num_partitions)
    with timed(seconds, "signatures"):
        results["signatures"] = run_round(
            runner, work, "signatures", signature_task,
            [(i, str(shard.resolve()), params, config, work, num_partitions) for i, shard in enumerate(shards)],
            log=LOG, things="shards", count="documents", unit="documents",
        )
    with timed(seconds, "buckets"):
        results["buckets"] = run_round(
            runner, work, "buckets", bucket_task, [(p, work, params, config, num_partitions) for p in partitions],
            log=LOG, things="partitions", count="edges", unit="edges",
        )
    with timed(seconds, "components"):
        final_round, results["components"] = run_components(runner, work, num_partitions)
    with timed(seconds, "clusters"):
        results["clusters"] = run_round(
            runner, work, "clusters", cluster_task, [(p, work, final_round, params, config) for p in partitions],
            log=LOG, things="partitions", count="removed", unit="documents to remove",
        )
    documents_dir = output_dir / DOCUMENTS_DIR
    documents_dir.mkdir(parents=True, exist_ok=True)
    with timed(seconds, "write"):
        results["write"] = run_round(
            runner, work, "write", write_task,
            [(i, str(shard.resolve()), str(documents_dir / shard.name), work, config.batch_size) for i, shard in enumerate(shards)],
            log=LOG, things="shards", count="documents", unit="documents kept",
        )
    with timed(seconds, "finish"):
        for stale in documents_dir.glob(SHARD_GLOB):  # left by an earlier run on more shards
            if stale.name not in {shard.name for shard in shards}:
                stale.unlink()
        concatenate_duplicates(work, num_partitions, output_dir / "duplicates.parquet")

    entries = [shard_entry(shard.name, result) for shard, result in zip(shards, results["write"])]
    stats = build_stats(params=params, partitions=num_partitions, final_round=final_round, results=results, seconds=seconds)
    return Built(stats, lambda: write_manifest(output_dir, entries, to_dict(config)))


def main(config: FuzzyDedupConfig) -> dict:
    """Remove the near duplicates of `config.corpus_dir`; returns the stats (also in output_dir/stats.json)."""
    params = resolve_params(
        config.preset, shingle=config.shingle, ngram=config.ngram, bands=config.bands, rows=config.rows, seed=config.seed
    )
    shards = document_shards(config.corpus_dir)  # a missing corpus fails here, before anything is written
    output_dir = Path(config.output_dir)
    if output_dir.resolve() == Path(config.corpus_dir).resolve():
        raise ConfigError(f"output_dir is the corpus_dir ({output_dir}); the input shards would be overwritten")
    print(f"{LOG} {config.corpus_dir} -> {output_dir} (preset {config.preset})", flush=True)
    # by_source: its keys are input paths, as many as the inputs and not all valid MLflow metric names.
    return run_folder_job(config, "fuzzy_dedup", lambda: build(config, params, shards, output_dir), settings=(config.preset,),
                          work=work_dir(output_dir), table=source_table, not_metrics=("by_source",))


if __name__ == "__main__":
    raise SystemExit(run_job(FuzzyDedupConfig, main, description="Remove near duplicates (MinHash LSH) from a corpus folder."))
