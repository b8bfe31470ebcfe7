"""Which files the inputs name, in which format, and how they split into read tasks.

A read task is one file, or one slice of a large file that can be read on its own: a byte range of
plain JSON lines, a run of Parquet row groups, a run of Arrow record batches. So one 50 GB file is
read by many Ray tasks at once. Compressed JSON lines and WARC files cannot be entered in the middle
and are one task each (write them as many smaller files, as crawls do).
"""

from __future__ import annotations

import glob
import json
from dataclasses import dataclass
from pathlib import Path

from common.config import ConfigError
from common.paths import require_paths

FORMATS = {
    ".jsonl": "jsonl",
    ".jsonl.gz": "jsonl",
    ".jsonl.zst": "jsonl",
    ".parquet": "parquet",
    ".arrow": "arrow",
    ".warc": "warc",
    ".warc.gz": "warc",
}
"""Suffix -> reader. `.arrow` covers Arrow IPC files and streams, which `datasets.save_to_disk` writes."""


def file_format(path: Path) -> str | None:
    for suffix, name in FORMATS.items():
        if path.name.endswith(suffix):
            return name
    return None


def _readable(paths: list[Path]) -> list[Path]:
    return [p for p in paths if p.is_file() and file_format(p) is not None]


def _hf_dataset_files(folder: Path) -> list[Path] | None:
    """The Arrow files of a `datasets.save_to_disk` folder, in the dataset's order; None if it is not one."""
    if (folder / "dataset_dict.json").is_file():  # a DatasetDict: one sub-folder per split
        splits = json.loads((folder / "dataset_dict.json").read_text())["splits"]
        return [f for split in splits for f in (_hf_dataset_files(folder / split) or [])]
    state = folder / "state.json"
    if not state.is_file() or not (folder / "dataset_info.json").is_file():
        return None
    return [folder / entry["filename"] for entry in json.loads(state.read_text())["_data_files"]]


def expand_inputs(inputs: list[str]) -> list[Path]:
    """Files named by `inputs` (files, folders, globs, saved Hugging Face datasets), in order, each once.

    Folders and globs expand sorted by path, so the order (and with it which of two duplicates
    survives) does not depend on the filesystem. A missing input fails here, before any work.
    """
    known = "/".join(FORMATS)
    files: list[Path] = []
    for item in inputs:
        if glob.has_magic(item):
            found = _readable([Path(p) for p in sorted(glob.glob(item, recursive=True))])
            if not found:
                raise ConfigError(f"input pattern matches no {known} file: {item}")
        else:
            (path,) = require_paths([item])
            if path.is_dir():
                found = _hf_dataset_files(path) or _readable(sorted(path.rglob("*")))
                if not found:
                    raise ConfigError(f"input folder holds no {known} file: {path}")
            elif file_format(path):
                found = [path]
            else:
                raise ConfigError(f"input file is not a known format ({known}): {path}")
        files.extend(found)
    seen: set[Path] = set()
    unique = []
    for path in files:
        if path.resolve() not in seen:
            seen.add(path.resolve())
            unique.append(path)
    return unique


@dataclass(frozen=True)
class ReadTask:
    """One unit of reading: `path` from `start` up to `stop` (bytes, row groups or record batches).

    `stop` None means to the end. `source` is the path as the user named it (it goes into ids, the
    source column and error messages); `path` is absolute, so any Ray worker can open it.
    """

    file_index: int
    chunk: int
    path: str
    source: str
    format: str
    start: int = 0
    stop: int | None = None

    @property
    def name(self) -> str:
        return f"{self.file_index:05d}-{self.chunk:05d}"


def _ranges(total: int, parts: int) -> list[tuple[int, int]]:
    step = -(-total // parts)
    return [(i, min(i + step, total)) for i in range(0, total, step)]


def split_file(file_index: int, path: Path, split_bytes: int) -> list[ReadTask]:
    """The read tasks of one file: slices of about `split_bytes` where the format allows."""
    fmt = file_format(path)
    assert fmt is not None, path
    size = path.stat().st_size
    parts = max(1, -(-size // split_bytes))
    base = {"file_index": file_index, "path": str(path.resolve()), "source": str(path), "format": fmt}
    if parts == 1 or (fmt == "jsonl" and not path.name.endswith(".jsonl")) or fmt == "warc":
        return [ReadTask(chunk=0, **base)]
    if fmt == "jsonl":
        ranges = _ranges(size, parts)
    else:
        from pipelines.readers.columnar import count_units

        try:
            units = count_units(path, fmt)
        except (OSError, ValueError) as e:  # pyarrow's ArrowInvalid is a ValueError
            raise ConfigError(f"input file {path} is not a readable {fmt} file: {e}") from None
        if units is None or units <= 1:
            return [ReadTask(chunk=0, **base)]
        ranges = _ranges(units, min(parts, units))
    return [ReadTask(chunk=i, start=start, stop=stop, **base) for i, (start, stop) in enumerate(ranges)]


def plan_tasks(files: list[Path], split_bytes: int) -> list[ReadTask]:
    """Every read task of `files`, in input order."""
    return [task for index, path in enumerate(files) for task in split_file(index, path, split_bytes)]
