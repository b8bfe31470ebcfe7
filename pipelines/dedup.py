"""Exact deduplication by content hash: pure functions of Arrow tables.

Every document gets the 128-bit xxh3 hash of its final text. Keys (hash, priority, task, offset) are
split into hash partitions, so all copies of a text meet in one partition; there the copy with the
lowest (priority, task, offset) survives and the others are listed as duplicates. `task` numbers the
read tasks in input order and `offset` orders records within a task, so with equal priority the
first copy in input order survives, whatever order the tasks finished in.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
import xxhash

HASH_TYPE = pa.binary(16)
KEY_SCHEMA = pa.schema(
    [("hash", HASH_TYPE), ("priority", pa.int64()), ("task", pa.int32()), ("offset", pa.int64())]
)
"""One row per document: its content hash, its survivor priority (lower wins) and its input position."""

DUPLICATE_SCHEMA = pa.schema([("task", pa.int32()), ("offset", pa.int64())])


def content_hashes(table: pa.Table) -> pa.Array:
    """xxh3-128 of each UTF-8 `text`.

    128 bits: the birthday bound n^2 / 2^129 keeps the chance that two different texts collide (and one
    is wrongly dropped) below 2^-49 up to n = 2^40 documents.
    """
    return pa.array([xxhash.xxh3_128_digest(text.encode("utf-8")) for text in table["text"].to_pylist()], type=HASH_TYPE)


def content_keys(table: pa.Table, task: int, priority: pa.Array) -> pa.Table:
    """KEY_SCHEMA rows of the documents of read task number `task` (a table with `text` and `offset`)."""
    tasks = pa.array([task] * table.num_rows, type=pa.int32())
    return pa.table([content_hashes(table), priority, tasks, table["offset"]], schema=KEY_SCHEMA)


def hash_partition(hashes: pa.ChunkedArray | pa.Array, num_partitions: int) -> pa.Array:
    """The partition (0 .. num_partitions-1) of each hash: its first 8 bytes, big-endian, mod n."""
    return pa.array([int.from_bytes(h[:8], "big") % num_partitions for h in hashes.to_pylist()], type=pa.int32())


def split_by_partition(keys: pa.Table, num_partitions: int) -> list[pa.Table]:
    """`keys` as one table per hash partition (some may be empty)."""
    partition = hash_partition(keys["hash"], num_partitions)
    return [keys.filter(pc.equal(partition, p)) for p in range(num_partitions)]


def find_duplicates(keys: pa.Table) -> pa.Table:
    """DUPLICATE_SCHEMA rows of every document that is not its text's survivor.

    Deterministic whatever order `keys` arrive in: sorted by (hash, priority, task, offset), each run
    of equal hashes keeps its first row. The result is sorted by (task, offset).
    """
    if keys.num_rows == 0:
        return DUPLICATE_SCHEMA.empty_table()
    order = [("hash", "ascending"), ("priority", "ascending"), ("task", "ascending"), ("offset", "ascending")]
    ordered = keys.sort_by(order)
    hashes = ordered["hash"].combine_chunks()
    # Row i (i >= 1) repeats the row before it; row 0 never does.
    repeats = pc.equal(hashes.slice(1), hashes.slice(0, len(hashes) - 1))
    is_duplicate = pa.concat_arrays([pa.array([False]), repeats])
    duplicates = ordered.filter(is_duplicate).select(["task", "offset"])
    return duplicates.sort_by([("task", "ascending"), ("offset", "ascending")]).cast(DUPLICATE_SCHEMA)


def drop_duplicates(table: pa.Table, duplicate_offsets: pa.Array | pa.ChunkedArray) -> pa.Table:
    """The rows of `table` (one read task's documents) whose `offset` is not in `duplicate_offsets`."""
    if len(duplicate_offsets) == 0:
        return table
    if isinstance(duplicate_offsets, pa.ChunkedArray):
        duplicate_offsets = duplicate_offsets.combine_chunks()
    return table.filter(pc.invert(pc.is_in(table["offset"], value_set=duplicate_offsets.cast(pa.int64()))))
