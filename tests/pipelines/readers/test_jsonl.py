"""JSON lines: every format reads the same records, byte ranges read each line once, bad input is quarantined."""

from __future__ import annotations

import gzip
import json
import random
from pathlib import Path

import pyarrow as pa
import pytest
import zstandard

from pipelines.readers import ReadLog, read_task
from pipelines.readers.inputs import ReadTask, plan_tasks
from pipelines.readers.records import QUARANTINE_SCHEMA, RECORD_SCHEMA

GOOD = [{"id": "a", "text": "first document"}, {"id": "b", "text": "second\ndocument"}, {"text": "no id here"}]
OPTIONS = {"text_field": "text", "id_field": "id", "batch_size": 100, "max_document_bytes": 1 << 20}


def jsonl_lines(records: list) -> list[bytes]:
    return [json.dumps(r).encode() + b"\n" for r in records]


def line_offsets(lines: list[bytes], start: int = 0) -> list[int]:
    offsets = []
    for line in lines:
        offsets.append(start)
        start += len(line)
    return offsets


def write(path: Path, data: bytes) -> Path:
    if path.name.endswith(".gz"):
        data = gzip.compress(data, mtime=0)
    elif path.name.endswith(".zst"):
        data = zstandard.ZstdCompressor().compress(data)
    path.write_bytes(data)
    return path


def read(task: ReadTask, **options) -> tuple[pa.Table, ReadLog, pa.Table]:
    """(records, log, quarantine) of one read task, each read with its own log as the corpus build does."""
    log = ReadLog()
    tables = list(read_task(task, **(OPTIONS | options), log=log))
    for table in tables:
        assert table.schema == RECORD_SCHEMA
    return (pa.concat_tables(tables) if tables else RECORD_SCHEMA.empty_table()), log, log.take_quarantined()


def read_file(path: Path, **options) -> tuple[pa.Table, ReadLog, pa.Table]:
    (task,) = plan_tasks([path], split_bytes=1 << 40)
    return read(task, **options)


def located(quarantine: pa.Table) -> list[tuple[str, int, str]]:
    assert quarantine.schema == QUARANTINE_SCHEMA
    return list(zip(*(quarantine[name].to_pylist() for name in ("file", "offset", "reason"))))


@pytest.mark.parametrize("name", ["docs.jsonl", "docs.jsonl.gz", "docs.jsonl.zst"])
def test_every_format_reads_the_same_records(tmp_path, name):
    lines = jsonl_lines(GOOD)
    path = write(tmp_path / name, b"".join(lines))
    table, log, quarantine = read_file(path)
    offsets = line_offsets(lines)
    assert table["text"].to_pylist() == [r["text"] for r in GOOD]
    # Offsets are byte offsets in the decompressed stream; a record without an id is named by its offset.
    assert table["offset"].to_pylist() == offsets
    assert table["id"].to_pylist() == ["a", "b", f"{path}:{offsets[2]}"]
    assert table["source"].to_pylist() == [str(path)] * 3
    assert (log.records, log.blank_lines, log.bytes) == (3, 0, sum(map(len, lines)))
    assert not log.dropped and quarantine.num_rows == 0


@pytest.mark.parametrize("name", ["frames.jsonl.zst", "members.jsonl.gz"])
def test_file_of_several_compressed_frames_is_read_to_the_end(tmp_path, name):
    # pzstd, pigz and appending to a file all write several frames (gzip: members).
    lines = jsonl_lines(GOOD)
    compress = zstandard.ZstdCompressor().compress if name.endswith(".zst") else lambda data: gzip.compress(data, mtime=0)
    path = tmp_path / name
    path.write_bytes(compress(lines[0]) + compress(b"".join(lines[1:])))
    table, _, quarantine = read_file(path)
    assert table["text"].to_pylist() == [r["text"] for r in GOOD]
    assert table["offset"].to_pylist() == line_offsets(lines)
    assert quarantine.num_rows == 0


def test_bad_lines_are_quarantined_by_reason_with_their_byte_offset(tmp_path):
    lines = [
        json.dumps({"id": "ok", "text": "fine"}).encode(),
        b'{"id": "x", "text": "unterminated',  # malformed_json
        b'{"id": "y", "text": "caf\xe9"}',  # invalid_utf8 (a Latin-1 byte)
        b"",  # blank
        b"   \t",  # blank
        json.dumps({"id": "z", "body": "no text field"}).encode(),  # missing_text
        json.dumps({"id": "w", "text": ["a", "list"]}).encode(),  # non_string_text
        json.dumps({"id": "v", "text": None}).encode(),  # non_string_text
        b"[1, 2, 3]",  # malformed_json: not an object
        b'{"id": "s", "text": "lone \\ud800 surrogate"}',  # invalid_utf8, spelled as a JSON escape
        json.dumps({"id": 7, "text": "numeric id"}).encode() + b"\r",  # good, CRLF line end
        b'{"id": "\\udfff", "text": "id with a lone surrogate"}',  # good; the unusable id is replaced
    ]
    lines = [line + b"\n" for line in lines]
    path = write(tmp_path / "bad.jsonl", b"".join(lines))
    offsets = line_offsets(lines)
    table, log, quarantine = read_file(path)
    assert table["text"].to_pylist() == ["fine", "numeric id", "id with a lone surrogate"]
    assert table["id"].to_pylist() == ["ok", f"{path}:{offsets[10]}", f"{path}:{offsets[11]}"]
    assert table["offset"].to_pylist() == [offsets[0], offsets[10], offsets[11]]
    assert (log.records, log.blank_lines) == (10, 2)
    assert dict(log.dropped) == {"malformed_json": 2, "invalid_utf8": 2, "missing_text": 1, "non_string_text": 2}
    bad = {
        1: "malformed_json",
        2: "invalid_utf8",
        5: "missing_text",
        6: "non_string_text",
        7: "non_string_text",
        8: "malformed_json",
        9: "invalid_utf8",
    }
    assert located(quarantine) == [(str(path), offsets[i], reason) for i, reason in bad.items()]
    assert all(quarantine["detail"].to_pylist())
    # The preview is the line itself, decoded with replacement, so the entry can be found and read.
    assert quarantine["preview"].to_pylist()[:2] == [lines[1].decode(), lines[2].decode("utf-8", errors="replace")]


def test_bad_lines_are_counted_and_quarantined_one_by_one(tmp_path):
    path = write(tmp_path / "junk.jsonl.gz", b"not json\n" * 1000)
    table, log, quarantine = read_file(path)
    assert table.num_rows == 0
    assert dict(log.dropped) == {"malformed_json": 1000}
    assert quarantine["offset"].to_pylist() == list(range(0, 9000, 9))


@pytest.mark.parametrize("name", ["bom.jsonl", "bom.jsonl.gz", "bom.jsonl.zst"])
def test_byte_order_mark_on_first_line_is_ignored(tmp_path, name):
    lines = jsonl_lines(GOOD)
    path = write(tmp_path / name, b"\xef\xbb\xbf" + b"".join(lines))
    table, _, quarantine = read_file(path)
    assert table["text"].to_pylist() == [r["text"] for r in GOOD]
    # The mark belongs to the first line: offsets stay those of the file's bytes.
    assert table["offset"].to_pylist() == [0, *line_offsets(lines[1:], start=3 + len(lines[0]))]
    assert quarantine.num_rows == 0


@pytest.mark.parametrize("name", ["empty.jsonl", "empty.jsonl.gz", "empty.jsonl.zst"])
def test_empty_file_is_one_quarantine_entry(tmp_path, name):
    path = write(tmp_path / name, b"")
    table, log, quarantine = read_file(path)
    assert table.num_rows == 0 and log.records == 0
    assert located(quarantine) == [(str(path), 0, "empty_file")]


def test_blank_lines_are_counted_not_read(tmp_path):
    path = write(tmp_path / "blank.jsonl", b"\n\n  \n\r\n")
    table, log, quarantine = read_file(path)
    assert (table.num_rows, log.records, log.blank_lines, quarantine.num_rows) == (0, 0, 4, 0)


def test_batches_hold_at_most_batch_size_records(tmp_path):
    path = write(tmp_path / "five.jsonl", b"".join(jsonl_lines([{"text": str(i)} for i in range(5)])))
    (task,) = plan_tasks([path], split_bytes=1 << 40)
    sizes = [t.num_rows for t in read_task(task, **(OPTIONS | {"batch_size": 2}), log=ReadLog())]
    assert sizes == [2, 2, 1]


def test_text_and_id_fields_are_configurable(tmp_path):
    path = write(tmp_path / "body.jsonl", b"".join(jsonl_lines([{"body": "in body", "text": 3, "key": "k1", "id": "no"}])))
    table, _, quarantine = read_file(path, text_field="body", id_field="key")
    assert table.select(["id", "text"]).to_pylist() == [{"id": "k1", "text": "in body"}]
    assert quarantine.num_rows == 0


def varied_lines(count: int, seed: int = 0) -> list[bytes]:
    """JSON lines of 1 to ~600 bytes of text, with blank and bad lines among them."""
    rng = random.Random(seed)
    lines = []
    for i in range(count):
        kind = rng.random()
        if kind < 0.05:
            lines.append(b"\n")
        elif kind < 0.1:
            lines.append(b'{"text": broken json ' + b"x" * rng.randint(0, 300) + b"\n")
        else:
            words = (rng.choice("abcdefgh ijklmnop\u00e9\u4e2d\n") for _ in range(rng.randint(0, 400)))
            text = f"record {i} " + "".join(words)
            lines.append(json.dumps({"text": text}, ensure_ascii=rng.random() < 0.5).encode() + b"\n")
    return lines


@pytest.mark.parametrize("split_bytes", [3, 17, 64, 333, 4096])  # most ranges are shorter than a line up to 64
def test_byte_ranges_read_every_line_exactly_once_in_order(tmp_path, split_bytes):
    lines = varied_lines(120)
    path = write(tmp_path / "varied.jsonl", b"".join(lines))
    whole, whole_log, whole_quarantine = read_file(path)
    offsets = line_offsets(lines)
    good = [i for i, line in enumerate(lines) if line.startswith(b'{"text": "')]
    assert whole["offset"].to_pylist() == [offsets[i] for i in good]
    assert whole["text"].to_pylist() == [json.loads(lines[i])["text"] for i in good]

    tasks = plan_tasks([path], split_bytes=split_bytes)
    assert len(tasks) > 1
    starts = {t.start for t in tasks}
    assert any(any(o < s < o + len(line) for s in starts) for o, line in zip(offsets, lines))

    parts = [read(task) for task in tasks]
    for task, (table, _, quarantine) in zip(tasks, parts):
        for offset in table["offset"].to_pylist() + quarantine["offset"].to_pylist():
            assert task.start <= offset < task.stop, "a range owns exactly the lines that start inside it"
    assert pa.concat_tables(table for table, _, _ in parts) == whole
    assert pa.concat_tables(quarantine for _, _, quarantine in parts) == whole_quarantine
    assert sum(log.records for _, log, _ in parts) == whole_log.records
    assert sum(log.blank_lines for _, log, _ in parts) == whole_log.blank_lines
    assert sum(log.bytes for _, log, _ in parts) == whole_log.bytes


def test_line_longer_than_max_document_bytes_is_quarantined_and_reading_goes_on(tmp_path):
    lines = [
        json.dumps({"text": "before"}).encode() + b"\n",
        json.dumps({"text": "x" * (5 << 20)}).encode() + b"\n",
        json.dumps({"text": "after"}).encode() + b"\n",
        json.dumps({"text": "last"}).encode() + b"\n",
    ]
    path = write(tmp_path / "huge.jsonl", b"".join(lines))
    offsets = line_offsets(lines)
    table, log, quarantine = read_file(path, max_document_bytes=1 << 20)
    assert table.select(["text", "offset"]).to_pylist() == [
        {"text": "before", "offset": offsets[0]},
        {"text": "after", "offset": offsets[2]},
        {"text": "last", "offset": offsets[3]},
    ]
    assert located(quarantine) == [(str(path), offsets[1], "too_large")]
    assert dict(log.dropped) == {"too_large": 1}
    # Read as 1 MB ranges, most of which start inside the long line, the result is the same.
    parts = [read(task, max_document_bytes=1 << 20) for task in plan_tasks([path], split_bytes=1 << 20)]
    assert len(parts) == 6
    assert pa.concat_tables(table for table, _, _ in parts) == table
    assert located(pa.concat_tables(q for _, _, q in parts)) == [(str(path), offsets[1], "too_large")]


def test_max_document_bytes_is_the_longest_line_kept_without_its_newline(tmp_path):
    fits = b'{"text": "' + b"x" * 90 + b'"}'
    too_long = b'{"text": "' + b"y" * 91 + b'"}'
    assert (len(fits), len(too_long)) == (102, 103)
    path = write(tmp_path / "edge.jsonl", fits + b"\n" + too_long + b"\n" + fits)
    table, _, quarantine = read_file(path, max_document_bytes=102)
    assert table["offset"].to_pylist() == [0, 207]
    assert located(quarantine) == [(str(path), 103, "too_large")]


def compressed_lines(count: int) -> list[bytes]:
    rng = random.Random(0)
    # Barely compressible text, so that half the file holds whole zstd blocks (128 KiB each).
    return jsonl_lines([{"text": f"line {i}: {rng.randbytes(40).hex()}"} for i in range(count)])


@pytest.mark.parametrize("name", ["cut.jsonl.gz", "cut.jsonl.zst"])
def test_truncated_compressed_file_keeps_the_records_before_the_cut(tmp_path, name):
    lines = compressed_lines(4000)
    path = write(tmp_path / name, b"".join(lines))
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    table, log, quarantine = read_file(path)  # never raises
    offsets = line_offsets(lines)
    kept = table.num_rows
    assert 0 < kept < len(lines)
    assert table["text"].to_pylist() == [json.loads(line)["text"] for line in lines[:kept]]
    assert table["offset"].to_pylist() == offsets[:kept]
    # One entry for all that is lost, where reading stopped: just after the last record kept.
    assert located(quarantine) == [(str(path), offsets[kept], "truncated_file")]
    assert dict(log.dropped) == {"truncated_file": 1}
    assert quarantine["detail"][0].as_py().startswith("cannot read past this offset")


def test_corrupt_gzip_file_is_one_quarantine_entry_not_an_error(tmp_path):
    # gzip checks its CRC only at the end of a member, so what was decoded before it is kept;
    # the point is that the job goes on and the damage is on record.
    path = write(tmp_path / "garbled.jsonl.gz", b"".join(compressed_lines(2000)))
    data = path.read_bytes()
    path.write_bytes(data[:200] + bytes(50) + data[250:])
    table, log, quarantine = read_file(path)
    assert quarantine["reason"].to_pylist()[-1] == "truncated_file"
    assert log.dropped["truncated_file"] == 1
