"""JSON lines (plain, gzip or zstd) -> RECORD_SCHEMA tables; bad lines go to the quarantine, never stop the job.

A plain .jsonl file can be read as byte ranges: a range owns every line that *starts* inside it, so
consecutive ranges read each line exactly once, whatever the line lengths.
"""

from __future__ import annotations

import gzip
import io
import json
import zlib
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import BinaryIO

import pyarrow as pa
import zstandard

from pipelines.readers.inputs import ReadTask
from pipelines.readers.records import BadRecord, ReadLog, RecordBatcher, encodable


def open_binary(path: Path) -> BinaryIO:
    """The decompressed bytes of `path`, by suffix."""
    if path.name.endswith(".gz"):
        return gzip.open(path, "rb")  # type: ignore[return-value]
    if path.name.endswith(".zst"):
        return io.BufferedReader(_ChunkReader(zstd_chunks(path)))
    return open(path, "rb")


def zstd_chunks(path: Path) -> Generator[bytes, None, None]:
    """The decompressed data of a zstd file of one or more frames (pzstd and appends write several).

    Not `ZstdDecompressor().stream_reader`: it returns a truncated file's data without an error
    (python-zstandard 0.25), and a cut download would silently lose its tail.
    """
    decompressor = zstandard.ZstdDecompressor()
    frame, inside_frame = decompressor.decompressobj(), False
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            while chunk:
                inside_frame = True
                yield frame.decompress(chunk)
                if not frame.eof:
                    break
                chunk = frame.unused_data
                frame, inside_frame = decompressor.decompressobj(), False
    if inside_frame:
        raise EOFError("zstd data ends inside a frame")


class _ChunkReader(io.RawIOBase):
    """A readable file over an iterator of byte chunks (io.BufferedReader then splits lines)."""

    def __init__(self, chunks: Generator[bytes, None, None]):
        super().__init__()
        self._chunks = chunks
        self._pending = memoryview(b"")

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        self._chunks.close()  # closes the compressed file when reading stops early
        super().close()

    def readinto(self, buffer) -> int:  # type: ignore[override]
        while not self._pending:
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self._pending = memoryview(chunk)
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size


def lines_in_range(
    stream: BinaryIO, start: int, stop: int | None, max_line_bytes: int
) -> Iterator[tuple[int, int, bytes, bool]]:
    """(offset, size, line, whole) for each line starting in [start, stop); `size` is its length in
    the stream. `whole` is False for a line longer than `max_line_bytes`, which is returned empty (it
    is skipped in pieces, so one 100 MB line never sits in memory)."""
    offset = 0
    if start > 0:
        stream.seek(start - 1)
        offset = start - 1 + len(stream.readline())  # the line that started before us is not ours
    while stop is None or offset < stop:
        line = stream.readline(max_line_bytes + 1)
        if not line:
            return
        size, whole = len(line), True
        if size > max_line_bytes and not line.endswith(b"\n"):
            whole = False
            while not line.endswith(b"\n"):
                line = stream.readline(1 << 20)
                if not line:
                    break
                size += len(line)
            line = b""
        yield offset, size, line, whole
        offset += size


def parse_record(raw: bytes, *, text_field: str, id_field: str) -> tuple[str | None, str]:
    """(id or None, text) of one JSON line; raises BadRecord when the line is unusable."""
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise BadRecord("invalid_utf8", f"byte {e.start}: {e.reason}") from None
    try:
        record = json.loads(line)
    except (json.JSONDecodeError, RecursionError) as e:
        raise BadRecord("malformed_json", str(e) or type(e).__name__) from None
    if not isinstance(record, dict):
        raise BadRecord("malformed_json", f"expected a JSON object, got {type(record).__name__}")
    if text_field not in record:
        raise BadRecord("missing_text", f"no field {text_field!r} (fields: {', '.join(sorted(record)[:10])})")
    text = record[text_field]
    if not isinstance(text, str):
        raise BadRecord("non_string_text", f"field {text_field!r} is {type(text).__name__}")
    if not encodable(text):
        raise BadRecord("invalid_utf8", "text holds a lone surrogate escape")
    doc_id = record.get(id_field)
    return (doc_id if isinstance(doc_id, str) and encodable(doc_id) else None), text


def read_jsonl(
    task: ReadTask, *, text_field: str, id_field: str, batch_size: int, max_document_bytes: int, log: ReadLog
) -> Iterator[pa.Table]:
    """RECORD_SCHEMA tables of the lines of `task`; bad lines are quarantined in `log`.

    A truncated or corrupt compressed file keeps every record before the damage and quarantines
    the rest as one `truncated_file` entry at the offset where reading stopped.
    """
    path, source = Path(task.path), task.source
    batcher = RecordBatcher(batch_size, 64 << 20)
    end = task.start  # just past the last line read: where a damaged file stops being readable
    try:
        with open_binary(path) as stream:
            for offset, size, raw, whole in lines_in_range(stream, task.start, task.stop, max_document_bytes):
                end = offset + size
                if offset == 0 and raw.startswith(b"\xef\xbb\xbf"):
                    raw = raw[3:]  # a UTF-8 byte order mark some editors write
                if whole and not raw.strip():
                    log.blank_lines += 1
                    continue
                log.records += 1
                log.bytes += len(raw)
                if not whole:
                    log.quarantine(source, offset, "too_large", f"line longer than max_document_bytes={max_document_bytes}")
                    continue
                try:
                    doc_id, text = parse_record(raw, text_field=text_field, id_field=id_field)
                except BadRecord as bad:
                    log.quarantine(source, offset, bad.reason, bad.detail, raw)
                    continue
                table = batcher.add(doc_id if doc_id is not None else f"{source}:{offset}", text, source, offset, len(raw))
                if table is not None:
                    yield table
    except (OSError, EOFError, zlib.error, zstandard.ZstdError) as e:
        log.quarantine(source, end, "truncated_file", f"cannot read past this offset: {type(e).__name__}: {e}")
    if task.start == 0 and log.records == 0 and log.blank_lines == 0 and not log.dropped:
        log.quarantine(source, 0, "empty_file", "the file holds no records")
    table = batcher.flush()
    if table is not None:
        yield table
