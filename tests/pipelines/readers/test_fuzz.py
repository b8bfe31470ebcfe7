"""Bad input at every entry: thousands of mutated files (a seeded mutator: truncations, flipped and inserted
bytes, NULs, latin-1 text, giant and joined lines) through every reader, and mutated conversations through
the SFT pairs reader. Nothing may crash, and nothing may be lost silently: for JSON lines every line of
what decompresses is a document or a quarantine entry, at its offset; a file that stops decompressing
says where (truncated_file), and every line before that point is accounted for."""

from __future__ import annotations

import gzip
import io
import json
import random
import zlib
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard

from pipelines.readers.warc import count_record_headers
from tests.pipelines.readers.test_jsonl import read_file
from tests.pipelines.readers.test_warc import write_warc

MAX_DOCUMENT_BYTES = 4096
CONVERSATIONS = Path(__file__).resolve().parents[3] / "data" / "demo" / "conversations.jsonl"
SEED_RECORDS = [{"id": f"d{i}", "text": f"document {i}: " + "words and more words " * (i % 7 + 1)} for i in range(40)]
SEED_LINES = b"".join(json.dumps(r).encode() + b"\n" for r in SEED_RECORDS)


def mutate(data: bytes, rng: random.Random) -> bytes:
    """One to three random edits of `data`."""
    data = bytearray(data)
    for _ in range(rng.randint(1, 3)):
        kind = rng.choice(["truncate", "flip", "insert", "nul", "latin1", "giant", "join", "duplicate", "delete"])
        at = rng.randrange(len(data) + 1) if data else 0
        if kind == "truncate":
            del data[at:]
        elif kind == "flip" and data:
            data[min(at, len(data) - 1)] ^= 1 << rng.randrange(8)
        elif kind == "insert":
            data[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
        elif kind == "nul":
            data[at:at] = b"\x00" * rng.randint(1, 4)
        elif kind == "latin1":
            data[at:at] = "café déjà vu".encode("latin-1")
        elif kind == "giant":
            data[at:at] = b'{"text": "' + b"x" * (MAX_DOCUMENT_BYTES * 2) + b'"}\n'
        elif kind == "join":
            newline = data.find(b"\n", at)
            if newline >= 0:
                del data[newline]
        elif kind == "duplicate" and data:
            end = min(len(data), at + rng.randint(1, 200))
            data[at:at] = data[at:end]
        elif kind == "delete":
            del data[at : at + rng.randint(1, 50)]
    return bytes(data)


def line_offsets(data: bytes) -> list[tuple[int, int, bytes]]:
    """(offset, end, line) of every line as the reader splits them (b"\\n" ends a line)."""
    lines, offset = [], 0
    for line in io.BytesIO(data).readlines():
        lines.append((offset, offset + len(line), line))
        offset += len(line)
    return lines


def expected_records(data: bytes) -> set[int]:
    """Offsets of the lines the reader must account for: all but the blank ones (a giant line is a record,
    quarantined as too_large, whatever it holds)."""
    records = set()
    for offset, end, line in line_offsets(data):
        body = line[3:] if offset == 0 and line.startswith(b"\xef\xbb\xbf") else line
        if body.strip() or len(line) > MAX_DOCUMENT_BYTES:
            records.add(offset)
    return records


def readable_prefix(path: Path) -> tuple[bytes, bool]:
    """What decompresses of a .gz / .zst file before any error, and whether all of it did."""
    raw = path.read_bytes()
    out = bytearray()
    try:
        if path.name.endswith(".gz"):
            with gzip.GzipFile(fileobj=io.BytesIO(raw)) as f:
                while chunk := f.read(1 << 16):
                    out += chunk
        else:
            with zstandard.ZstdDecompressor().stream_reader(io.BytesIO(raw), read_across_frames=True) as f:
                while chunk := f.read(1 << 16):
                    out += chunk
    except (OSError, EOFError, zlib.error, zstandard.ZstdError):
        return bytes(out), False
    return bytes(out), True


def accounted(path: Path) -> tuple[dict[int, str], list[tuple[int, str]]]:
    """The reader's documents and quarantine entries of one file, by offset; asserts each offset is one of them."""
    records, log, quarantine = read_file(path, max_document_bytes=MAX_DOCUMENT_BYTES)
    documents = dict(zip(records["offset"].to_pylist(), records["text"].to_pylist()))
    entries = list(zip(quarantine["offset"].to_pylist(), quarantine["reason"].to_pylist()))
    line_entries = [offset for offset, reason in entries if reason not in ("truncated_file", "empty_file")]
    assert not set(documents) & set(line_entries) and len(set(line_entries)) == len(line_entries)
    return documents, entries


@pytest.mark.parametrize("suffix", [".jsonl", ".jsonl.gz", ".jsonl.zst"])
def test_mutated_json_lines_are_read_or_quarantined_never_lost(suffix, tmp_path):
    rng = random.Random(suffix)
    compress = {".jsonl": bytes, ".jsonl.gz": lambda d: gzip.compress(d, mtime=0), ".jsonl.zst": zstandard.ZstdCompressor().compress}
    cases = 1500 if suffix == ".jsonl" else 400
    truncated = 0
    for case in range(cases):
        path = tmp_path / f"case-{case}{suffix}"
        if suffix == ".jsonl" or rng.random() < 0.5:  # mutate the text, then compress: decompresses whole
            path.write_bytes(compress[suffix](mutate(SEED_LINES, rng)))
        else:  # mutate the compressed bytes: a damaged stream
            path.write_bytes(mutate(compress[suffix](SEED_LINES), rng))
        documents, entries = accounted(path)
        data, whole = (path.read_bytes(), True) if suffix == ".jsonl" else readable_prefix(path)
        found = set(documents) | {offset for offset, reason in entries if reason not in ("truncated_file", "empty_file")}
        stops = [offset for offset, reason in entries if reason == "truncated_file"]
        if whole and not stops:
            assert found == expected_records(data), f"case {case}"
            if not found:
                assert [reason for _, reason in entries] == ["empty_file"] or not data.strip(), f"case {case}"
        else:  # the damage is reported where reading stopped; every line before it is accounted for
            assert stops, f"case {case}: the file does not decompress, but no truncated_file entry"
            truncated += 1
            before = {offset for offset, end, _ in line_offsets(data) if end <= stops[0]} & expected_records(data)
            assert before <= found, f"case {case}: lines before the damage were lost"
    if suffix != ".jsonl":
        assert truncated > 50  # the damaged streams were exercised


def test_mutated_parquet_never_crashes_the_reader(tmp_path):
    buffer = io.BytesIO()
    pq.write_table(pa.table({"id": [r["id"] for r in SEED_RECORDS], "text": [r["text"] for r in SEED_RECORDS]}), buffer)
    seed = buffer.getvalue()
    rng = random.Random(7)
    for case in range(300):
        path = tmp_path / f"case-{case}.parquet"
        path.write_bytes(mutate(seed, rng))
        documents, entries = accounted(path)
        try:
            rows = pq.read_table(path).num_rows
        except Exception:  # unreadable to pyarrow too: the reader must say so
            assert entries, f"case {case}: an unreadable file left no quarantine entry"
            continue
        assert len(documents) + len([e for e in entries if e[1] not in ("truncated_file", "empty_file")]) == rows or any(
            reason == "truncated_file" for _, reason in entries), f"case {case}"


@pytest.mark.parametrize("suffix", [".warc", ".warc.gz"])
def test_mutated_warc_never_crashes_the_reader(suffix, tmp_path):
    seed_path = tmp_path / f"seed{suffix}"
    pages = [("response", f"http://e.com/{i}", f"<html><body><p>page {i} " .encode() + b"text " * 50 + b"</p></body></html>", "text/html")
             for i in range(8)]
    write_warc(seed_path, [("warcinfo", "", None, None), *pages])
    seed = seed_path.read_bytes()
    rng = random.Random(suffix)
    for case in range(200):
        path = tmp_path / f"case-{case}{suffix}"
        path.write_bytes(mutate(seed, rng))
        documents, entries = accounted(path)
        _, log, _ = read_file(path, max_document_bytes=MAX_DOCUMENT_BYTES)
        headers = count_record_headers(path)
        said = len(documents) + len(entries) + sum(log.skipped_records.values())
        # Every record header in the file is a document, a quarantine entry or a counted skip, or the
        # reader said where it stopped (truncated_file) or that some could not be parsed.
        assert said >= headers or any(reason in ("unparsed_records", "truncated_file") for _, reason in entries), f"case {case}"
        assert said or not path.stat().st_size, f"case {case}: nothing read and nothing said"


@pytest.fixture(scope="module")
def sft_tokenizer(tmp_path_factory):
    from tests.tokenizer import conversation_tokenizer
    from tokenizer.encode import Tokenizer

    return Tokenizer.load(conversation_tokenizer(tmp_path_factory.mktemp("fuzz-tokenizer")))


def test_mutated_conversations_are_pairs_or_counted_bad_lines(sft_tokenizer, tmp_path):
    from tokenizer.conversations import iter_pairs, new_stats

    seed = b"".join(CONVERSATIONS.read_bytes().splitlines(keepends=True)[:30])
    rng = random.Random(11)
    for case in range(500):
        path = tmp_path / f"case-{case}.jsonl"
        path.write_bytes(mutate(seed, rng))
        stats = new_stats()
        pairs = list(iter_pairs(path, sft_tokenizer, 256, stats))
        lines = sum(1 for line in io.BytesIO(path.read_bytes()).readlines() if line.strip())  # b"\n" ends a line
        assert stats["conversations"] + stats["bad_lines"] == lines, f"case {case}"
        assert stats["pairs"] == len(pairs) and all(len(p) + len(r) <= 256 for p, r in pairs)
