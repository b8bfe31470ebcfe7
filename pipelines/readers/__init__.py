"""Readers: input files -> Arrow tables of records (RECORD_SCHEMA), with bad input quarantined.

    inputs.py    which files, which format, how they split into read tasks
    records.py   the record schema, the read log and quarantine
    jsonl.py     JSON lines (.jsonl, .gz, .zst), byte ranges of plain files
    columnar.py  Parquet, Arrow IPC, `datasets.save_to_disk` folders
    warc.py      WARC records
    html.py      HTML -> text: the extractors `extractor` chooses from
"""

from __future__ import annotations

from collections.abc import Iterator

import pyarrow as pa

from pipelines.config import EXTRACTORS
from pipelines.readers.inputs import ReadTask
from pipelines.readers.records import ReadLog


def read_task(
    task: ReadTask,
    *,
    text_field: str,
    id_field: str,
    batch_size: int,
    max_document_bytes: int,
    log: ReadLog,
    extractor: str = EXTRACTORS[0],
) -> Iterator[pa.Table]:
    """RECORD_SCHEMA tables of one read task, by its format; `extractor` turns WARC pages into text."""
    options = {"text_field": text_field, "id_field": id_field, "batch_size": batch_size, "max_document_bytes": max_document_bytes, "log": log}
    if task.format == "warc":
        from pipelines.readers.warc import read_warc

        return read_warc(task, extractor=extractor, **options)
    if task.format == "jsonl":
        from pipelines.readers.jsonl import read_jsonl as read
    else:
        from pipelines.readers.columnar import read_columnar as read
    return read(task, **options)


__all__ = ["ReadLog", "ReadTask", "read_task"]
