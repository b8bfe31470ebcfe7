"""Parquet and Arrow IPC files (including `datasets.save_to_disk` folders) -> RECORD_SCHEMA tables.

A Parquet file splits into runs of row groups, an Arrow IPC *file* into runs of record batches; an
Arrow IPC *stream* (what `datasets` writes) can only be read front to back and is one task. Rows
whose text is null or not a string, or too large, are quarantined with their row number.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

from pipelines.readers.inputs import ReadTask
from pipelines.readers.records import RECORD_SCHEMA, ReadLog


def _open_ipc(path: Path) -> ipc.RecordBatchFileReader | ipc.RecordBatchStreamReader:
    try:
        return ipc.open_file(path)
    except pa.ArrowInvalid:
        return ipc.open_stream(path)


def count_units(path: Path, fmt: str) -> int | None:
    """Row groups of a Parquet file, record batches of an Arrow IPC file; None for a stream."""
    if fmt == "parquet":
        return pq.ParquetFile(path).num_row_groups
    reader = _open_ipc(path)
    return reader.num_record_batches if isinstance(reader, ipc.RecordBatchFileReader) else None


def _batches(task: ReadTask, batch_size: int) -> Iterator[pa.RecordBatch]:
    path = Path(task.path)
    if task.format == "parquet":
        parquet = pq.ParquetFile(path)
        stop = parquet.num_row_groups if task.stop is None else task.stop
        yield from parquet.iter_batches(batch_size=batch_size, row_groups=range(task.start, stop))
        return
    reader = _open_ipc(path)
    if isinstance(reader, ipc.RecordBatchFileReader):
        stop = reader.num_record_batches if task.stop is None else task.stop
        batches = (reader.get_batch(i) for i in range(task.start, stop))
    else:
        batches = iter(reader)
    for batch in batches:  # as the writer chose them, which can be far more than batch_size rows
        for start in range(0, batch.num_rows, batch_size):
            yield batch.slice(start, batch_size)


def _is_string(type_: pa.DataType) -> bool:
    return pa.types.is_string(type_) or pa.types.is_large_string(type_)


def _first_row(task: ReadTask) -> int:
    """Row number of the first row of `task` within its file."""
    if task.start == 0:
        return 0
    path = Path(task.path)
    if task.format == "parquet":
        metadata = pq.ParquetFile(path).metadata
        return sum(metadata.row_group(i).num_rows for i in range(task.start))
    reader = _open_ipc(path)
    return sum(reader.get_batch(i).num_rows for i in range(task.start))


def read_columnar(
    task: ReadTask, *, text_field: str, id_field: str, batch_size: int, max_document_bytes: int, log: ReadLog
) -> Iterator[pa.Table]:
    """RECORD_SCHEMA tables of the rows of `task`; unusable rows are quarantined in `log`."""
    source, row = task.source, 0
    try:
        row = _first_row(task)
        yield from _read_batches(task, row, text_field=text_field, id_field=id_field, batch_size=batch_size,
                                 max_document_bytes=max_document_bytes, log=log)
    except (pa.ArrowException, OSError) as e:  # a corrupt or cut file keeps what came before the damage
        log.quarantine(source, log.records, "truncated_file", f"cannot read past row {log.records}: {type(e).__name__}: {e}")


def _read_batches(
    task: ReadTask, row: int, *, text_field: str, id_field: str, batch_size: int, max_document_bytes: int, log: ReadLog
) -> Iterator[pa.Table]:
    source = task.source
    for batch in _batches(task, batch_size):
        n = batch.num_rows
        offsets = pa.array(range(row, row + n), type=pa.int64())
        row += n
        log.records += n
        if text_field not in batch.schema.names:
            for offset in offsets.to_pylist():
                log.quarantine(source, offset, "missing_text", f"no column {text_field!r} (columns: {', '.join(batch.schema.names[:10])})")
            continue
        text = batch.column(text_field)
        if pa.types.is_null(text.type):  # a column with no value at all has no string type either
            for offset in offsets.to_pylist():
                log.quarantine(source, offset, "missing_text", f"column {text_field!r} is null")
            continue
        if not _is_string(text.type):
            for offset in offsets.to_pylist():
                log.quarantine(source, offset, "non_string_text", f"column {text_field!r} is {text.type}")
            continue
        text = text.cast(pa.string())
        sizes = pc.binary_length(text)
        log.bytes += pc.sum(sizes).as_py() or 0
        missing = pc.is_null(text)
        too_large = pc.fill_null(pc.greater(sizes, max_document_bytes), False)
        for offset in pc.filter(offsets, missing).to_pylist():
            log.quarantine(source, offset, "missing_text", f"column {text_field!r} is null")
        for offset, value in zip(pc.filter(offsets, too_large).to_pylist(), pc.filter(text, too_large).to_pylist()):
            log.quarantine(source, offset, "too_large", f"text longer than max_document_bytes={max_document_bytes}", value)
        keep = pc.invert(pc.or_(missing, too_large))
        text, offsets = pc.filter(text, keep), pc.filter(offsets, keep)
        location_ids = pc.binary_join_element_wise(source, pc.cast(offsets, pa.string()), ":")
        ids = location_ids
        if id_field in batch.schema.names and _is_string(batch.column(id_field).type):
            ids = pc.coalesce(pc.filter(batch.column(id_field), keep).cast(pa.string()), location_ids)
        sources = pa.array([source] * len(text), type=pa.string())
        yield pa.table([ids, text, sources, offsets], schema=RECORD_SCHEMA)
