"""End-to-end fuzzy dedup: ours (pipelines.fuzzy_dedup on Ray) vs datatrove's MinHash pipeline, same input, same cores.

    .venv/bin/python bench/fuzzy_dedup_vs_datatrove.py --size-gb 0.3 [--skip-datatrove] [--work /tmp/fuzzy-bench]
        [--settings default,unverified]

Input: the shared debian-docs corpus (../shared/corpora/debian-docs, 155 MB of JSON lines) replicated to
--size-gb of text: copy 0 as it is, every later copy with each document's words substituted, inserted
or deleted (one kind per document) at a rate drawn uniformly from 0-10%. Written once (and reused) as a
corpus folder of ~64 MB Parquet shards (id, text, source) under --work; both pipelines read it.

- ours: `python -m pipelines.fuzzy_dedup` (preset fineweb: 5-word shingles, 14 bands x 8 rows), a
  private local Ray on the machine's cores (2 here), once per --settings value: `default` (true
  Jaccard of each candidate pair, kept at >= 0.7, and of each removed document with its survivor, at
  >= 0.5) and `unverified` (verify_threshold=none survivor_threshold=none: FineWeb's setting, as
  datatrove does it), so the table shows what verification costs;
- datatrove 0.10.1: MinhashDedupSignature -> MinhashDedupBuckets -> MinhashDedupCluster ->
  MinhashDedupFilter with MinhashConfig(n_grams=5, num_buckets=14, hashes_per_bucket=8), Parquet in and
  out, LocalPipelineExecutor with 2 workers (tasks: one per shard, 14 buckets, 1, one per shard).

Each runs in its own process; its wall time includes starting Ray or the worker pools. Peak RSS per
worker: ours from its tasks' getrusage (stats.json), datatrove's as the largest pool process.

datatrove 0.10.1 passes its shingles to xxhash as str, which the installed xxhash 4 refuses (older
versions encoded str as UTF-8): `compatibility_shim` encodes them first; datatrove's pools fork, so
their workers inherit it.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from bench.near_duplicates import read_documents, replicated
from formats.corpus import DOCUMENT_SCHEMA, existing_shard_entries, write_manifest

SHARED_CORPUS = Path("../shared/corpora/debian-docs")
SHARD_BYTES = 64_000_000
CORES = 2


def compatibility_shim() -> None:
    """What datatrove 0.10.1 needs to run with xxhash 4 (see the module docstring)."""
    import xxhash

    from datatrove.utils.hashes import xxhash as datatrove_xxhash

    datatrove_xxhash.xxhash64 = lambda data: xxhash.xxh64_intdigest(data.encode("utf-8") if isinstance(data, str) else data)


# -- input --------------------------------------------------------------------------------------------


def make_corpus(folder: Path, size_gb: float, seed: int = 0) -> dict:
    """The replicated, edited corpus in folder/documents (made once; its info.json marks it complete)."""
    info_file = folder / "info.json"
    if info_file.is_file():
        if not (folder / "manifest.json").is_file():  # made before the readers required one
            write_manifest(folder, existing_shard_entries(folder), {})
        return json.loads(info_file.read_text())
    shutil.rmtree(folder, ignore_errors=True)
    (folder / "documents").mkdir(parents=True)
    originals = list(read_documents(sorted(SHARED_CORPUS.glob("docs-*.jsonl*"))))
    rng = np.random.default_rng(seed)
    vocabulary = sorted({w for _, text, _ in originals[:5000] for w in text.split() if w.isalpha()})
    target = size_gb * 1e9
    total = documents = 0
    shard, rows, shard_bytes = 0, [], 0

    def flush() -> None:
        nonlocal shard, rows, shard_bytes
        columns = [list(column) for column in zip(*rows)]
        pq.write_table(pa.table(columns, schema=DOCUMENT_SCHEMA), folder / "documents" / f"shard-{shard:05d}.parquet")
        shard, rows, shard_bytes = shard + 1, [], 0

    copy = 0
    for doc_id, text, source, copy in replicated(originals, target, vocabulary, rng):
        size = len(text.encode("utf-8"))
        rows.append((doc_id, text, source))
        total, documents, shard_bytes = total + size, documents + 1, shard_bytes + size
        if shard_bytes >= SHARD_BYTES:
            flush()
            print(f"  input: copy {copy}, {total / 1e9:.2f} GB", flush=True)
    copy += 1
    if rows:
        flush()
    write_manifest(folder, existing_shard_entries(folder), {})  # the readers require it (formats/corpus.py)
    info = {"documents": documents, "bytes": total, "shards": shard, "copies": copy}
    info_file.write_text(json.dumps(info))
    return info


# -- the two runs (each in its own process) -----------------------------------------------------------


SETTINGS = {"default": [], "unverified": ["verify_threshold=none", "survivor_threshold=none"]}


def run_ours(corpus: Path, output: Path, setting: str) -> dict:
    shutil.rmtree(output, ignore_errors=True)
    env = dict(os.environ, LLADA_STATE_DIR=str(output.parent / "state"))
    env.pop("RAY_ADDRESS", None)
    command = [sys.executable, "-m", "pipelines.fuzzy_dedup", f"corpus_dir={corpus}", f"output_dir={output}", "log_to_mlflow=false",
               *SETTINGS[setting]]
    started = time.perf_counter()
    subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL)
    seconds = time.perf_counter() - started
    stats = json.loads((output / "stats.json").read_text())
    return {
        "seconds": seconds,
        "removed": stats["documents_removed"],
        "unchained": stats.get("documents_unchained", 0),
        "peak_rss_mb": max(stats["peak_rss_mb"].values()),
        "peak_rss_by_stage": stats["peak_rss_mb"],
        "stages": stats["seconds"],
    }


def run_datatrove(corpus: Path, work: Path) -> dict:
    """Datatrove's four MinHash stages (called in a child process: see main)."""
    compatibility_shim()
    from datatrove.executor.local import LocalPipelineExecutor
    from datatrove.pipeline.dedup.minhash import (
        MinhashConfig,
        MinhashDedupBuckets,
        MinhashDedupCluster,
        MinhashDedupFilter,
        MinhashDedupSignature,
    )
    from datatrove.pipeline.readers import ParquetReader
    from datatrove.pipeline.writers import ParquetWriter

    shutil.rmtree(work, ignore_errors=True)
    config = MinhashConfig(n_grams=5, num_buckets=14, hashes_per_bucket=8)
    shards = len(list((corpus / "documents").glob("shard-*.parquet")))

    def reader():
        return ParquetReader(str(corpus / "documents"), glob_pattern="shard-*.parquet", text_key="text", id_key="id")

    stages = {
        "signatures": ([reader(), MinhashDedupSignature(output_folder=str(work / "signatures"), config=config)], shards),
        "buckets": ([MinhashDedupBuckets(input_folder=str(work / "signatures"), output_folder=str(work / "buckets"), config=config)], config.num_buckets),
        "cluster": ([MinhashDedupCluster(input_folder=str(work / "buckets"), output_folder=str(work / "remove_ids"), config=config)], 1),
        "filter": ([reader(), MinhashDedupFilter(input_folder=str(work / "remove_ids")), ParquetWriter(str(work / "output"))], shards),
    }
    seconds = {}
    for name, (pipeline, tasks) in stages.items():
        started = time.perf_counter()
        LocalPipelineExecutor(
            pipeline=pipeline, tasks=tasks, workers=CORES, logging_dir=str(work / "logs" / name), start_method="fork"
        ).run()
        seconds[name] = round(time.perf_counter() - started, 1)
    kept = sum(pq.ParquetFile(f).metadata.num_rows for f in (work / "output").rglob("*.parquet"))
    return {"seconds_by_stage": seconds, "kept": kept, "peak_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}


def datatrove_in_child(corpus: Path, work: Path, documents: int) -> dict:
    started = time.perf_counter()
    child = subprocess.run(
        [sys.executable, __file__, "--datatrove-child", str(corpus), str(work)], check=True, capture_output=True, text=True
    )
    seconds = time.perf_counter() - started
    result = json.loads(child.stdout.strip().splitlines()[-1])
    return {
        "seconds": seconds,
        "removed": documents - result["kept"],
        "peak_rss_mb": result["peak_rss_mb"],
        "stages": result["seconds_by_stage"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-gb", type=float, default=0.3)
    parser.add_argument("--work", type=Path, default=Path("/tmp/fuzzy-bench"))
    parser.add_argument("--skip-datatrove", action="store_true")
    parser.add_argument("--settings", default="default,unverified", help=f"runs of ours, of {', '.join(SETTINGS)}")
    parser.add_argument("--datatrove-child", nargs=2, type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.datatrove_child:
        print(json.dumps(run_datatrove(*args.datatrove_child)))
        return
    corpus = args.work / f"corpus-{args.size_gb:g}gb"
    info = make_corpus(corpus, args.size_gb)
    megabytes = info["bytes"] / 1e6
    print(f"input: {info['documents']:,} documents, {megabytes:,.0f} MB of text, {info['shards']} shards, {info['copies']} copies; {CORES} cores")
    results = {f"ours {setting}": run_ours(corpus, args.work / f"ours-{args.size_gb:g}gb", setting) for setting in args.settings.split(",")}
    if not args.skip_datatrove:
        results["datatrove"] = datatrove_in_child(corpus, args.work / f"datatrove-{args.size_gb:g}gb", info["documents"])
    print(f"{'':<16}{'seconds':>9}{'MB/s':>8}{'MB/s/core':>11}{'removed':>10}{'peak RSS/worker MB':>20}")
    for name, result in results.items():
        rate = megabytes / result["seconds"]
        print(f"{name:<16}{result['seconds']:>9.1f}{rate:>8.2f}{rate / CORES:>11.2f}{result['removed']:>10,}{result['peak_rss_mb']:>20.0f}")
    for name, result in results.items():
        print(f"  {name} stages: " + ", ".join(f"{stage} {value:.1f}s" for stage, value in result["stages"].items()))
        if "peak_rss_by_stage" in result:
            print(f"  {name} peak RSS MB by stage: " + ", ".join(f"{k} {v:.0f}" for k, v in result["peak_rss_by_stage"].items())
                  + f"; kept though in a cluster, unlike its survivor: {result['unchained']:,}")
    if "datatrove" in results:
        for name in (n for n in results if n.startswith("ours")):
            print(f"{name} is {results['datatrove']['seconds'] / results[name]['seconds']:.1f}x faster per core (same cores, same input)")


if __name__ == "__main__":
    main()
