"""Exact deduplication by content hash: pure functions of Arrow tables.

Every document gets the 128-bit xxh3 hash of its normalized text. Keys (hash, file_index, line) are
split into hash partitions, so all copies of a text meet in one partition; there the copy first in
input order (lowest file index, then lowest line) survives and the others are listed as duplicates.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
import xxhash

HASH_TYPE = pa.binary(16)
KEY_SCHEMA = pa.schema([("hash", HASH_TYPE), ("file_index", pa.int32()), ("line", pa.int64())])
"""One row per document: its content hash and its position in the input order."""

DUPLICATE_SCHEMA = pa.schema([("file_index", pa.int32()), ("line", pa.int64())])


def add_content_hash(table: pa.Table) -> pa.Table:
    """Append `hash`: xxh3-128 of the UTF-8 `text`.

    128 bits: the birthday bound n^2 / 2^129 keeps the chance that two different texts collide (and one
    is wrongly dropped) below 2^-49 up to n = 2^40 documents.
    """
    hashes = [xxhash.xxh3_128_digest(text.encode("utf-8")) for text in table["text"].to_pylist()]
    return table.append_column("hash", pa.array(hashes, type=HASH_TYPE))


def hash_partition(hashes: pa.ChunkedArray | pa.Array, num_partitions: int) -> pa.Array:
    """The partition (0 .. num_partitions-1) of each hash: its first 8 bytes, big-endian, mod n."""
    return pa.array([int.from_bytes(h[:8], "big") % num_partitions for h in hashes.to_pylist()], type=pa.int32())


def content_keys(table: pa.Table, file_index: int) -> pa.Table:
    """KEY_SCHEMA rows of a hashed table read from input file number `file_index`."""
    file_indices = pa.array([file_index] * table.num_rows, type=pa.int32())
    return pa.table([table["hash"], file_indices, table["line"]], schema=KEY_SCHEMA)


def split_by_partition(keys: pa.Table, num_partitions: int) -> list[pa.Table]:
    """`keys` as one table per hash partition (some may be empty)."""
    partition = hash_partition(keys["hash"], num_partitions)
    return [keys.filter(pc.equal(partition, p)) for p in range(num_partitions)]


def find_duplicates(keys: pa.Table) -> pa.Table:
    """DUPLICATE_SCHEMA rows of every document whose hash was seen earlier in input order.

    Deterministic whatever order `keys` arrive in: sorted by (hash, file_index, line), each run of equal
    hashes keeps its first row. The result is sorted by (file_index, line).
    """
    if keys.num_rows == 0:
        return DUPLICATE_SCHEMA.empty_table()
    ordered = keys.sort_by([("hash", "ascending"), ("file_index", "ascending"), ("line", "ascending")])
    hashes = ordered["hash"].combine_chunks()
    # Row i (i >= 1) repeats the row before it; row 0 never does.
    repeats = pc.equal(hashes.slice(1), hashes.slice(0, len(hashes) - 1))
    is_duplicate = pa.concat_arrays([pa.array([False]), repeats])
    duplicates = ordered.filter(is_duplicate).select(["file_index", "line"])
    return duplicates.sort_by([("file_index", "ascending"), ("line", "ascending")]).cast(DUPLICATE_SCHEMA)


def drop_duplicates(table: pa.Table, duplicate_lines: pa.Array | pa.ChunkedArray) -> pa.Table:
    """The rows of `table` (one input file's documents) whose `line` is not in `duplicate_lines`."""
    if len(duplicate_lines) == 0:
        return table
    if isinstance(duplicate_lines, pa.ChunkedArray):
        duplicate_lines = duplicate_lines.combine_chunks()
    return table.filter(pc.invert(pc.is_in(table["line"], value_set=duplicate_lines.cast(pa.int64()))))
