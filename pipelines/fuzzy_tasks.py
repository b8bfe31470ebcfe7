"""The fuzzy dedup's task bodies, one function per round (pipelines.fuzzy_dedup runs them through
pipelines.task_rounds, on Ray or in this process). Each reads and writes work files (pipelines.fuzzy_work)
and returns a small dict of counts."""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from common.files import atomic_path, sha256_of
from pipelines import components, minhash
from pipelines.fuzzy_dedup_config import FuzzyDedupConfig
from pipelines.fuzzy_report import add_counts, source_counts
from pipelines.fuzzy_verify import candidate_similarity
from pipelines.fuzzy_work import (
    BAND_SCHEMA,
    DUPLICATE_SCHEMA,
    NODE_SCHEMA,
    REMOVED_SCHEMA,
    bands_dir,
    duplicates_path,
    node_info,
    nodes_path,
    partition_rows,
    read_folder,
    read_pairs,
    removed_dir,
    round_dir,
    shingle_offsets_path,
    shingles_path,
    signatures_path,
    write_routed,
)
from pipelines.minhash_presets import MinHashParams
from pipelines.survivors import survivor_priority
from pipelines.task_rounds import PARQUET_OPTIONS, write_parquet


class BandRows:
    """A signature task's (key, node) rows, routed to their partitions' band files a block at a time.

    Splitting every batch across all P writers cost P passes and P row groups per batch, and
    P = documents / documents_per_partition grows with the corpus (500 at 10 TB with the settings of
    docs/scale.md): a shard of 20,000 documents took 6.8 s at P = 2,000 against 5.1 s at P = 20. Buffered,
    a block (1M rows, 16 MB) is split once (partition_rows) and each partition gets one row group of it,
    its rows in the order they came: 5.4 s at P = 2,000.
    """

    def __init__(self, writers: list, block_rows: int = 1 << 20):
        self.writers, self.block_rows = writers, block_rows
        self.keys: list[np.ndarray] = []
        self.nodes: list[np.ndarray] = []
        self.rows = 0

    def add(self, keys: np.ndarray, nodes: np.ndarray) -> None:
        self.keys.append(keys)
        self.nodes.append(nodes)
        self.rows += len(keys)
        if self.rows >= self.block_rows:
            self.flush()

    def flush(self) -> None:
        if not self.rows:
            return
        keys, nodes = np.concatenate(self.keys), np.concatenate(self.nodes)
        self.keys, self.nodes, self.rows = [], [], 0
        for p, rows in partition_rows(components.partition_of(keys, len(self.writers)), len(self.writers)):
            self.writers[p].write_table(pa.table([keys[rows], nodes[rows]], schema=BAND_SCHEMA))

    def __enter__(self) -> "BandRows":
        return self

    def __exit__(self, kind, *_) -> None:
        if kind is None:  # the writers close after this: a failed task leaves no file (atomic_path)
            self.flush()


def signature_task(
    shard_index: int, shard: str, params: MinHashParams, config: FuzzyDedupConfig, work: Path, num_partitions: int
) -> dict:
    """Round 1 for one input shard: band keys per partition, node ids and priorities, and what the
    verification reads (shingle sets or signatures) if verifying."""
    parquet = pq.ParquetFile(shard)
    missing = {"id", "text", "source"} - set(parquet.schema_arrow.names)
    if missing:
        raise ValueError(f"{shard}: no column {', '.join(sorted(missing))}; expected the corpus build's documents")
    num_documents = parquet.metadata.num_rows
    verify = config.measures_pairs and config.verify_method == "signature"
    keep_sets = config.measures_pairs and config.verify_method == "shingles"
    set_offsets = [np.zeros(1, dtype=np.int64)]
    row = without_shingles = 0
    with contextlib.ExitStack() as stack:
        band_writers = []
        for p in range(num_partitions):
            path = bands_dir(work, p) / f"shard-{shard_index:05d}.parquet"
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = stack.enter_context(atomic_path(path))
            band_writers.append(stack.enter_context(pq.ParquetWriter(tmp, BAND_SCHEMA, **PARQUET_OPTIONS)))
        band_rows = stack.enter_context(BandRows(band_writers))
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
            band_rows.add(minhash.band_keys(sigs[usable], params.bands, params.rows).ravel(), np.repeat(nodes[usable], params.bands))
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


def bucket_task(partition: int, work: Path, params: MinHashParams, config: FuzzyDedupConfig, num_partitions: int) -> dict:
    """Round 2 for one partition of band keys: candidate edges, verified if asked, routed to components round 1."""
    table = read_folder(bands_dir(work, partition), BAND_SCHEMA)
    larger, smaller = components.bucket_edges(table["key"].to_numpy(), table["node"].to_numpy())
    candidates = len(larger)
    if config.verify_threshold is not None and candidates:
        similarity = candidate_similarity(work, larger, smaller, config.verify_method, params.num_hashes)
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


def cluster_task(partition: int, work: Path, final_round: int, params: MinHashParams, config: FuzzyDedupConfig) -> dict:
    """The clusters whose first document falls in `partition`: survivors, duplicate rows, removed rows per shard.

    With survivor_threshold, a member is removed only if it reaches it with its own survivor
    (components.verified_survivors): a chain A~B~C does not remove C for A when A and C differ."""
    centre, leaf = components.stars(*read_pairs(round_dir(work, final_round, partition)))
    roots = np.unique(centre)
    cluster = np.concatenate([roots, centre])
    member = np.concatenate([roots, leaf])
    order = np.lexsort((member, cluster))
    cluster, member = cluster[order], member[order]
    ids, priority = node_info(work, member)
    if config.survivor_threshold is None:  # FineWeb's setting: every member of a component goes for its survivor
        survivor = components.survivors(cluster, member, priority)
    else:
        survivor = components.verified_survivors(cluster, member, priority, lambda members, kept: candidate_similarity(
            work, members, kept, config.verify_method, params.num_hashes) >= config.survivor_threshold)
    unchained = int(np.sum(member == survivor)) - len(roots)  # kept beyond one per component: unlike its survivor
    by_member = np.argsort(member)  # members are distinct: a node is in one star
    survivor_ids = ids.take(by_member[np.searchsorted(member, survivor, sorter=by_member)])
    # duplicates.parquet: the clusters as deduplicated (a component that verification split is several;
    # a member kept alone is in none), rows by cluster then input order
    cluster, sizes = components.survivor_groups(member, survivor)
    in_cluster = np.flatnonzero(sizes > 1)
    in_cluster = in_cluster[np.lexsort((member[in_cluster], cluster[in_cluster]))]
    duplicates = pa.table([ids.take(in_cluster), cluster[in_cluster], survivor_ids.take(in_cluster)], schema=DUPLICATE_SCHEMA)
    write_parquet(duplicates_path(work, partition), duplicates)
    removed = member[member != survivor]
    shards = components.shard_of(removed)
    for shard_index in np.unique(shards):
        rows = np.sort(components.row_of(removed[shards == shard_index]))
        path = removed_dir(work, int(shard_index)) / f"from-{partition:05d}.parquet"
        write_parquet(path, pa.table([rows], schema=REMOVED_SCHEMA))
    return {"clusters": len(np.unique(cluster[in_cluster])), "documents": len(in_cluster), "removed": len(removed),
            "unchained": unchained}


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
