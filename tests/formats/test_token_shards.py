"""The token-shard format: the Arrow layout of the files, and the reader that checks them against the manifest."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.ipc
import pytest

from common.config import ConfigError
from formats.token_shards import load_token_shards, read_token_shard, to_arrow_table


def test_arrow_table_layout():
    rows = np.arange(12, dtype=np.uint32).reshape(3, 4)
    table = to_arrow_table(rows)
    assert table.schema.field("tokens").type == pa.list_(pa.uint32(), 4)
    assert table.column_names == ["tokens"] and table.num_rows == 3
    assert table.column("tokens").to_pylist() == rows.tolist()
    empty = to_arrow_table(np.empty((0, 4), dtype=np.uint32))
    assert empty.num_rows == 0 and empty.schema.field("tokens").type.list_size == 4


def write_shards(directory, shards: list[np.ndarray], seq_len: int, **manifest_overrides):
    directory.mkdir(parents=True, exist_ok=True)
    entries = []
    for i, rows in enumerate(shards):
        table = to_arrow_table(rows)
        with pa.ipc.new_file(str(directory / f"tokens-{i:05d}.arrow"), table.schema) as writer:
            writer.write_table(table)
        entries.append({"file": f"tokens-{i:05d}.arrow", "sequences": len(rows), "sha256": ""})
    manifest = {"seq_len": seq_len, "sequences": sum(len(r) for r in shards), "shards": entries, **manifest_overrides}
    (directory / "manifest.json").write_text(json.dumps(manifest))


def test_token_shards_are_read_memory_mapped_in_manifest_order(tmp_path):
    shards = [np.arange(i * 40, (i + 1) * 40, dtype=np.uint32).reshape(10, 4) for i in range(3)]
    write_shards(tmp_path / "one", shards[:1], 4)
    single, manifest = load_token_shards(tmp_path / "one")
    assert single.tolist() == shards[0].tolist() and not single.flags.owndata and manifest["seq_len"] == 4
    assert not read_token_shard(tmp_path / "one" / "tokens-00000.arrow").flags.writeable  # a read-only map

    write_shards(tmp_path / "three", shards, 4)
    tokens, manifest = load_token_shards(tmp_path / "three")
    assert tokens.dtype == np.uint32 and tokens.tolist() == np.concatenate(shards).tolist()


def test_files_that_disagree_with_the_manifest_are_an_error(tmp_path):
    write_shards(tmp_path, [np.zeros((5, 4), dtype=np.uint32)], 8)
    with pytest.raises(ConfigError, match="tokens-00000.arrow holds 5 sequences of 4 tokens"):
        load_token_shards(tmp_path)
    with pytest.raises(ConfigError, match=str(tmp_path / "nothing" / "manifest.json")):
        load_token_shards(tmp_path / "nothing")
