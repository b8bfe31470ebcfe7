"""JSON-lines reading: formats, bad lines counted by reason with their location, input expansion."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pyarrow as pa
import pytest
import zstandard

from common.config import ConfigError
from pipelines.readers import MAX_EXAMPLES, RECORD_SCHEMA, ReadCounts, expand_inputs, read_jsonl

GOOD = [{"id": "a", "text": "first document"}, {"id": "b", "text": "second\ndocument"}, {"text": "no id here"}]


def jsonl_bytes(records: list) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in records)


def write(path: Path, data: bytes) -> Path:
    if path.name.endswith(".gz"):
        data = gzip.compress(data, mtime=0)
    elif path.name.endswith(".zst"):
        data = zstandard.ZstdCompressor().compress(data)
    path.write_bytes(data)
    return path


def read_all(path: Path, *, batch_size: int = 100, text_field: str = "text") -> tuple[pa.Table, ReadCounts]:
    counts = ReadCounts()
    tables = list(
        read_jsonl(path, source=str(path), text_field=text_field, id_field="id", batch_size=batch_size, counts=counts)
    )
    return (pa.concat_tables(tables) if tables else RECORD_SCHEMA.empty_table()), counts


@pytest.mark.parametrize("name", ["docs.jsonl", "docs.jsonl.gz", "docs.jsonl.zst"])
def test_every_format_reads_the_same_records(tmp_path, name):
    path = write(tmp_path / name, jsonl_bytes(GOOD))
    table, counts = read_all(path)
    assert table.schema == RECORD_SCHEMA
    assert table["text"].to_pylist() == [r["text"] for r in GOOD]
    # A record without a string id is named by its location.
    assert table["id"].to_pylist() == ["a", "b", f"{path}:3"]
    assert table["source"].to_pylist() == [str(path)] * 3
    assert table["line"].to_pylist() == [1, 2, 3]
    assert (counts.records, counts.blank_lines, sum(counts.dropped.values())) == (3, 0, 0)
    assert counts.bytes == len(jsonl_bytes(GOOD))


def test_zstd_file_of_several_frames_is_read_to_the_end(tmp_path):
    compressor = zstandard.ZstdCompressor()
    path = tmp_path / "frames.jsonl.zst"
    path.write_bytes(compressor.compress(jsonl_bytes(GOOD[:1])) + compressor.compress(jsonl_bytes(GOOD[1:])))
    table, _ = read_all(path)
    assert table.num_rows == 3


def test_bad_lines_are_counted_by_reason_with_their_location(tmp_path):
    lines = [
        json.dumps({"id": "ok", "text": "fine"}).encode(),  # 1
        b'{"id": "x", "text": "unterminated',  # 2 malformed_json
        b'{"id": "y", "text": "caf\xe9"}',  # 3 invalid_utf8 (Latin-1 byte)
        b"",  # 4 blank
        b"   \t",  # 5 blank
        json.dumps({"id": "z", "body": "no text field"}).encode(),  # 6 missing_text
        json.dumps({"id": "w", "text": ["a", "list"]}).encode(),  # 7 non_string_text
        json.dumps({"id": "v", "text": None}).encode(),  # 8 non_string_text
        b"[1, 2, 3]",  # 9 malformed_json: not an object
        b'{"id": "s", "text": "lone \\ud800 surrogate"}',  # 10 invalid_utf8 via an escape
        json.dumps({"id": 7, "text": "numeric id"}).encode() + b"\r",  # 11 good, CRLF line end
    ]
    path = write(tmp_path / "bad.jsonl", b"\n".join(lines) + b"\n")
    table, counts = read_all(path)
    assert table["id"].to_pylist() == ["ok", f"{path}:11"]
    assert counts.records == 9
    assert counts.blank_lines == 2
    assert dict(counts.dropped) == {"malformed_json": 2, "invalid_utf8": 2, "missing_text": 1, "non_string_text": 2}
    located = [(e["file"], e["line"], e["reason"]) for e in counts.examples]
    assert located == [
        (str(path), 2, "malformed_json"),
        (str(path), 3, "invalid_utf8"),
        (str(path), 6, "missing_text"),
        (str(path), 7, "non_string_text"),
        (str(path), 8, "non_string_text"),
        (str(path), 9, "malformed_json"),
        (str(path), 10, "invalid_utf8"),
    ]
    assert all(e["detail"] for e in counts.examples)


def test_examples_are_capped_but_every_bad_line_is_counted(tmp_path):
    path = write(tmp_path / "junk.jsonl.gz", b"not json\n" * (MAX_EXAMPLES + 5))
    table, counts = read_all(path)
    assert table.num_rows == 0
    assert counts.dropped["malformed_json"] == MAX_EXAMPLES + 5
    assert len(counts.examples) == MAX_EXAMPLES


def test_empty_file_and_blank_lines_give_no_records(tmp_path):
    table, counts = read_all(write(tmp_path / "empty.jsonl.zst", b""))
    assert (table.num_rows, counts.records, counts.blank_lines) == (0, 0, 0)
    table, counts = read_all(write(tmp_path / "blank.jsonl", b"\n\n  \n"))
    assert (table.num_rows, counts.records, counts.blank_lines) == (0, 0, 3)


def test_batches_hold_at_most_batch_size_records(tmp_path):
    path = write(tmp_path / "five.jsonl", jsonl_bytes([{"text": str(i)} for i in range(5)]))
    counts = ReadCounts()
    sizes = [t.num_rows for t in read_jsonl(path, source="s", text_field="text", id_field="id", batch_size=2, counts=counts)]
    assert sizes == [2, 2, 1]


def test_text_field_is_configurable(tmp_path):
    path = write(tmp_path / "body.jsonl", jsonl_bytes([{"body": "in body", "text": 3}]))
    table, counts = read_all(path, text_field="body")
    assert table["text"].to_pylist() == ["in body"]
    assert not counts.dropped


def test_byte_order_mark_on_first_line_is_ignored(tmp_path):
    table, counts = read_all(write(tmp_path / "bom.jsonl", b"\xef\xbb\xbf" + jsonl_bytes(GOOD)))
    assert table.num_rows == 3 and not counts.dropped


@pytest.mark.parametrize("name", ["cut.jsonl.gz", "cut.jsonl.zst", "garbled.jsonl.gz"])
def test_truncated_or_corrupt_compressed_file_is_an_error_naming_it(tmp_path, name):
    path = write(tmp_path / name, jsonl_bytes([{"text": f"line {i} of a file that will be cut"} for i in range(5000)]))
    data = path.read_bytes()
    if name.startswith("cut"):
        path.write_bytes(data[: len(data) // 2])
    else:
        path.write_bytes(data[:200] + bytes(50) + data[250:])
    with pytest.raises(ValueError, match=f"{name}: cannot read past line .*truncated or corrupt"):
        read_all(path)


def test_expand_inputs_takes_folders_globs_and_files_each_once(tmp_path):
    (tmp_path / "corpus" / "nested").mkdir(parents=True)
    b = write(tmp_path / "corpus" / "b.jsonl.zst", b"")
    a = write(tmp_path / "corpus" / "nested" / "a.jsonl", b"")
    c = write(tmp_path / "corpus" / "c.jsonl.gz", b"")
    (tmp_path / "corpus" / "README.md").write_text("not input")
    (tmp_path / "corpus" / "x.parquet").write_bytes(b"")
    assert expand_inputs([str(tmp_path / "corpus")]) == [b, c, a]
    assert expand_inputs([str(c), str(tmp_path / "corpus" / "*.jsonl*")]) == [c, b]
    assert expand_inputs([str(tmp_path / "corpus" / "**" / "*.jsonl")]) == [a]


def test_expand_inputs_names_what_is_missing(tmp_path):
    missing = tmp_path / "nowhere" / "docs.jsonl"
    with pytest.raises(ConfigError, match=f"does not exist: {missing}"):
        expand_inputs([str(missing)])
    with pytest.raises(ConfigError, match="matches no"):
        expand_inputs([str(tmp_path / "*.jsonl.zst")])
    with pytest.raises(ConfigError, match="holds no"):
        expand_inputs([str(tmp_path)])
    other = tmp_path / "docs.csv"
    other.write_text("a,b\n")
    with pytest.raises(ConfigError, match="not JSON lines.*docs.csv"):
        expand_inputs([str(other)])
