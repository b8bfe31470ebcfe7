"""WARC (.warc, .warc.gz) -> RECORD_SCHEMA tables of the text extracted from each HTML page.

Every record is accounted for: response records become documents, or are quarantined with their
offset when they are not HTML/plain text or cannot be extracted; other record types (warcinfo,
request, metadata) are counted in `skipped_records`. Content types come from the HTTP header, not
from sniffing (datatrove's reader guesses with libmagic and silently skipped 259 of the 3,972 pages
of our shared WARC). The extractor is the config's (`extractor`, pipelines/readers/html.py); none has a
time-out, which would make two runs differ (datatrove's one-second default around trafilatura does).
"""

from __future__ import annotations

from collections.abc import Iterator
import zlib
from pathlib import Path

import pyarrow as pa
from fastwarc.warc import ArchiveIterator, WarcRecordType
from resiliparse.parse.encoding import bytes_to_str, detect_encoding

from pipelines.readers.html import extractor_named
from pipelines.readers.inputs import ReadTask
from pipelines.readers.records import ReadLog, RecordBatcher

HTML_TYPES = ("text/html", "application/xhtml+xml", "")
"""Extracted as HTML; a response without a content type is treated as HTML, as browsers do."""
TEXT_TYPES = ("text/plain",)


RECORD_SEPARATOR = b"\r\n\r\nWARC/1."
"""The start of every record header but the first: the previous record's closing CRLFs, then the version line."""


def count_record_headers(path: Path) -> int:
    """WARC record headers in the file, decompressed member by member for .warc.gz; a damaged gzip stream
    ends the count there (the reader reports that damage itself)."""
    gzipped = path.name.endswith(".gz")
    count, carry, first = 0, b"", True
    inflate = zlib.decompressobj(wbits=47)  # 47: gzip or zlib header, one member at a time
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            pieces = []
            try:
                while gzipped and chunk:
                    pieces.append(inflate.decompress(chunk))
                    chunk = inflate.unused_data
                    if inflate.eof:
                        inflate = zlib.decompressobj(wbits=47)
            except zlib.error:
                chunk = b""  # counted up to the damage
            data = b"".join(pieces) if gzipped else chunk
            if first and data:
                count, first = count + data.startswith(b"WARC/1."), False
            window = carry + data
            count += window.count(RECORD_SEPARATOR)  # a separator never fits in the carry alone
            carry = window[-(len(RECORD_SEPARATOR) - 1):]
    return count


def decode_body(body: bytes, declared_charset: str | None) -> str:
    encoding = declared_charset or detect_encoding(body)
    return bytes_to_str(body, encoding)


def read_warc(
    task: ReadTask, *, batch_size: int, max_document_bytes: int, log: ReadLog, extractor: str, **_: object
) -> Iterator[pa.Table]:
    """RECORD_SCHEMA tables of the response records of `task`, HTML pages as text by `extractor`; ids are
    the WARC-Record-IDs, offsets where each record starts in the file as stored (for .warc.gz, its gzip
    member: seekable)."""
    html_to_text = extractor_named(extractor)  # before the first record: a missing library fails the task, not every page
    source = task.source
    batcher = RecordBatcher(batch_size, 64 << 20)
    offset = 0
    skipped_before = sum(log.skipped_records.values())
    try:
        for record in ArchiveIterator(str(Path(task.path)), parse_http=True, fsspec_args=False):
            offset = record.stream_pos
            if record.record_type != WarcRecordType.response:
                log.skipped_records[f"warc_{str(record.record_type).rsplit('.', 1)[-1]}"] += 1
                continue
            log.records += 1
            size = record.content_length
            log.bytes += size
            if size > max_document_bytes:
                log.quarantine(source, offset, "too_large", f"record of {size} bytes > max_document_bytes={max_document_bytes}")
                continue
            content_type = (record.http_content_type or "").split(";")[0].strip().lower()
            if content_type not in HTML_TYPES + TEXT_TYPES:
                log.quarantine(source, offset, "unsupported_content_type", f"Content-Type {content_type!r}")
                continue
            body = record.reader.read()
            if record.reader.tell() < size:
                # fastwarc ends a cut file without an error; the last record's payload comes up short.
                log.quarantine(source, offset, "truncated_file", f"record ends after {record.reader.tell()} of {size} bytes")
                break
            try:
                text = decode_body(body, record.http_charset)
                if content_type not in TEXT_TYPES:
                    text = html_to_text(text)
            except Exception as e:  # a page the parser rejects must not stop the corpus
                log.quarantine(source, offset, "extraction_failed", f"{type(e).__name__}: {e}", body)
                continue
            doc_id = record.headers.get("WARC-Record-ID") or f"{source}:{offset}"
            table = batcher.add(doc_id, text, source, offset, size)
            if table is not None:
                yield table
    except OSError as e:
        log.quarantine(source, offset, "truncated_file", f"cannot read past this record: {e}")
    else:
        # fastwarc skips, without a word, a record whose header it cannot parse, and what its broken
        # Content-Length hides: count the record headers in the file to say so.
        parsed = log.records + sum(log.skipped_records.values()) - skipped_before
        headers = count_record_headers(Path(task.path))
        if headers > parsed:
            log.quarantine(source, offset, "unparsed_records",
                           f"the file holds {headers} WARC record headers, {parsed} of them were readable records")
    if log.records == 0 and not log.skipped_records and not log.dropped:
        log.quarantine(source, 0, "empty_file", "the file holds no WARC records")
    table = batcher.flush()
    if table is not None:
        yield table
