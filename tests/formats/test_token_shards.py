"""The token-shard format: the Arrow layout of the files (tokens, source), and the readers that check them
against the manifest."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.ipc
import pytest

from common.config import ConfigError
from formats.token_shards import (
    read_token_file_info,
    read_token_shard,
    to_arrow_table,
    verify_token_folder,
)
from tests.formats import TOKENIZER_SHA256, write_token_folder


def test_arrow_table_layout():
    rows = np.arange(12, dtype=np.uint32).reshape(3, 4)
    table = to_arrow_table(rows)
    assert table.schema.field("tokens").type == pa.list_(pa.uint32(), 4)
    assert table.column_names == ["tokens"] and table.num_rows == 3
    assert table.column("tokens").to_pylist() == rows.tolist()
    empty = to_arrow_table(np.empty((0, 4), dtype=np.uint32))
    assert empty.num_rows == 0 and empty.schema.field("tokens").type.list_size == 4

    with_sources = to_arrow_table(rows, [("a", 2), ("b", 1)])
    assert with_sources.schema.field("source").type == pa.dictionary(pa.int32(), pa.string())
    assert with_sources.column("source").to_pylist() == ["a", "a", "b"]
    with pytest.raises(ValueError, match="cover 2 rows, not 3"):
        to_arrow_table(rows, [("a", 2)])


def test_a_file_reports_its_counts_per_source_without_reading_tokens(tmp_path):
    rows = np.arange(5 * 4, dtype=np.uint32).reshape(5, 4)
    manifest = write_token_folder(tmp_path, [{"web": rows[:3], "code": rows[3:]}])
    info = read_token_file_info(tmp_path / "tokens-00000.arrow")
    assert info.sequences == 5 and info.sequences_by_source == {"code": 2, "web": 3}  # grouped in name order
    assert manifest["shards"][0]["sequences_by_source"] == info.sequences_by_source
    assert read_token_shard(tmp_path / "tokens-00000.arrow").tolist() == rows[3:].tolist() + rows[:3].tolist()
    assert read_token_file_info(tmp_path / "missing.arrow") is None
    (tmp_path / "broken.arrow").write_bytes(b"not arrow")
    assert read_token_file_info(tmp_path / "broken.arrow") is None


def test_a_folder_that_disagrees_with_its_manifest_is_refused_naming_the_file(tmp_path):
    rows = np.zeros((6, 4), dtype=np.uint32)
    write_token_folder(tmp_path, [{"a": rows}, {"a": rows}])
    assert verify_token_folder(tmp_path, tokenizer_sha256=TOKENIZER_SHA256)["sequences"] == 12
    with pytest.raises(ConfigError, match=rf"{tmp_path / 'manifest.json'} was made by the tokenizer with sha256 0+, not the expected f"):
        verify_token_folder(tmp_path, tokenizer_sha256="f" * 64)

    manifest = json.loads((tmp_path / "manifest.json").read_text())
    manifest["shards"][1]["sequences"] = 7
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ConfigError, match=r"tokens-00001.arrow holds 6 sequences of 4 tokens, .*manifest.json says 7 of 4"):
        verify_token_folder(tmp_path)

    path = tmp_path / "tokens-00001.arrow"
    path.write_bytes(path.read_bytes()[:-10])  # truncated: the size differs, no need to hash the file
    with pytest.raises(ConfigError, match=rf"{path} is {manifest['shards'][1]['bytes'] - 10} bytes, .* says"):
        verify_token_folder(tmp_path)
    path.unlink()
    with pytest.raises(ConfigError, match=rf"{path} is missing"):
        verify_token_folder(tmp_path)

    del manifest["shards"][1]["bytes"]
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ConfigError, match="predates sizes and sources per file"):
        verify_token_folder(tmp_path)


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


def test_a_token_file_is_read_as_a_read_only_memory_map(tmp_path):
    shards = [np.arange(i * 40, (i + 1) * 40, dtype=np.uint32).reshape(10, 4) for i in range(3)]
    write_shards(tmp_path / "three", shards, 4)
    for i, rows in enumerate(shards):
        mapped = read_token_shard(tmp_path / "three" / f"tokens-{i:05d}.arrow")
        assert mapped.dtype == np.uint32 and mapped.tolist() == rows.tolist()
        assert not mapped.flags.owndata and not mapped.flags.writeable


def test_a_file_without_rows_is_still_a_token_file(tmp_path):
    # A document shard may hold no held-out document: its validation file has no rows but must read back
    # (one record batch), or the job could neither list it nor keep it on a rerun.
    from formats.token_shards import read_token_file_info, write_token_file

    write_token_file(tmp_path / "empty.arrow", np.empty((0, 4), np.uint32), {"documents": "0"}, [])
    info = read_token_file_info(tmp_path / "empty.arrow")
    assert info is not None and (info.sequences, info.sequences_by_source) == (0, {})
    assert read_token_shard(tmp_path / "empty.arrow").shape == (0, 4)
