"""Which files the inputs name, and how they split into read tasks."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq
import pytest

from common.config import ConfigError
from pipelines.readers.inputs import expand_inputs, file_format, plan_tasks


def touch(path: Path, data: bytes = b"") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("a.jsonl", "jsonl"),
        ("a.jsonl.gz", "jsonl"),
        ("a.jsonl.zst", "jsonl"),
        ("a.parquet", "parquet"),
        ("data-00000-of-00001.arrow", "arrow"),
        ("a.warc", "warc"),
        ("CC-MAIN-0001.warc.gz", "warc"),
        ("a.json", None),
        ("a.jsonl.bz2", None),
        ("a.warc.zst", None),
        ("a.csv", None),
    ],
)
def test_file_format_is_chosen_by_suffix(name, fmt):
    assert file_format(Path(name)) == fmt


def test_expand_inputs_takes_folders_globs_and_files_each_once_in_path_order(tmp_path):
    corpus = tmp_path / "corpus"
    b = touch(corpus / "b.jsonl.zst")
    a = touch(corpus / "nested" / "a.jsonl")
    c = touch(corpus / "c.parquet")
    w = touch(corpus / "w.warc.gz")
    touch(corpus / "README.md", b"not input")
    touch(corpus / "notes.json", b"{}")
    assert expand_inputs([str(corpus)]) == [b, c, a, w]
    # The same file named twice (here by a file and by a glob) is read once, where it first appears.
    assert expand_inputs([str(c), str(corpus / "*")]) == [c, b, w]
    assert expand_inputs([str(corpus / "**" / "*.jsonl")]) == [a]


def test_expand_inputs_takes_a_saved_dataset_folder_in_its_own_file_order(tmp_path):
    # As `datasets.save_to_disk` writes it: state.json lists the Arrow files in the dataset's order.
    folder = tmp_path / "saved"
    second = touch(folder / "data-00001-of-00002.arrow")
    first = touch(folder / "data-00000-of-00002.arrow")
    touch(folder / "dataset_info.json", b"{}")
    state = {"_data_files": [{"filename": "data-00001-of-00002.arrow"}, {"filename": "data-00000-of-00002.arrow"}]}
    touch(folder / "state.json", json.dumps(state).encode())
    assert expand_inputs([str(folder)]) == [second, first]


def test_expand_inputs_takes_a_saved_dataset_dict_split_by_split(tmp_path):
    folder = tmp_path / "saved"
    touch(folder / "dataset_dict.json", b'{"splits": ["train", "test"]}')
    expected = []
    for split in ("train", "test"):
        expected.append(touch(folder / split / "data-00000-of-00001.arrow"))
        touch(folder / split / "dataset_info.json", b"{}")
        touch(folder / split / "state.json", b'{"_data_files": [{"filename": "data-00000-of-00001.arrow"}]}')
    assert expand_inputs([str(folder)]) == expected


def test_expand_inputs_names_what_is_missing(tmp_path):
    missing = tmp_path / "nowhere" / "docs.jsonl"
    with pytest.raises(ConfigError, match=f"does not exist: {missing}"):
        expand_inputs([str(missing)])
    with pytest.raises(ConfigError, match=f"matches no .* file: {tmp_path}"):
        expand_inputs([str(tmp_path / "*.jsonl.zst")])
    with pytest.raises(ConfigError, match=f"holds no .* file: {tmp_path}"):
        expand_inputs([str(tmp_path)])
    other = touch(tmp_path / "docs.csv", b"a,b\n")
    with pytest.raises(ConfigError, match=f"not a known format .*: {other}"):
        expand_inputs([str(other)])


def test_a_plain_jsonl_file_splits_into_contiguous_byte_ranges(tmp_path):
    path = touch(tmp_path / "big.jsonl", b"x" * 1000)
    tasks = plan_tasks([path], split_bytes=300)
    assert [(t.start, t.stop) for t in tasks] == [(0, 250), (250, 500), (500, 750), (750, 1000)]
    assert [t.chunk for t in tasks] == [0, 1, 2, 3]
    assert [t.name for t in tasks] == ["00000-00000", "00000-00001", "00000-00002", "00000-00003"]
    assert {(t.format, t.path, t.source) for t in tasks} == {("jsonl", str(path.resolve()), str(path))}


def test_files_that_cannot_be_entered_in_the_middle_are_one_task_each(tmp_path):
    files = [touch(tmp_path / name, b"x" * 1000) for name in ("a.jsonl.gz", "b.jsonl.zst", "c.warc.gz", "d.warc")]
    small = touch(tmp_path / "e.jsonl", b"x" * 100)
    tasks = plan_tasks([*files, small], split_bytes=10)
    assert [(t.file_index, t.chunk, t.start, t.stop) for t in tasks] == [(i, 0, 0, None) for i in range(4)] + [
        (4, 0, 0, 10),
        *((4, i, 10 * i, 10 * i + 10) for i in range(1, 10)),
    ]
    # A file no larger than split_bytes is one task, read to its end.
    assert [(t.start, t.stop) for t in plan_tasks([small], split_bytes=100)] == [(0, None)]


def test_columnar_files_split_by_row_groups_and_record_batches(tmp_path):
    table = pa.table({"text": [f"document number {i} " * 20 for i in range(100)]})
    parquet = tmp_path / "a.parquet"
    pq.write_table(table, parquet, row_group_size=10)
    arrow_file = tmp_path / "b.arrow"
    with ipc.new_file(arrow_file, table.schema) as writer:
        for batch in table.to_batches(max_chunksize=25):
            writer.write_batch(batch)
    arrow_stream = tmp_path / "c.arrow"
    with ipc.new_stream(arrow_stream, table.schema) as writer:
        writer.write_table(table, max_chunksize=25)

    tasks = plan_tasks([parquet, arrow_file, arrow_stream], split_bytes=1)
    spans = [(t.file_index, t.format, t.start, t.stop) for t in tasks]
    # One task per row group or batch at most, however small split_bytes is; a stream cannot be split.
    assert spans == [
        *((0, "parquet", i, i + 1) for i in range(10)),
        *((1, "arrow", i, i + 1) for i in range(4)),
        (2, "arrow", 0, None),
    ]
    parquet_size = parquet.stat().st_size
    assert [(t.start, t.stop) for t in plan_tasks([parquet], split_bytes=-(-parquet_size // 3))] == [(0, 4), (4, 8), (8, 10)]
