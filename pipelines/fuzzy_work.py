"""The fuzzy dedup's work files under output_dir/_work, and how its tasks read and write them.

    bands/part-PPPPP/shard-SSSSS.parquet   key, node: one input shard's LSH band keys of one partition
    signatures/shard-SSSSS.npy             (documents, num_hashes) uint32, for verify_method=signature
    shingles/shard-SSSSS.u32, .offsets.npy each document's sorted shingle set, for verify_method=shingles
    nodes/shard-SSSSS.arrow                id, priority of every document, memory-mapped by later tasks
    components/round-RRR/part-PPPPP/from-PPPPP.parquet   node, neighbor: one star round's input
    duplicates/part-PPPPP.parquet          id, cluster_id, survivor_id of the clusters found in a partition
    removed/shard-SSSSS/from-PPPPP.parquet row: the rows of an input shard a partition's clusters remove
    done/STAGE/NNNNN.json, fingerprint.json   the task rounds' completion markers (pipelines.task_rounds)

A node is a document's place in the input: shard index << 32 | row (pipelines.components).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from common.files import atomic_path
from pipelines import components
from pipelines.task_rounds import PARQUET_OPTIONS, write_parquet

BAND_SCHEMA = pa.schema([("key", pa.uint64()), ("node", pa.int64())])
PAIR_SCHEMA = pa.schema([("node", pa.int64()), ("neighbor", pa.int64())])
NODE_SCHEMA = pa.schema([("id", pa.string()), ("priority", pa.int64())])
REMOVED_SCHEMA = pa.schema([("row", pa.int64())])
DUPLICATE_SCHEMA = pa.schema([("id", pa.string()), ("cluster_id", pa.int64()), ("survivor_id", pa.string())])
"""cluster_id: the node (shard index << 32 | row) of the cluster's first document in input order."""


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


def partition_rows(partition: np.ndarray, num_partitions: int) -> Iterator[tuple[int, np.ndarray]]:
    """(p, the rows in partition p, in their order) for every partition that has rows: one stable sort,
    where a mask per partition would make the cost grow with the number of partitions."""
    order = np.argsort(partition, kind="stable")
    bounds = np.searchsorted(partition[order], np.arange(num_partitions + 1))
    for p in range(num_partitions):
        if bounds[p + 1] > bounds[p]:
            yield p, order[bounds[p] : bounds[p + 1]]


def write_routed(
    work: Path, round_number: int, sender: int, larger: np.ndarray, smaller: np.ndarray, num_partitions: int
) -> None:
    """Edges (larger, smaller) mapped for round `round_number` and written to its partitions' folders."""
    node, neighbor = components.route(larger, smaller, components.round_kind(round_number))
    for p, rows in partition_rows(components.partition_of(node, num_partitions), num_partitions):
        part_node, part_neighbor = components.unique_pairs(node[rows], neighbor[rows])
        table = pa.table([part_node, part_neighbor], schema=PAIR_SCHEMA)
        write_parquet(round_dir(work, round_number, p) / f"from-{sender:05d}.parquet", table)


def read_pairs(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    table = read_folder(folder, PAIR_SCHEMA)
    return table["node"].to_numpy(), table["neighbor"].to_numpy()


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


def concatenate_duplicates(work: Path, num_partitions: int, path: Path) -> None:
    """The partitions' duplicate rows, in partition order, into one file (one partition in memory at a time)."""
    with atomic_path(path) as tmp, pq.ParquetWriter(tmp, DUPLICATE_SCHEMA, **PARQUET_OPTIONS) as writer:
        for partition in range(num_partitions):
            part = pq.ParquetFile(duplicates_path(work, partition))
            for group in range(part.num_row_groups):
                table = part.read_row_group(group)
                if table.num_rows:
                    writer.write_table(table)
