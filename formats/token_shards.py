"""A token-shard folder, as `pipelines.token_shards` writes it and the trainer reads it.

    tokens-00000.arrow ...  Arrow IPC file, one column tokens: fixed_size_list<uint32>[seq_len]; its schema
                            metadata records its provenance (source shard, sha256s, seq_len) and counts
    manifest.json           seq_len, totals, the tokenizer's sha256 and special ids, one entry per file; written last

LLaDA pretrains on fixed-length chunks of concatenated documents with EOS between documents and no
attention mask (docs/SPEC-diffusion.md, "Pretraining loss"): every row is one training sequence.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.ipc

from common.config import ConfigError
from common.files import atomic_path, write_json

MANIFEST = "manifest.json"
FILE_GLOB = "tokens-*.arrow"
FORMAT = "Arrow IPC file, one column tokens: fixed_size_list<uint32>[seq_len], one record batch"
DROPPED = (
    "the last partial sequence (fewer than seq_len tokens) of each document shard is dropped; "
    "tokens_dropped counts its tokens"
)
SHARD_KEYS = ("file", "source", "documents", "sequences", "tokens_dropped", "sha256")
"""What the manifest records of each token file."""


def token_file_name(index: int) -> str:
    """The file name of the token file made from the index-th document shard."""
    return f"tokens-{index:05d}.arrow"


def to_arrow_table(rows: np.ndarray) -> pa.Table:
    """Rows of shape (n, seq_len) as a table with one column `tokens: fixed_size_list<uint32>[seq_len]`."""
    rows = np.ascontiguousarray(rows, dtype=np.uint32)
    if rows.ndim != 2:
        raise ValueError(f"rows must have shape (n, seq_len), got {rows.shape}")
    # from_buffers wraps the numpy memory as it is (pa.array would also import pandas, ~2 s per process).
    values = pa.Array.from_buffers(pa.uint32(), rows.size, [None, pa.py_buffer(rows)])
    return pa.Table.from_arrays([pa.FixedSizeListArray.from_arrays(values, rows.shape[1])], names=["tokens"])


def write_token_file(path: Path, rows: np.ndarray, metadata: dict[str, str]) -> None:
    """`rows` with `metadata` in the schema, as one Arrow IPC file written atomically."""
    table = to_arrow_table(rows).replace_schema_metadata(metadata)
    with atomic_path(path) as tmp, pa.OSFile(str(tmp), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)


def read_token_file_metadata(path: Path) -> tuple[dict[str, str], int] | None:
    """(schema metadata, number of sequences) of a readable token file; None when it is missing or unreadable."""
    if not path.is_file():
        return None
    try:
        reader = pa.ipc.open_file(pa.memory_map(str(path), "r"))
    except (pa.ArrowInvalid, OSError):
        return None
    metadata = {k.decode(): v.decode() for k, v in (reader.schema.metadata or {}).items()}
    return metadata, sum(reader.get_batch(i).num_rows for i in range(reader.num_record_batches))


def read_token_shard(path: str | Path) -> np.ndarray:
    """One tokens-NNNNN.arrow file as a (sequences, seq_len) uint32 array, memory-mapped (no copy)."""
    reader = pa.ipc.open_file(pa.memory_map(str(path), "r"))
    seq_len = reader.schema.field("tokens").type.list_size
    parts = [
        _uint32_view(reader.get_batch(i).column(0).flatten()).reshape(-1, seq_len)
        for i in range(reader.num_record_batches)
    ]
    return _stack(parts, seq_len)


def _uint32_view(values: pa.Array) -> np.ndarray:
    """The ids of a uint32 array without nulls, as numpy over the same memory (to_numpy imports pandas)."""
    return np.frombuffer(values.buffers()[1], dtype=np.uint32, count=len(values), offset=values.offset * 4)


def write_manifest(directory: Path, manifest: dict[str, Any]) -> None:
    """manifest.json, written last: it marks the folder complete."""
    write_json(directory / MANIFEST, manifest)


def read_manifest(directory: str | Path) -> dict[str, Any]:
    """A token-shard folder's manifest; raises ConfigError naming the missing file."""
    manifest_path = Path(directory) / MANIFEST
    if not manifest_path.is_file():
        raise ConfigError(
            f"no token shards at {directory}: {manifest_path} is missing; run python -m pipelines.token_shards"
        )
    return json.loads(manifest_path.read_text(encoding="utf-8"))


def load_token_shards(directory: str | Path) -> tuple[np.ndarray, dict]:
    """All sequences of a token-shard folder as one (N, seq_len) uint32 array, and its manifest.

    The files are read in manifest order; with one file the array is a memory-mapped view, with more
    it is one copy in memory. Raises ConfigError when a file disagrees with the manifest.
    """
    directory = Path(directory)
    manifest = read_manifest(directory)
    seq_len = manifest["seq_len"]
    parts = []
    for shard in manifest["shards"]:
        rows = read_token_shard(directory / shard["file"])
        if rows.shape != (shard["sequences"], seq_len):
            raise ConfigError(
                f"{directory / shard['file']} holds {rows.shape[0]} sequences of {rows.shape[1]} tokens, "
                f"{directory / MANIFEST} says {shard['sequences']} of {seq_len}; rerun python -m pipelines.token_shards"
            )
        parts.append(rows)
    return _stack(parts, seq_len), manifest


def _stack(parts: list[np.ndarray], seq_len: int) -> np.ndarray:
    """One array of all rows; a single part is returned as it is (still memory-mapped)."""
    if len(parts) == 1:
        return parts[0]
    return np.concatenate(parts) if parts else np.empty((0, seq_len), dtype=np.uint32)
