"""WARC: response records become documents of extracted text; everything else is counted or quarantined."""

from __future__ import annotations

import io
from pathlib import Path

import pyarrow as pa
import pytest
from warcio.archiveiterator import ArchiveIterator
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from pipelines.readers import ReadLog, read_task
from pipelines.readers.inputs import plan_tasks
from pipelines.readers.records import QUARANTINE_SCHEMA, RECORD_SCHEMA
from tests.shared_data import DEBIAN_DOCS

OPTIONS = {"text_field": "text", "id_field": "id", "batch_size": 100, "max_document_bytes": 1 << 20}
SHARED_WARC = DEBIAN_DOCS / "web-00000.warc.gz"

PAGE = """<!doctype html><html><head><title>Page {n}</title></head><body>
<nav><ul><li><a href="/">Home</a></li><li><a href="/about">About</a></li></ul></nav>
<main><article><h1>Heading {n}</h1>
<p>Paragraph {n} explains how the reader extracts the main content of a page and keeps its paragraphs as lines.</p>
<ol><li>First point of page {n}.</li><li>Second point of page {n}.</li></ol>
<p>Caf\u00e9 cr\u00e8me, na\u00efve fa\u00e7ade: text that is not ASCII survives decoding.</p>
</article></main>
<footer>Copyright footer of every page</footer></body></html>"""


def http(content_type: str) -> StatusAndHeaders:
    return StatusAndHeaders("200 OK", [("Content-Type", content_type)], protocol="HTTP/1.1")


def write_warc(path: Path, records: list[tuple[str, str, bytes | None, str | None]]) -> list[int]:
    """Writes (type, uri, payload, content type) records with warcio; returns where each one starts in the file."""
    offsets = []
    with open(path, "wb") as f:
        writer = WARCWriter(f, gzip=path.name.endswith(".gz"))
        for record_type, uri, payload, content_type in records:
            offsets.append(f.tell())
            if record_type == "warcinfo":
                writer.write_record(writer.create_warcinfo_record(path.name, {"software": "tests"}))
            elif record_type == "request":
                headers = StatusAndHeaders("GET / HTTP/1.1", [("Host", uri.split("/")[2])], is_http_request=True)
                writer.write_record(writer.create_warc_record(uri, "request", http_headers=headers))
            else:
                writer.write_record(
                    writer.create_warc_record(uri, record_type, payload=io.BytesIO(payload), http_headers=http(content_type))
                )
    return offsets


def warc_records(path: Path) -> list[tuple[str, str, int]]:
    """(type, WARC-Record-ID, offset in the file) of each record, as warcio (not the reader's fastwarc) reads them."""
    with open(path, "rb") as f:
        records = ArchiveIterator(f)
        return [(r.rec_type, r.rec_headers.get_header("WARC-Record-ID"), records.get_record_offset()) for r in records]


def read(path: Path, **options) -> tuple[pa.Table, ReadLog, pa.Table]:
    """(records, log, quarantine) of a WARC file, which is always one read task."""
    (task,) = plan_tasks([path], split_bytes=1)
    log = ReadLog()
    tables = list(read_task(task, **(OPTIONS | options), log=log))
    for table in tables:
        assert table.schema == RECORD_SCHEMA
    quarantine = log.take_quarantined()
    assert quarantine.schema == QUARANTINE_SCHEMA
    return (pa.concat_tables(tables) if tables else RECORD_SCHEMA.empty_table()), log, quarantine


def located(quarantine: pa.Table) -> list[tuple[str, int, str]]:
    return list(zip(*(quarantine[name].to_pylist() for name in ("file", "offset", "reason"))))


def html_page(n: int) -> bytes:
    return PAGE.format(n=n).encode()


MIXED = [
    ("warcinfo", "", None, None),
    ("request", "http://example.com/page", None, None),
    ("response", "http://example.com/page", html_page(1), "text/html; charset=utf-8"),
    ("response", "http://example.com/notes.txt", "plain text notes\nsecond line \u00e9\n".encode(), "text/plain"),
    ("response", "http://example.com/logo.png", b"\x89PNG\r\n\x1a\n" + bytes(100), "image/png"),
    ("response", "http://example.com/latin1", PAGE.format(n=2).encode("latin-1"), "text/html; charset=iso-8859-1"),
]


@pytest.mark.parametrize("name", ["mixed.warc.gz", "mixed.warc"])
def test_every_record_is_a_document_a_skipped_record_or_a_quarantine_entry(tmp_path, name):
    path = tmp_path / name
    offsets = write_warc(path, MIXED)
    ids = [record_id for _, record_id, _ in warc_records(path)]
    table, log, quarantine = read(path)

    # Documents are named by their WARC-Record-ID and located by where their record starts in the file.
    assert table["id"].to_pylist() == [ids[2], ids[3], ids[5]]
    assert table["offset"].to_pylist() == [offsets[2], offsets[3], offsets[5]]
    assert table["source"].to_pylist() == [str(path)] * 3
    html, plain, latin1 = table["text"].to_pylist()
    assert plain == "plain text notes\nsecond line \u00e9\n"  # text/plain is taken as it is
    for n, text in ((1, html), (2, latin1)):
        assert f"Heading {n}" in text and f"Paragraph {n} explains" in text
        assert f"\n  2. Second point of page {n}." in text  # list items stay lines
        assert "Caf\u00e9 cr\u00e8me, na\u00efve fa\u00e7ade" in text  # each page decoded by its declared charset
        assert "<" not in text and "Copyright footer" not in text  # no markup, no boilerplate

    assert located(quarantine) == [(str(path), offsets[4], "unsupported_content_type")]
    assert "image/png" in quarantine["detail"][0].as_py()
    assert dict(log.skipped_records) == {"warc_warcinfo": 1, "warc_request": 1}
    assert (log.records, dict(log.dropped)) == (4, {"unsupported_content_type": 1})


def test_records_larger_than_max_document_bytes_are_quarantined_unread(tmp_path):
    path = tmp_path / "big.warc.gz"
    big = PAGE.format(n=1).replace("</main>", "<p>" + "filler " * 2000 + "</p></main>").encode()
    offsets = write_warc(
        path,
        [("response", "http://e.com/small", html_page(0), "text/html"), ("response", "http://e.com/big", big, "text/html")],
    )
    table, log, quarantine = read(path, max_document_bytes=10_000)
    assert table["offset"].to_pylist() == [offsets[0]]
    assert located(quarantine) == [(str(path), offsets[1], "too_large")]
    assert dict(log.dropped) == {"too_large": 1}


def test_response_without_content_type_is_read_as_html(tmp_path):
    path = tmp_path / "untyped.warc"
    with open(path, "wb") as f:
        writer = WARCWriter(f, gzip=False)
        headers = StatusAndHeaders("200 OK", [("Server", "test")], protocol="HTTP/1.1")
        page = io.BytesIO(html_page(3))
        writer.write_record(writer.create_warc_record("http://e.com/", "response", payload=page, http_headers=headers))
    table, _, quarantine = read(path)
    assert "Heading 3" in table["text"][0].as_py() and quarantine.num_rows == 0


@pytest.mark.parametrize("name", ["empty.warc", "empty.warc.gz"])
def test_empty_file_is_one_quarantine_entry(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(b"")
    table, log, quarantine = read(path)
    assert table.num_rows == 0 and log.records == 0
    assert located(quarantine) == [(str(path), 0, "empty_file")]


def test_file_of_only_metadata_records_is_not_empty(tmp_path):
    path = tmp_path / "info.warc.gz"
    write_warc(path, [("warcinfo", "", None, None), ("request", "http://e.com/", None, None)])
    table, log, quarantine = read(path)
    assert (table.num_rows, quarantine.num_rows) == (0, 0)
    assert dict(log.skipped_records) == {"warc_warcinfo": 1, "warc_request": 1}


def cut_warc(tmp_path: Path) -> tuple[Path, list[int], pa.Table]:
    """A .warc.gz of ten pages cut inside its seventh record; the record offsets; the whole file's documents."""
    whole = tmp_path / "whole.warc.gz"
    offsets = write_warc(whole, [("response", f"http://e.com/{n}", html_page(n), "text/html") for n in range(10)])
    cut = tmp_path / "cut.warc.gz"
    cut.write_bytes(whole.read_bytes()[: (offsets[6] + offsets[7]) // 2])
    table, _, _ = read(whole)
    return cut, offsets, table


def test_truncated_warc_keeps_the_records_before_the_cut(tmp_path):
    cut, offsets, whole = cut_warc(tmp_path)
    table, _, _ = read(cut)  # never raises
    assert table.slice(0, 6).select(["id", "text", "offset"]) == whole.slice(0, 6).select(["id", "text", "offset"])


def test_truncated_warc_is_one_truncated_file_entry_and_no_partial_document(tmp_path):
    cut, offsets, whole = cut_warc(tmp_path)
    table, log, quarantine = read(cut)
    assert table["offset"].to_pylist() == offsets[:6]
    assert located(quarantine) == [(str(cut), offsets[6], "truncated_file")]


def test_extraction_is_deterministic(tmp_path):
    path = tmp_path / "pages.warc.gz"
    write_warc(path, [("response", f"http://e.com/{n}", html_page(n), "text/html") for n in range(20)])
    first, _, _ = read(path)
    second, _, _ = read(path)
    assert first.num_rows == 20 and first == second


@pytest.fixture(scope="module")
def shared_warc_start(tmp_path_factory) -> tuple[Path, list[int]]:
    """The first 150 records of the shared crawl (a .warc.gz can be cut between records), and where its responses start."""
    if not SHARED_WARC.is_file():
        pytest.skip(f"{SHARED_WARC} is absent")
    with open(SHARED_WARC, "rb") as source:
        records = ArchiveIterator(source)
        for count, _ in enumerate(records):
            if count == 150:
                end = records.get_record_offset()
                break
        source.seek(0)
        path = tmp_path_factory.mktemp("shared") / "web-start.warc.gz"
        path.write_bytes(source.read(end))
    return path, [offset for rec_type, _, offset in warc_records(path) if rec_type == "response"]


def test_every_response_of_a_real_crawl_is_a_document_or_a_quarantine_entry(shared_warc_start):
    path, starts = shared_warc_start
    table, log, quarantine = read(path)
    assert len(starts) > 0 and log.records == len(starts)
    assert table.num_rows + quarantine.num_rows == len(starts) == table.num_rows + sum(log.dropped.values())
    assert table["id"].unique().to_pylist() == table["id"].to_pylist()
    assert all(doc_id.startswith("<urn:uuid:") for doc_id in table["id"].to_pylist())
    assert sum(bool(text.strip()) for text in table["text"].to_pylist()) >= 0.95 * table.num_rows  # main text found
    # Each response is accounted for exactly once, at its own record's offset.
    assert sorted(table["offset"].to_pylist() + quarantine["offset"].to_pylist()) == starts


def test_extraction_of_a_real_crawl_is_deterministic(shared_warc_start):
    path, _ = shared_warc_start
    first, _, _ = read(path)
    second, _, _ = read(path)
    assert first == second


def test_the_extractor_setting_chooses_how_pages_become_text(tmp_path):
    path = tmp_path / "manual.warc.gz"
    page = b"""<html><body><div class="navheader"><table><tr><td><a href="ch03.html">Prev</a></td></tr></table></div>
    <div class="chapter"><p>Chapter text that every extractor keeps.</p></div></body></html>"""
    write_warc(path, [("response", "http://e.com/ch04.html", page, "text/html")])
    texts = {name: read(path, extractor=name)[0]["text"][0].as_py() for name in ("structural", "main_content")}
    assert all("Chapter text that every extractor keeps." in text for text in texts.values())
    assert "Prev" not in texts["structural"] and "Prev" in texts["main_content"]  # docbook's prev/next bar
    assert read(path)[0]["text"][0].as_py() == texts["structural"]  # the default
