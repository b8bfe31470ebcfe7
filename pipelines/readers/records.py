"""What every reader yields, and how it accounts for records it cannot use.

Readers turn one input (or one byte range of it) into Arrow tables of RECORD_SCHEMA. A record that
cannot become a document (bad JSON, bad UTF-8, no text, too large, a truncated file's tail) never
stops the job: it is counted by reason in a ReadLog and written to the quarantine with its location.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

import pyarrow as pa

from formats.corpus import DOCUMENT_SCHEMA

RECORD_SCHEMA = DOCUMENT_SCHEMA.append(pa.field("offset", pa.int64()))
"""Documents as read, with `offset`: where the record starts in its input (the byte offset in the
decompressed stream for JSON lines, in the file as stored for WARC, the row number for Parquet and Arrow). Input order is
(file index, offset), which decides which of two duplicates survives."""

QUARANTINE_SCHEMA = pa.schema(
    [
        ("file", pa.string()),
        ("offset", pa.int64()),
        ("reason", pa.string()),
        ("detail", pa.string()),
        ("preview", pa.string()),
    ]
)
"""One row per record set aside: where it is, why, and its first bytes (decoded with replacement)."""

QUARANTINE_REASONS = (
    "invalid_utf8",
    "malformed_json",
    "missing_text",
    "non_string_text",
    "too_large",
    "truncated_file",
    "empty_file",
    "unsupported_content_type",
    "unparsed_records",
    "extraction_failed",
)
PREVIEW_BYTES = 300


def preview(raw: bytes | str) -> str:
    if isinstance(raw, str):
        return raw[:PREVIEW_BYTES]
    return raw[:PREVIEW_BYTES].decode("utf-8", errors="replace")


@dataclass
class ReadLog:
    """What one reader saw: records, blank lines, bytes read, and the records it set aside.

    `quarantined` grows as records are set aside; the caller drains it with `take_quarantined` after
    each batch, so a file of millions of bad lines does not pile up in memory.
    """

    records: int = 0
    blank_lines: int = 0
    bytes: int = 0
    skipped_records: Counter = field(default_factory=Counter)
    """Input records that are not documents by design (e.g. WARC request or metadata records)."""
    dropped: Counter = field(default_factory=Counter)
    quarantined: list[dict] = field(default_factory=list)

    def quarantine(self, file: str, offset: int, reason: str, detail: str, raw: bytes | str = b"") -> None:
        self.dropped[reason] += 1
        self.quarantined.append(
            {"file": file, "offset": offset, "reason": reason, "detail": detail[:500], "preview": preview(raw)}
        )

    def take_quarantined(self) -> pa.Table:
        rows, self.quarantined = self.quarantined, []
        return pa.Table.from_pylist(rows, schema=QUARANTINE_SCHEMA)


class BadRecord(Exception):
    """A record that cannot be a document; `reason` is one of QUARANTINE_REASONS."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def encodable(text: str) -> bool:
    """False for strings holding lone surrogates (JSON escapes can spell them; no UTF-8 file can hold them)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class RecordBatcher:
    """Collects documents into RECORD_SCHEMA tables of at most `max_rows` rows or about `max_bytes` of text."""

    def __init__(self, max_rows: int, max_bytes: int):
        self.max_rows, self.max_bytes = max_rows, max_bytes
        self._columns: dict[str, list] = {name: [] for name in RECORD_SCHEMA.names}
        self._bytes = 0

    def add(self, doc_id: str, text: str, source: str, offset: int, size: int) -> pa.Table | None:
        """Adds one document; returns a full table when one is ready."""
        for name, value in zip(RECORD_SCHEMA.names, (doc_id, text, source, offset)):
            self._columns[name].append(value)
        self._bytes += size
        if len(self._columns["offset"]) >= self.max_rows or self._bytes >= self.max_bytes:
            return self.flush()
        return None

    def flush(self) -> pa.Table | None:
        if not self._columns["offset"]:
            return None
        table = pa.table(self._columns, schema=RECORD_SCHEMA)
        self._columns = {name: [] for name in RECORD_SCHEMA.names}
        self._bytes = 0
        return table


def batched(items: Iterator[pa.Table | None]) -> Iterator[pa.Table]:
    """The non-empty tables of `items`."""
    return (table for table in items if table is not None)
