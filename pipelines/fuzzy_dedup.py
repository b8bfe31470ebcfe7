"""Fuzzy dedup: MinHash-LSH near duplicates removed from a corpus folder, distributed over Ray end to end.

    python -m pipelines.fuzzy_dedup corpus_dir=out/corpus output_dir=out/corpus_fuzzy [preset=nemo ...]

Rounds of Ray tasks, each writing under output_dir/_work/ (every node of a cluster must see it):

1. signatures, one task per input shard: MinHash signatures (pipelines.minhash) -> LSH band keys,
   split into P partitions by key; each document's id and survivor priority; with verify_threshold,
   what the verification reads (files that later tasks memory-map and read rows of): each document's
   sorted shingle set (verify_method=shingles) or its signature (verify_method=signature).
2. buckets, one task per partition: documents with an equal band key link to the bucket's smallest
   node; with verify_threshold, edges whose Jaccard similarity (true, or estimated) is below it are
   dropped.
3. components, rounds of one task per partition: large-star / small-star (pipelines.components)
   until a pair of rounds changes nothing; every component is then a star around its first document.
4. clusters, one task per partition: each star's survivor by the configured priority.
5. write, one task per input shard: its documents minus the removed ones, as the same-named shard.

P = ceil(documents / documents_per_partition), so a task's memory follows the partition size, not
the corpus size. Every task writes its files atomically and then a completion marker
(pipelines.task_rounds); a rerun with the same config and inputs redoes only unfinished tasks and
ends with the same bytes. _work is removed when the run succeeds.

Output:
    output_dir/documents/shard-NNNNN.parquet  id, text, source: one per input shard, same name, order kept
    output_dir/duplicates.parquet  id, cluster_id, survivor_id for every document of a cluster of >= 2
    output_dir/stats.json          documents and bytes in / kept / removed, by source, clusters, timings
    output_dir/config.json
    output_dir/manifest.json       shards (file, documents, text bytes, sha256), totals, config; written last
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from common.cli import run_job
from common.config import ConfigError, save_config, to_dict
from common.files import atomic_path, sha256_of, write_json
from pipelines import components, minhash
from pipelines.fuzzy_dedup_config import FuzzyDedupConfig
from formats.corpus import document_shards
from common.runners import Runner
from pipelines.survivors import survivor_priority
from pipelines.task_rounds import PARQUET_OPTIONS, prepare_work, run_round, write_parquet

LOG = "[fuzzy_dedup]"
BAND_SCHEMA = pa.schema([("key", pa.uint64()), ("node", pa.int64())])
PAIR_SCHEMA = pa.schema([("node", pa.int64()), ("neighbor", pa.int64())])
NODE_SCHEMA = pa.schema([("id", pa.string()), ("priority", pa.int64())])
REMOVED_SCHEMA = pa.schema([("row", pa.int64())])
DUPLICATE_SCHEMA = pa.schema([("id", pa.string()), ("cluster_id", pa.int64()), ("survivor_id", pa.string())])
"""cluster_id: the node (shard index << 32 | row) of the cluster's first document in input order."""


# -- work files -------------------------------------------------------------------------------------


def bands_dir(work: Path, partition: int) -> Path:
    return work / "bands" / f"part-{partition:05d}"


def signatures_path(work: Path, shard_index: int) -> Path:
    return work / "signatures" / f"shard-{shard_index:05d}.npy"


def shingles_path(work: Path, shard_index: int) -> Path:
    """Every document's sorted distinct shingle hashes, concatenated (raw uint32); offsets beside it."""
    return work / "shingles" / f"shard-{shard_index:05d}.u32"


def shingle_offsets_path(work: Path, shard_index: int) -> Path:
    return work / "shingles" / f"shard-{shard_index:05d}.offsets.npy"


def nodes_path(work: Path, shard_index: int) -> Path:
    return work / "nodes" / f"shard-{shard_index:05d}.arrow"


def round_dir(work: Path, round_number: int, partition: int) -> Path:
    """Input of one components round's task: rows routed to it by the previous round's tasks. Kept until
    the run succeeds, so that any task whose marker is missing can run again."""
    return work / "components" / f"round-{round_number:03d}" / f"part-{partition:05d}"


def duplicates_path(work: Path, partition: int) -> Path:
    return work / "duplicates" / f"part-{partition:05d}.parquet"


def removed_dir(work: Path, shard_index: int) -> Path:
    return work / "removed" / f"shard-{shard_index:05d}"


def read_folder(folder: Path, schema: pa.Schema) -> pa.Table:
    """Every Parquet file of `folder` (none: an empty table), concatenated in name order."""
    files = sorted(folder.glob("*.parquet"))
    return pa.concat_tables([pq.read_table(f, schema=schema) for f in files]) if files else schema.empty_table()


def write_routed(
    work: Path, round_number: int, sender: int, larger: np.ndarray, smaller: np.ndarray, num_partitions: int
) -> None:
    """Edges (larger, smaller) mapped for round `round_number` and written to its partitions' folders."""
    node, neighbor = components.route(larger, smaller, components.round_kind(round_number))
    partition = components.partition_of(node, num_partitions)
    order = np.argsort(partition, kind="stable")
    bounds = np.searchsorted(partition[order], np.arange(num_partitions + 1))
    for p in range(num_partitions):
        rows = order[bounds[p] : bounds[p + 1]]
        if len(rows):
            part_node, part_neighbor = components.unique_pairs(node[rows], neighbor[rows])
            table = pa.table([part_node, part_neighbor], schema=PAIR_SCHEMA)
            write_parquet(round_dir(work, round_number, p) / f"from-{sender:05d}.parquet", table)


def read_pairs(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    table = read_folder(folder, PAIR_SCHEMA)
    return table["node"].to_numpy(), table["neighbor"].to_numpy()


# -- tasks (plain functions; the driver runs them as Ray tasks through task_rounds) -----------------


def signature_task(
    shard_index: int, shard: str, params: minhash.MinHashParams, config: FuzzyDedupConfig, work: Path, num_partitions: int
) -> dict:
    """Round 1 for one input shard: band keys per partition, node ids and priorities, and what the
    verification reads (shingle sets or signatures) if verifying."""
    parquet = pq.ParquetFile(shard)
    missing = {"id", "text", "source"} - set(parquet.schema_arrow.names)
    if missing:
        raise ValueError(f"{shard}: no column {', '.join(sorted(missing))}; expected the corpus build's documents")
    num_documents = parquet.metadata.num_rows
    verify = config.verify_threshold is not None and config.verify_method == "signature"
    keep_sets = config.verify_threshold is not None and config.verify_method == "shingles"
    set_offsets = [np.zeros(1, dtype=np.int64)]
    row = without_shingles = 0
    with contextlib.ExitStack() as stack:
        band_writers = []
        for p in range(num_partitions):
            path = bands_dir(work, p) / f"shard-{shard_index:05d}.parquet"
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = stack.enter_context(atomic_path(path))
            band_writers.append(stack.enter_context(pq.ParquetWriter(tmp, BAND_SCHEMA, **PARQUET_OPTIONS)))
        nodes_file = nodes_path(work, shard_index)
        nodes_file.parent.mkdir(parents=True, exist_ok=True)
        nodes_tmp = stack.enter_context(atomic_path(nodes_file))
        node_writer = stack.enter_context(pa.ipc.new_file(str(nodes_tmp), NODE_SCHEMA))
        if verify:
            sig_file = signatures_path(work, shard_index)
            sig_file.parent.mkdir(parents=True, exist_ok=True)
            sigs_tmp = stack.enter_context(atomic_path(sig_file))
            shape = (num_documents, params.num_hashes)
            all_sigs = np.lib.format.open_memmap(sigs_tmp, mode="w+", dtype=np.uint32, shape=shape)
        if keep_sets:
            sets_file = shingles_path(work, shard_index)
            sets_file.parent.mkdir(parents=True, exist_ok=True)
            sets_out = stack.enter_context(open(stack.enter_context(atomic_path(sets_file)), "wb"))
            offsets_tmp = stack.enter_context(atomic_path(shingle_offsets_path(work, shard_index)))
        for batch in parquet.iter_batches(batch_size=config.batch_size, columns=["id", "text", "source"]):
            if batch.column("text").null_count or batch.column("id").null_count:
                raise ValueError(f"{shard}: a document near row {row} has no id or text")
            normalized = minhash.normalize(batch.column("text"))
            sigs = minhash.signatures(normalized, params)
            if keep_sets:
                values, offsets = minhash.shingle_sets(normalized, params)
                sets_out.write(values.tobytes())
                set_offsets.append(offsets[1:] + set_offsets[-1][-1])
            nodes = components.node_ids(shard_index, np.arange(row, row + batch.num_rows))
            usable = minhash.has_shingles(sigs)
            without_shingles += int(np.count_nonzero(~usable))
            keys = minhash.band_keys(sigs[usable], params.bands, params.rows).ravel()
            key_nodes = np.repeat(nodes[usable], params.bands)
            partition = components.partition_of(keys, num_partitions)
            for p, writer in enumerate(band_writers):
                chosen = partition == p
                writer.write_table(pa.table([keys[chosen], key_nodes[chosen]], schema=BAND_SCHEMA))
            node_info_batch = [batch.column("id"), survivor_priority(batch, config.survivor, config.source_ranking)]
            node_writer.write_batch(pa.record_batch(node_info_batch, schema=NODE_SCHEMA))
            if verify:
                all_sigs[row : row + batch.num_rows] = sigs
            row += batch.num_rows
        if verify:
            all_sigs.flush()
            del all_sigs
        if keep_sets:
            with open(offsets_tmp, "wb") as f:  # a file object: np.save would append .npy to a path
                np.save(f, np.concatenate(set_offsets), allow_pickle=False)
    return {"documents": row, "without_shingles": without_shingles}


def gather_signatures(work: Path, nodes: np.ndarray, num_hashes: int) -> np.ndarray:
    """The signatures of `nodes`, read from their shards' memory-mapped files (only the rows asked for)."""
    sigs = np.empty((len(nodes), num_hashes), dtype=np.uint32)
    shards = components.shard_of(nodes)
    for shard_index in np.unique(shards):
        chosen = np.flatnonzero(shards == shard_index)
        mapped = np.load(signatures_path(work, int(shard_index)), mmap_mode="r")
        sigs[chosen] = mapped[components.row_of(nodes[chosen])]
    return sigs


def read_shingle_sets(work: Path, shard_index: int) -> tuple[np.ndarray, np.ndarray]:
    """One shard's shingle sets (values memory-mapped, offsets), as minhash.shingle_sets returns them."""
    offsets = np.load(shingle_offsets_path(work, shard_index))
    if offsets[-1] == 0:  # no shingles at all; an empty file cannot be mapped
        return np.zeros(0, dtype=np.uint32), offsets
    return np.memmap(shingles_path(work, shard_index), dtype=np.uint32, mode="r"), offsets


def true_jaccard(work: Path, larger: np.ndarray, smaller: np.ndarray) -> np.ndarray:
    """Per edge: the Jaccard similarity of its two documents' shingle sets, read from their shards' files.

    Edges are taken by pair of shards, so each call merges sets from two files; the OS pages in only the
    sets asked for."""
    similarity = np.empty(len(larger), dtype=np.float64)
    shard_a, shard_b = components.shard_of(larger), components.shard_of(smaller)
    order = np.lexsort((shard_b, shard_a))
    starts = np.flatnonzero(np.r_[True, (np.diff(shard_a[order]) != 0) | (np.diff(shard_b[order]) != 0)])
    sets: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for start, end in zip(starts, [*starts[1:], len(order)]):
        chosen = order[start:end]
        a, b = int(shard_a[chosen[0]]), int(shard_b[chosen[0]])
        for shard in (a, b):
            if shard not in sets:
                sets[shard] = read_shingle_sets(work, shard)
        rows_a, rows_b = components.row_of(larger[chosen]), components.row_of(smaller[chosen])
        similarity[chosen] = minhash.set_jaccard(sets[a], rows_a, sets[b], rows_b)
    return similarity


def bucket_task(
    partition: int, work: Path, params: minhash.MinHashParams, config: FuzzyDedupConfig, num_partitions: int
) -> dict:
    """Round 2 for one partition of band keys: candidate edges, verified if asked, routed to components round 1."""
    table = read_folder(bands_dir(work, partition), BAND_SCHEMA)
    larger, smaller = components.bucket_edges(table["key"].to_numpy(), table["node"].to_numpy())
    candidates = len(larger)
    if config.verify_threshold is not None and candidates:
        if config.verify_method == "shingles":
            similarity = true_jaccard(work, larger, smaller)
        else:
            similarity = minhash.estimated_jaccard(
                gather_signatures(work, larger, params.num_hashes), gather_signatures(work, smaller, params.num_hashes)
            )
        keep = similarity >= config.verify_threshold
        larger, smaller = larger[keep], smaller[keep]
    write_routed(work, 1, partition, larger, smaller, num_partitions)
    return {"candidate_edges": candidates, "edges": len(larger)}


def star_task(round_number: int, partition: int, work: Path, num_partitions: int) -> dict:
    """One components round for one partition: its reduce, routed to the next round."""
    node, neighbor = read_pairs(round_dir(work, round_number, partition))
    larger, smaller, changes = components.star_round(components.round_kind(round_number), node, neighbor)
    write_routed(work, round_number + 1, partition, larger, smaller, num_partitions)
    return {"changes": changes, "edges": len(larger)}


def node_info(work: Path, nodes: np.ndarray) -> tuple[pa.Array, np.ndarray]:
    """(id, priority) of `nodes`, taken from their shards' memory-mapped node files."""
    ids: list[pa.Array] = []
    priority = np.empty(len(nodes), dtype=np.int64)
    positions: list[np.ndarray] = []
    shards = components.shard_of(nodes)
    for shard_index in np.unique(shards):
        chosen = np.flatnonzero(shards == shard_index)
        with pa.memory_map(str(nodes_path(work, int(shard_index)))) as source:
            table = pa.ipc.open_file(source).read_all().take(components.row_of(nodes[chosen]))
        ids.append(table["id"].combine_chunks())
        priority[chosen] = table["priority"].to_numpy()
        positions.append(chosen)
    if not ids:
        return pa.array([], pa.string()), priority
    order = np.argsort(np.concatenate(positions))
    return pa.concat_arrays(ids).take(order), priority


def cluster_task(partition: int, work: Path, final_round: int) -> dict:
    """The clusters whose first document falls in `partition`: survivors, duplicate rows, removed rows per shard."""
    centre, leaf = components.stars(*read_pairs(round_dir(work, final_round, partition)))
    roots = np.unique(centre)
    cluster = np.concatenate([roots, centre])
    member = np.concatenate([roots, leaf])
    order = np.lexsort((member, cluster))
    cluster, member = cluster[order], member[order]
    ids, priority = node_info(work, member)
    survivor = components.survivors(cluster, member, priority)
    by_member = np.argsort(member)  # members are distinct: a node is in one star
    survivor_ids = ids.take(by_member[np.searchsorted(member, survivor, sorter=by_member)])
    duplicates = pa.table([ids, cluster, survivor_ids], schema=DUPLICATE_SCHEMA)
    write_parquet(duplicates_path(work, partition), duplicates)
    removed = member[member != survivor]
    shards = components.shard_of(removed)
    for shard_index in np.unique(shards):
        rows = np.sort(components.row_of(removed[shards == shard_index]))
        path = removed_dir(work, int(shard_index)) / f"from-{partition:05d}.parquet"
        write_parquet(path, pa.table([rows], schema=REMOVED_SCHEMA))
    return {"clusters": len(roots), "documents": len(member), "removed": len(removed)}


def source_counts(table: pa.Table) -> dict[str, dict[str, int]]:
    """Per source: documents and text bytes in, and how many of each were removed (`removed` column)."""
    sums = [("bytes", "sum"), ("bytes", "count"), ("removed", "sum"), ("removed_bytes", "sum")]
    grouped = table.group_by("source").aggregate(sums)
    return {
        row["source"]: {
            "documents_in": row["bytes_count"],
            "bytes_in": row["bytes_sum"],
            "documents_removed": row["removed_sum"],
            "bytes_removed": row["removed_bytes_sum"],
        }
        for row in grouped.to_pylist()
    }


def add_counts(total: dict[str, dict[str, int]], more: dict[str, dict[str, int]]) -> None:
    for source, counts in more.items():
        into = total.setdefault(source, dict.fromkeys(counts, 0))
        for name, value in counts.items():
            into[name] += value


def write_task(shard_index: int, shard: str, output: str, work: Path, batch_size: int) -> dict:
    """Round 5 for one input shard: its documents minus the removed rows, in input order, as `output`."""
    removed_rows = read_folder(removed_dir(work, shard_index), REMOVED_SCHEMA)["row"].to_numpy()
    by_source: dict[str, dict[str, int]] = {}
    row = 0
    schema = pq.read_schema(shard)  # every column the corpus build wrote (language, ...) is carried along
    with atomic_path(output) as tmp, pq.ParquetWriter(tmp, schema, **PARQUET_OPTIONS) as writer:
        for batch in pq.ParquetFile(shard).iter_batches(batch_size=batch_size):
            table = pa.Table.from_batches([batch], schema=schema)
            removed = np.isin(np.arange(row, row + table.num_rows), removed_rows)
            text_bytes = pc.binary_length(table["text"]).to_numpy().astype(np.int64)
            counts = pa.table({
                "source": table["source"],
                "bytes": text_bytes,
                "removed": removed.astype(np.int64),
                "removed_bytes": np.where(removed, text_bytes, 0),
            })
            add_counts(by_source, source_counts(counts))
            writer.write_table(table.filter(pa.array(~removed)))
            row += table.num_rows
    documents_in = sum(c["documents_in"] for c in by_source.values())
    bytes_in = sum(c["bytes_in"] for c in by_source.values())
    removed_count = sum(c["documents_removed"] for c in by_source.values())
    bytes_removed = sum(c["bytes_removed"] for c in by_source.values())
    return {
        "documents_in": documents_in,
        "bytes_in": bytes_in,
        "documents": documents_in - removed_count,
        "bytes": bytes_in - bytes_removed,
        "sha256": sha256_of(Path(output)),
        "by_source": by_source,
    }


# -- driver -----------------------------------------------------------------------------------------


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


def concatenate_duplicates(work: Path, num_partitions: int, path: Path) -> None:
    """The partitions' duplicate rows, in partition order, into one file (one partition in memory at a time)."""
    with atomic_path(path) as tmp, pq.ParquetWriter(tmp, DUPLICATE_SCHEMA, **PARQUET_OPTIONS) as writer:
        for partition in range(num_partitions):
            part = pq.ParquetFile(duplicates_path(work, partition))
            for group in range(part.num_row_groups):
                table = part.read_row_group(group)
                if table.num_rows:
                    writer.write_table(table)


def build(config: FuzzyDedupConfig, params: minhash.MinHashParams, shards: list[Path], output_dir: Path) -> tuple[dict, dict]:
    """Run the rounds on Ray and put the outputs in place; returns (manifest, stats)."""
    from common.runners import make_runner

    runner = make_runner(config.runner)
    work = (output_dir / "_work").resolve()
    prepare_work(work, config, shards, LOG)
    num_documents = sum(pq.ParquetFile(shard).metadata.num_rows for shard in shards)
    num_partitions = max(1, math.ceil(num_documents / config.documents_per_partition))
    print(
        f"{LOG} {len(shards)} shards, {num_documents:,} documents, {num_partitions} partitions; "
        f"{params.ngram}-{params.shingle} shingles, {params.bands} bands x {params.rows} rows",
        flush=True,
    )
    seconds: dict[str, float] = {}
    partitions = range(num_partitions)
    with timed(seconds, "signatures"):
        signatures = run_round(
            runner, work, "signatures", signature_task,
            [(i, str(shard.resolve()), params, config, work, num_partitions) for i, shard in enumerate(shards)],
            log=LOG, things="shards", count="documents", unit="documents",
        )
    with timed(seconds, "buckets"):
        buckets = run_round(
            runner, work, "buckets", bucket_task, [(p, work, params, config, num_partitions) for p in partitions],
            log=LOG, things="partitions", count="edges", unit="edges",
        )
    with timed(seconds, "components"):
        final_round, stars = run_components(runner, work, num_partitions)
    with timed(seconds, "clusters"):
        clusters = run_round(
            runner, work, "clusters", cluster_task, [(p, work, final_round) for p in partitions],
            log=LOG, things="partitions", count="removed", unit="documents to remove",
        )
    documents_dir = output_dir / "documents"
    documents_dir.mkdir(parents=True, exist_ok=True)
    with timed(seconds, "write"):
        writes = run_round(
            runner, work, "write", write_task,
            [(i, str(shard.resolve()), str(documents_dir / shard.name), work, config.batch_size) for i, shard in enumerate(shards)],
            log=LOG, things="shards", count="documents", unit="documents kept",
        )
    with timed(seconds, "finish"):
        for stale in documents_dir.glob("shard-*.parquet"):  # left by an earlier run on more shards
            if stale.name not in {shard.name for shard in shards}:
                stale.unlink()
        concatenate_duplicates(work, num_partitions, output_dir / "duplicates.parquet")
        shutil.rmtree(work)

    manifest_shards = [
        {"file": f"documents/{shard.name}", **{k: result[k] for k in ("documents", "bytes", "sha256")}}
        for shard, result in zip(shards, writes)
    ]
    manifest = {
        "shards": manifest_shards,
        "documents": sum(s["documents"] for s in manifest_shards),
        "bytes": sum(s["bytes"] for s in manifest_shards),
        "config": to_dict(config),
    }
    results = {"signatures": signatures, "buckets": buckets, "components": stars, "clusters": clusters, "write": writes}
    by_source: dict[str, dict[str, int]] = {}
    for result in writes:
        add_counts(by_source, result["by_source"])
    for counts in by_source.values():
        counts["documents_kept"] = counts["documents_in"] - counts["documents_removed"]
    documents_in = sum(r["documents_in"] for r in writes)
    bytes_in = sum(r["bytes_in"] for r in writes)
    stats = {
        "shards": len(shards),
        "partitions": num_partitions,
        "minhash": dataclasses.asdict(params),
        "documents_in": documents_in,
        "documents_kept": manifest["documents"],
        "documents_removed": documents_in - manifest["documents"],
        "documents_without_shingles": sum(r["without_shingles"] for r in signatures),
        "bytes_in": bytes_in,
        "bytes_kept": manifest["bytes"],
        "bytes_removed": bytes_in - manifest["bytes"],
        "candidate_edges": sum(r["candidate_edges"] for r in buckets),
        "edges": sum(r["edges"] for r in buckets),
        "component_rounds": final_round - 1,
        "clusters": sum(r["clusters"] for r in clusters),
        "documents_in_clusters": sum(r["documents"] for r in clusters),
        "by_source": dict(sorted(by_source.items())),
        "seconds": seconds,
        "peak_rss_mb": {name: max((r["peak_rss_mb"] for r in rs), default=0.0) for name, rs in results.items()},
        "tasks_resumed": sum(r["resumed"] for rs in results.values() for r in rs),
    }
    return manifest, stats


def print_summary(stats: dict) -> None:
    rows = [
        ("documents in", stats["documents_in"]),
        ("kept", stats["documents_kept"]),
        ("removed", stats["documents_removed"]),
        ("without shingles (kept)", stats["documents_without_shingles"]),
        ("bytes in", stats["bytes_in"]),
        ("bytes removed", stats["bytes_removed"]),
        ("candidate edges", stats["candidate_edges"]),
        ("edges after verification", stats["edges"]),
        ("clusters", stats["clusters"]),
        ("documents in clusters", stats["documents_in_clusters"]),
        ("component rounds", stats["component_rounds"]),
        ("partitions", stats["partitions"]),
        ("tasks resumed", stats["tasks_resumed"]),
    ]
    width = max(len(name) for name, _ in rows)
    print(f"{LOG} done in {stats['seconds']['total']:.1f}s")
    for name, value in rows:
        print(f"  {name:<{width}}  {value:>14,}")
    sources = sorted(stats["by_source"].items(), key=lambda item: -item[1]["documents_removed"])
    source_width = max([len("source")] + [len(source) for source, _ in sources])
    print(f"  {'source':<{source_width}}  {'in':>10}  {'kept':>10}  {'removed':>10}  {'bytes removed':>14}")
    for source, counts in sources:
        print(
            f"  {source:<{source_width}}  {counts['documents_in']:>10,}  {counts['documents_kept']:>10,}  "
            f"{counts['documents_removed']:>10,}  {counts['bytes_removed']:>14,}"
        )
    print("  " + ", ".join(f"{name} {value:.1f}s" for name, value in stats["seconds"].items()))
    print("  peak RSS per worker: " + ", ".join(f"{name} {mb:.0f} MB" for name, mb in stats["peak_rss_mb"].items()))


def main(config: FuzzyDedupConfig) -> dict:
    """Remove the near duplicates of `config.corpus_dir`; returns the stats (also in output_dir/stats.json)."""
    started = time.perf_counter()
    params = minhash.resolve_params(
        config.preset, shingle=config.shingle, ngram=config.ngram, bands=config.bands, rows=config.rows, seed=config.seed
    )
    shards = document_shards(config.corpus_dir)  # a missing corpus fails here, before anything is written
    output_dir = Path(config.output_dir)
    if output_dir.resolve() == Path(config.corpus_dir).resolve():
        raise ConfigError(f"output_dir is the corpus_dir ({output_dir}); the input shards would be overwritten")
    output_dir.mkdir(parents=True, exist_ok=True)
    # The manifest marks a complete run: remove the old one first, so an interrupted rerun is not
    # mistaken for a finished one.
    (output_dir / "manifest.json").unlink(missing_ok=True)
    print(f"{LOG} {config.corpus_dir} -> {output_dir} (preset {config.preset})", flush=True)

    tracking = contextlib.nullcontext()
    if config.log_to_mlflow:
        from common.tracking import mlflow_run

        tracking = mlflow_run(config.mlflow_experiment, "fuzzy_dedup", to_dict(config))
    with tracking as run:
        manifest, stats = build(config, params, shards, output_dir)
        stats["seconds"]["total"] = round(time.perf_counter() - started, 3)
        save_config(config, output_dir / "config.json")
        write_json(output_dir / "stats.json", stats)
        write_json(output_dir / "manifest.json", manifest)
        if run is not None:
            import mlflow

            counted = (
                "documents_in", "documents_kept", "documents_removed", "documents_without_shingles", "bytes_in",
                "bytes_kept", "bytes_removed", "candidate_edges", "edges", "clusters", "documents_in_clusters",
                "component_rounds", "partitions", "tasks_resumed",
            )
            metrics = {name: stats[name] for name in counted}
            metrics |= {f"seconds_{name}": value for name, value in stats["seconds"].items()}
            metrics |= {f"peak_rss_mb_{name}": value for name, value in stats["peak_rss_mb"].items()}
            mlflow.log_metrics(metrics)
            mlflow.log_artifact(str(output_dir / "manifest.json"))
            mlflow.log_artifact(str(output_dir / "stats.json"))
    print_summary(stats)
    return {**stats, "output_dir": str(output_dir), "mlflow_run_id": run.info.run_id if run is not None else None}


if __name__ == "__main__":
    raise SystemExit(run_job(FuzzyDedupConfig, main, description="Remove near duplicates (MinHash LSH) from a corpus folder."))
