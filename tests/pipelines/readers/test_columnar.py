"""Parquet, Arrow IPC and saved Hugging Face datasets: rows read once whatever the split, bad rows quarantined."""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq
import pytest

from pipelines.readers import ReadLog, read_task
from pipelines.readers.inputs import ReadTask, expand_inputs, plan_tasks
from pipelines.readers.records import QUARANTINE_SCHEMA, RECORD_SCHEMA

OPTIONS = {"text_field": "text", "id_field": "id", "batch_size": 100, "max_document_bytes": 1 << 20}
FORMATS = ["parquet", "arrow_file", "arrow_stream"]


def write(path: Path, table: pa.Table, fmt: str, rows_per_unit: int = 7) -> Path:
    """`table` as Parquet row groups, Arrow IPC file batches or Arrow IPC stream batches of `rows_per_unit` rows."""
    if fmt == "parquet":
        pq.write_table(table, path, row_group_size=rows_per_unit)
    else:
        with (ipc.new_file if fmt == "arrow_file" else ipc.new_stream)(path, table.schema) as writer:
            writer.write_table(table, max_chunksize=rows_per_unit)
    return path


def suffix(fmt: str) -> str:
    return ".parquet" if fmt == "parquet" else ".arrow"


def read(task: ReadTask, **options) -> tuple[pa.Table, ReadLog, pa.Table]:
    """(records, log, quarantine) of one read task, each read with its own log as the corpus build does."""
    log = ReadLog()
    tables = list(read_task(task, **(OPTIONS | options), log=log))
    for table in tables:
        assert table.schema == RECORD_SCHEMA
    quarantine = log.take_quarantined()
    assert quarantine.schema == QUARANTINE_SCHEMA
    return (pa.concat_tables(tables) if tables else RECORD_SCHEMA.empty_table()), log, quarantine


def read_file(path: Path, **options) -> tuple[pa.Table, ReadLog, pa.Table]:
    (task,) = plan_tasks([path], split_bytes=1 << 40)
    return read(task, **options)


def located(quarantine: pa.Table) -> list[tuple[str, int, str]]:
    return list(zip(*(quarantine[name].to_pylist() for name in ("file", "offset", "reason"))))


def sample_table(rows: int = 100) -> pa.Table:
    """Every 10th text is null; every 3rd id is null."""
    return pa.table(
        {
            "id": [None if i % 3 == 0 else f"doc-{i}" for i in range(rows)],
            "text": [None if i % 10 == 4 else f"document {i} " * (i % 13 + 1) for i in range(rows)],
            "extra": list(range(rows)),
        }
    )


@pytest.mark.parametrize("fmt", FORMATS)
def test_rows_are_read_once_in_order_with_their_row_numbers_whatever_the_split(tmp_path, fmt):
    table = sample_table()
    path = write(tmp_path / f"docs{suffix(fmt)}", table, fmt)
    whole, log, quarantine = read_file(path)
    kept = [i for i, text in enumerate(table["text"].to_pylist()) if text is not None]
    assert whole["offset"].to_pylist() == kept
    assert whole["text"].to_pylist() == [table["text"][i].as_py() for i in kept]
    # A null id is replaced by the row's location, as a missing one is.
    assert whole["id"].to_pylist() == [table["id"][i].as_py() or f"{path}:{i}" for i in kept]
    assert whole["source"].to_pylist() == [str(path)] * len(kept)
    null_rows = [i for i in range(100) if i % 10 == 4]
    assert located(quarantine) == [(str(path), i, "missing_text") for i in null_rows]
    assert (log.records, dict(log.dropped)) == (100, {"missing_text": 10})
    assert log.bytes == sum(len(text.encode()) for text in whole["text"].to_pylist())

    tasks = plan_tasks([path], split_bytes=path.stat().st_size // 4)
    if fmt == "arrow_stream":
        assert len(tasks) == 1  # a stream can only be read front to back
    else:
        assert 2 <= len(tasks) <= 15  # of 15 row groups or batches
    parts = [read(task) for task in tasks]
    assert pa.concat_tables(part for part, _, _ in parts) == whole
    assert pa.concat_tables(q for _, _, q in parts) == quarantine
    assert sum(part_log.records for _, part_log, _ in parts) == 100


@pytest.mark.parametrize("fmt", FORMATS)
def test_tables_hold_at_most_batch_size_rows(tmp_path, fmt):
    path = write(tmp_path / f"docs{suffix(fmt)}", pa.table({"text": [f"t{i}" for i in range(50)]}), fmt, rows_per_unit=50)
    (task,) = plan_tasks([path], split_bytes=1 << 40)
    tables = list(read_task(task, **(OPTIONS | {"batch_size": 16}), log=ReadLog()))
    assert [t.num_rows for t in tables] == [16, 16, 16, 2]
    assert pa.concat_tables(tables)["offset"].to_pylist() == list(range(50))


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_missing_or_non_string_text_column_quarantines_every_row(tmp_path, fmt):
    no_text = write(tmp_path / f"no_text{suffix(fmt)}", pa.table({"body": ["a", "b", "c"]}), fmt, rows_per_unit=2)
    table, log, quarantine = read_file(no_text)
    assert table.num_rows == 0
    assert located(quarantine) == [(str(no_text), i, "missing_text") for i in range(3)]
    assert "no column 'text'" in quarantine["detail"][0].as_py() and "body" in quarantine["detail"][0].as_py()

    numbers = write(tmp_path / f"numbers{suffix(fmt)}", pa.table({"text": [1, 2, 3]}), fmt, rows_per_unit=2)
    table, log, quarantine = read_file(numbers)
    assert table.num_rows == 0
    assert located(quarantine) == [(str(numbers), i, "non_string_text") for i in range(3)]
    assert dict(log.dropped) == {"non_string_text": 3} and log.records == 3


@pytest.mark.parametrize("fmt", FORMATS)
def test_ids_come_from_the_id_column_when_it_holds_strings(tmp_path, fmt):
    texts = ["a", "b", "c"]
    cases = {
        "absent": (pa.table({"text": texts}), [None, None, None]),
        "strings": (pa.table({"text": texts, "id": ["x", None, "z"]}), ["x", None, "z"]),
        "large_strings": (
            pa.table({"text": pa.array(texts, pa.large_string()), "id": pa.array(["x", "y", None], pa.large_string())}),
            ["x", "y", None],
        ),
        "numbers": (pa.table({"text": texts, "id": [10, 11, 12]}), [None, None, None]),
    }
    for name, (table, ids) in cases.items():
        path = write(tmp_path / f"{name}{suffix(fmt)}", table, fmt, rows_per_unit=2)
        records, _, quarantine = read_file(path)
        assert records["text"].to_pylist() == texts, name
        assert records["id"].to_pylist() == [doc_id or f"{path}:{i}" for i, doc_id in enumerate(ids)], name
        assert quarantine.num_rows == 0, name


@pytest.mark.parametrize("fmt", FORMATS)
def test_rows_longer_than_max_document_bytes_are_quarantined(tmp_path, fmt):
    texts = ["short", "x" * 1001, "exactly a thousand ".ljust(1000, "."), "é" * 501]  # the last is 1002 bytes
    path = write(tmp_path / f"docs{suffix(fmt)}", pa.table({"text": texts}), fmt, rows_per_unit=3)
    table, log, quarantine = read_file(path, max_document_bytes=1000)
    assert table["offset"].to_pylist() == [0, 2]
    assert located(quarantine) == [(str(path), 1, "too_large"), (str(path), 3, "too_large")]
    assert quarantine["preview"].to_pylist() == ["x" * 300, "é" * 300]
    assert dict(log.dropped) == {"too_large": 2} and log.records == 4


@pytest.fixture(scope="module")
def datasets():
    """The `datasets` library, imported only by the tests that save a dataset (it takes seconds)."""
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")  # saving to disk needs no network
    import datasets

    datasets.disable_progress_bars()
    return datasets


def test_saved_dataset_is_read_file_by_file_in_its_order(tmp_path, datasets):
    texts = [f"document {i}" for i in range(10)]
    folder = tmp_path / "saved"
    datasets.Dataset.from_dict({"id": [f"d{i}" for i in range(10)], "text": texts}).save_to_disk(str(folder), num_shards=2)
    files = expand_inputs([str(folder)])
    assert [f.name for f in files] == ["data-00000-of-00002.arrow", "data-00001-of-00002.arrow"]
    tasks = plan_tasks(files, split_bytes=1)
    parts = [read(task)[0] for task in tasks]
    records = pa.concat_tables(parts)
    assert records["text"].to_pylist() == texts
    assert records["id"].to_pylist() == [f"d{i}" for i in range(10)]
    # Row numbers count within each file, and the source names it.
    assert records["offset"].to_pylist() == [0, 1, 2, 3, 4] * 2
    assert records["source"].to_pylist() == [str(files[0])] * 5 + [str(files[1])] * 5


def test_saved_dataset_dict_is_read_split_by_split(tmp_path, datasets):
    folder = tmp_path / "saved"
    splits = {"train": ["t0", None, "t2"], "validation": ["v0"]}
    saved = datasets.DatasetDict({name: datasets.Dataset.from_dict({"text": texts}) for name, texts in splits.items()})
    saved.save_to_disk(str(folder))
    files = expand_inputs([str(folder)])
    assert [f.parent.name for f in files] == ["train", "validation"]
    results = [read(task) for task in plan_tasks(files, split_bytes=1 << 20)]
    assert [text for records, _, _ in results for text in records["text"].to_pylist()] == ["t0", "t2", "v0"]
    assert [located(q) for _, _, q in results] == [[(str(files[0]), 1, "missing_text")], []]
