"""Read JSON lines (plain, gzip or zstd) into Arrow tables, counting what cannot be read instead of failing.

A bad line (not UTF-8, not JSON, no string text) is counted by reason and skipped; the first few are
kept with their file and line number so the user can find them. A missing or corrupt *file* is an
error: silently skipping it would hide lost data.
"""

from __future__ import annotations

import glob
import gzip
import io
import json
import zlib
from collections import Counter
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import pyarrow as pa
import pyarrow.parquet as pq
import zstandard

from common.config import ConfigError
from common.paths import require_paths

SUFFIXES = (".jsonl", ".jsonl.gz", ".jsonl.zst")
READ_DROP_REASONS = ("invalid_utf8", "malformed_json", "missing_text", "non_string_text")
MAX_EXAMPLES = 10
"""Bad records reported with their location, per file and per run."""

DOCUMENT_SCHEMA = pa.schema([("id", pa.string()), ("text", pa.string()), ("source", pa.string())])
"""The documents the corpus build writes; the tokenizer stage reads exactly these columns."""

RECORD_SCHEMA = DOCUMENT_SCHEMA.append(pa.field("line", pa.int64()))
"""Documents as read, with the 1-based line number that orders them within their file."""


@dataclass
class ReadCounts:
    """What one reader saw: records (non-blank lines), blank lines, uncompressed bytes, drops by reason."""

    records: int = 0
    blank_lines: int = 0
    bytes: int = 0
    dropped: Counter = field(default_factory=Counter)
    examples: list[dict] = field(default_factory=list)

    def drop(self, source: str, line: int, reason: str, detail: str) -> None:
        self.dropped[reason] += 1
        if len(self.examples) < MAX_EXAMPLES:
            self.examples.append({"file": source, "line": line, "reason": reason, "detail": detail[:200]})


def is_jsonl(path: Path) -> bool:
    return path.name.endswith(SUFFIXES)


def expand_inputs(inputs: list[str]) -> list[Path]:
    """Files named by `inputs` (files, folders, globs), in the given order, each once.

    Folders and globs expand to their JSON-lines files sorted by path, so the order (and with it which
    of two duplicates survives) does not depend on the filesystem.
    """
    files: list[Path] = []
    for item in inputs:
        if glob.has_magic(item):
            matches = [Path(p) for p in sorted(glob.glob(item, recursive=True))]
            found = [p for p in matches if p.is_file() and is_jsonl(p)]
            if not found:
                raise ConfigError(f"input pattern matches no {'/'.join(SUFFIXES)} file: {item}")
        else:
            (path,) = require_paths([item])
            if path.is_dir():
                found = sorted(p for p in path.rglob("*") if p.is_file() and is_jsonl(p))
                if not found:
                    raise ConfigError(f"input folder holds no {'/'.join(SUFFIXES)} file: {path}")
            elif is_jsonl(path):
                found = [path]
            else:
                raise ConfigError(f"input file is not JSON lines ({'/'.join(SUFFIXES)}): {path}")
        files.extend(found)
    seen: set[Path] = set()
    unique = []
    for path in files:
        if path.resolve() not in seen:
            seen.add(path.resolve())
            unique.append(path)
    return unique


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


def numbered_lines(path: Path, source: str) -> Iterator[tuple[int, bytes]]:
    """(1-based line number, raw line) of a file; a truncated or corrupt file is an error naming it."""
    line_number = 0
    try:
        with open_binary(path) as stream:
            for line_number, raw in enumerate(stream, start=1):
                yield line_number, raw
    except (OSError, EOFError, zlib.error, zstandard.ZstdError) as e:
        raise ValueError(
            f"{source}: cannot read past line {line_number}: {type(e).__name__}: {e}; "
            "the file is truncated or corrupt: re-create it or leave it out of inputs"
        ) from e


class BadRecord(Exception):
    """A line that is not a usable record; `reason` is one of READ_DROP_REASONS."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


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
    if not _encodable(text):
        # JSON escapes can spell lone surrogates ("\ud800"), which no UTF-8 file can hold.
        raise BadRecord("invalid_utf8", "text holds a lone surrogate escape")
    doc_id = record.get(id_field)
    return (doc_id if isinstance(doc_id, str) and _encodable(doc_id) else None), text


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def read_jsonl(
    path: Path,
    *,
    source: str,
    text_field: str,
    id_field: str,
    batch_size: int,
    counts: ReadCounts,
) -> Iterator[pa.Table]:
    """Tables of RECORD_SCHEMA, `batch_size` records at most, from the JSON-lines file `path`.

    `source` names the file in ids, the `source` column and error reports. Bad lines are counted in
    `counts` and skipped.
    """
    columns: dict[str, list] = {"id": [], "text": [], "source": [], "line": []}
    for line_number, raw in numbered_lines(path, source):
        if line_number == 1 and raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]  # a UTF-8 byte order mark some editors write
        if not raw.strip():
            counts.blank_lines += 1
            continue
        counts.records += 1
        counts.bytes += len(raw)
        try:
            doc_id, text = parse_record(raw, text_field=text_field, id_field=id_field)
        except BadRecord as bad:
            counts.drop(source, line_number, bad.reason, bad.detail)
            continue
        columns["id"].append(doc_id if doc_id is not None else f"{source}:{line_number}")
        columns["text"].append(text)
        columns["source"].append(source)
        columns["line"].append(line_number)
        if len(columns["line"]) >= batch_size:
            yield pa.table(columns, schema=RECORD_SCHEMA)
            columns = {name: [] for name in columns}
    if columns["line"]:
        yield pa.table(columns, schema=RECORD_SCHEMA)


def document_shards(corpus_dir: str | Path) -> list[Path]:
    """The corpus build's `documents/shard-*.parquet`, in name order; raises ConfigError naming what is missing."""
    (root,) = require_paths([corpus_dir], "corpus")
    documents = root / "documents"
    shards = sorted(documents.glob("shard-*.parquet"))
    if not shards:
        raise ConfigError(f"no document shards (shard-*.parquet) in {documents}; run the corpus build first")
    for shard in shards:
        if "text" not in pq.read_schema(shard).names:
            raise ConfigError(f"{shard} has no 'text' column; expected the corpus build's documents (id, text, source)")
    return shards
