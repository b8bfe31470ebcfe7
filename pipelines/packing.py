"""Documents' token ids -> fixed-length training sequences, and the reader of the token shards.

LLaDA pretrains on fixed-length chunks of concatenated documents with EOS between documents and no
attention mask (SPEC-diffusion.md, "Pretraining loss"). Pure functions, no Ray: the trainer imports
`load_token_shards` from here.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from itertools import chain
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.ipc

from common.config import ConfigError


def pack_sequences(
    docs_ids: Iterable[Sequence[int]], seq_len: int, eos_id: int, *, carry: Sequence[int] = ()
) -> tuple[np.ndarray, list[int]]:
    """Concatenate `carry` and every document followed by EOS, cut into rows of seq_len ids.

    Returns (rows, uint32 of shape (n, seq_len); leftover, the last len < seq_len ids): the caller
    passes the leftover as `carry` to the next call, or drops it at the end of a shard.
    """
    if seq_len < 1:
        raise ValueError(f"seq_len must be >= 1, got {seq_len}")
    flat = np.fromiter(
        chain(carry, chain.from_iterable(chain(ids, (eos_id,)) for ids in docs_ids)), dtype=np.uint32
    )
    n = len(flat) // seq_len
    return flat[: n * seq_len].reshape(n, seq_len), flat[n * seq_len :].tolist()


def to_arrow_table(rows: np.ndarray) -> pa.Table:
    """Rows of shape (n, seq_len) as a table with one column `tokens: fixed_size_list<uint32>[seq_len]`."""
    rows = np.ascontiguousarray(rows, dtype=np.uint32)
    if rows.ndim != 2:
        raise ValueError(f"rows must have shape (n, seq_len), got {rows.shape}")
    # from_buffers wraps the numpy memory as it is (pa.array would also import pandas, ~2 s per process).
    values = pa.Array.from_buffers(pa.uint32(), rows.size, [None, pa.py_buffer(rows)])
    return pa.Table.from_arrays([pa.FixedSizeListArray.from_arrays(values, rows.shape[1])], names=["tokens"])


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


def load_token_shards(directory: str | Path) -> tuple[np.ndarray, dict]:
    """All sequences of a token_shards output as one (N, seq_len) uint32 array, and its manifest.

    The files are read in manifest order; with one file the array is a memory-mapped view, with more
    it is one copy in memory. Raises ConfigError when a file disagrees with the manifest.
    """
    directory = Path(directory)
    manifest_path = directory / "manifest.json"
    if not manifest_path.is_file():
        raise ConfigError(
            f"no token shards at {directory}: {manifest_path} is missing; run python -m pipelines.token_shards"
        )
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    seq_len = manifest["seq_len"]
    parts = []
    for shard in manifest["shards"]:
        rows = read_token_shard(directory / shard["file"])
        if rows.shape != (shard["sequences"], seq_len):
            raise ConfigError(
                f"{directory / shard['file']} holds {rows.shape[0]} sequences of {rows.shape[1]} tokens, "
                f"{manifest_path} says {shard['sequences']} of {seq_len}; rerun python -m pipelines.token_shards"
            )
        parts.append(rows)
    return _stack(parts, seq_len), manifest


def _stack(parts: list[np.ndarray], seq_len: int) -> np.ndarray:
    """One array of all rows; a single part is returned as it is (still memory-mapped)."""
    if len(parts) == 1:
        return parts[0]
    return np.concatenate(parts) if parts else np.empty((0, seq_len), dtype=np.uint32)
