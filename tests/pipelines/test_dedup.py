"""Exact dedup: content hashes, partitioning, and first-in-input-order-wins on hand-made keys."""

from __future__ import annotations

import random

import pyarrow as pa
import xxhash

from pipelines.clean import normalize
from pipelines.dedup import (
    DUPLICATE_SCHEMA,
    KEY_SCHEMA,
    add_content_hash,
    content_keys,
    drop_duplicates,
    find_duplicates,
    hash_partition,
    split_by_partition,
)


def hashes_of(*texts: str) -> list[bytes]:
    return add_content_hash(pa.table({"text": list(texts)}))["hash"].to_pylist()


def test_hash_is_xxh3_128_of_the_utf8_text():
    (digest,) = hashes_of("héllo")
    assert digest == xxhash.xxh3_128_digest("héllo".encode("utf-8"))
    assert add_content_hash(pa.table({"text": ["x"]})).schema.field("hash").type == pa.binary(16)


def test_texts_equal_after_normalization_hash_equal():
    table = normalize(pa.table({"text": ["caf\u00e9  au lait\n\n\n", " cafe\u0301 au\tlait", "café au lait!"]}))
    first, second, third = add_content_hash(table)["hash"].to_pylist()
    assert first == second
    assert first != third


def test_copies_of_a_text_share_a_partition():
    texts = [f"text {i % 7}" for i in range(50)]
    keys = content_keys(add_content_hash(pa.table({"text": texts, "line": list(range(1, 51))})), file_index=0)
    parts = split_by_partition(keys, 4)
    assert sum(p.num_rows for p in parts) == keys.num_rows
    seen_in: dict[bytes, int] = {}
    for index, part in enumerate(parts):
        for digest in part["hash"].to_pylist():
            assert seen_in.setdefault(digest, index) == index
    partition = hash_partition(keys["hash"], 4).to_pylist()
    assert set(partition) <= {0, 1, 2, 3}
    assert hash_partition(keys["hash"], 4).to_pylist() == partition


def keys_table(rows: list[tuple[bytes, int, int]]) -> pa.Table:
    hashes, files, lines = zip(*rows)
    return pa.table([pa.array(hashes, pa.binary(16)), pa.array(files, pa.int32()), pa.array(lines, pa.int64())], schema=KEY_SCHEMA)


def test_first_copy_in_input_order_survives_whatever_the_row_order():
    a, b, c = (bytes([n]) * 16 for n in (1, 2, 3))
    rows = [(a, 2, 5), (a, 0, 9), (a, 1, 1), (b, 1, 4), (b, 1, 2), (c, 0, 1)]
    expected = [(1, 1), (1, 4), (2, 5)]  # a: file 0 line 9 wins; b: file 1 line 2 wins; c is unique
    for seed in range(5):
        random.Random(seed).shuffle(rows)
        duplicates = find_duplicates(keys_table(rows))
        assert duplicates.schema == DUPLICATE_SCHEMA
        assert list(zip(duplicates["file_index"].to_pylist(), duplicates["line"].to_pylist())) == expected


def test_no_keys_no_duplicates():
    assert find_duplicates(KEY_SCHEMA.empty_table()).num_rows == 0
    assert find_duplicates(keys_table([(b"x" * 16, 0, 1)])).num_rows == 0


def test_drop_duplicates_removes_listed_lines_only():
    table = pa.table({"text": ["a", "b", "c", "d"], "line": pa.array([1, 2, 3, 4], pa.int64())})
    assert drop_duplicates(table, pa.chunked_array([[2], [4]], pa.int64()))["text"].to_pylist() == ["a", "c"]
    assert drop_duplicates(table, pa.array([], pa.int64())).equals(table)
