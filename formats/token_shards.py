"""A token-shard folder, as `pipelines.token_shards` writes it and the trainer reads it.

    tokens-00000.arrow ...  Arrow IPC file, one record batch, columns tokens: fixed_size_list<uint32>[seq_len]
                            and source: dictionary<int32, string> (the input the sequence's documents came
                            from); rows grouped by source, sources in name order; the schema metadata records
                            the file's provenance (source shard, sha256s, seq_len) and counts
    manifest.json           seq_len, totals, the tokenizer's sha256 and special ids, one entry per file (its
                            size in bytes, sequences, sequences per source in row order); written last
    validation/             the held-out documents' sequences: the same layout, its own manifest.json

LLaDA pretrains on fixed-length chunks of concatenated documents with EOS between documents and no
attention mask (docs/SPEC-diffusion.md, "Pretraining loss"): every row is one training sequence. Each
source is packed on its own, so a row holds one source's tokens and a mixture by source is exact; since
rows are grouped by source, a source inside a file is a row range, and a reader's index is a few
integers per file, not per sequence.

SFT pairs (`pipelines.sft_shards`) use the same folder layout, with two int32 columns more (SFT_COLUMNS):
a row is one (prompt, response) pair right-padded with EOS to seq_len, the manifest says "kind": "sft",
and files are tokens-NNNNN-PPPPP.arrow (the PPPPP-th file of the NNNNN-th conversation file). The
trainer's loader reads both kinds (trainer/data/).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.ipc
import xxhash

from common.config import ConfigError
from common.files import atomic_path, write_json
from common.job_harness import MANIFEST

FILE_GLOB = "tokens-*.arrow"
VALIDATION_DIR = "validation"
FORMAT = (
    "Arrow IPC file, one record batch, columns tokens: fixed_size_list<uint32>[seq_len] and "
    "source: dictionary<int32, string>, rows grouped by source in name order"
)
DROPPED = (
    "the last partial sequence (fewer than seq_len tokens) of each source in each document shard is dropped; "
    "tokens_dropped counts its tokens"
)
SFT_COLUMNS = ("prompt_length", "length")
"""The columns of an SFT pair folder (pipelines.sft_shards) beside tokens and source: the prompt's length
and the pair's (prompt + response, with the response's EOS); each row is right-padded with EOS up to seq_len."""
SHARD_KEYS = ("file", "source", "documents", "sequences", "tokens_dropped", "sha256", "bytes", "sequences_by_source")
"""What the manifest records of each token file: `source` is the document shard it was made from,
`sequences_by_source` the rows of each document source, in row order."""
RERUN = "rerun python -m pipelines.token_shards"


def token_file_name(index: int, part: int | None = None) -> str:
    """The file name of the token file made from the index-th input (document shard, conversation file),
    or of its part-th file when one input makes several (SFT pairs)."""
    return f"tokens-{index:05d}.arrow" if part is None else f"tokens-{index:05d}-{part:05d}.arrow"


def held_out(document_id: str, fraction: float) -> bool:
    """Whether a document belongs to the validation split: xxhash64 of its id below fraction * 2^64.

    A function of the id alone, so the split is the same on every rerun and a document keeps its side
    when others are added or removed."""
    return xxhash.xxh64_intdigest(document_id.encode("utf-8")) < int(fraction * 2.0**64)


def to_arrow_table(rows: np.ndarray, source_runs: list[tuple[str, int]] | None = None,
                   columns_by_name: dict[str, np.ndarray] | None = None) -> pa.Table:
    """Rows of shape (n, seq_len) as a table with a column `tokens: fixed_size_list<uint32>[seq_len]`,
    with `source_runs` ((source, rows) in row order) a column `source: dictionary<int32, string>`, and
    one int32 column per entry of `columns_by_name` (SFT_COLUMNS for SFT pairs)."""
    rows = np.ascontiguousarray(rows, dtype=np.uint32)
    if rows.ndim != 2:
        raise ValueError(f"rows must have shape (n, seq_len), got {rows.shape}")
    # from_buffers wraps the numpy memory as it is (pa.array would also import pandas, ~2 s per process).
    values = pa.Array.from_buffers(pa.uint32(), rows.size, [None, pa.py_buffer(rows)])
    columns, names = [pa.FixedSizeListArray.from_arrays(values, rows.shape[1])], ["tokens"]
    if source_runs is not None:
        counts = [count for _, count in source_runs]
        if sum(counts) != len(rows):
            raise ValueError(f"source_runs cover {sum(counts)} rows, not {len(rows)}")
        indices = np.repeat(np.arange(len(counts), dtype=np.int32), counts)
        indices_array = pa.Array.from_buffers(pa.int32(), len(indices), [None, pa.py_buffer(indices)])
        columns.append(pa.DictionaryArray.from_arrays(indices_array, _strings([name for name, _ in source_runs])))
        names.append("source")
    for name, values in (columns_by_name or {}).items():
        values = np.ascontiguousarray(values, dtype=np.int32)
        if values.shape != (len(rows),):
            raise ValueError(f"column {name} has shape {values.shape}, not ({len(rows)},)")
        columns.append(pa.Array.from_buffers(pa.int32(), len(values), [None, pa.py_buffer(values)]))
        names.append(name)
    return pa.Table.from_arrays(columns, names=names)


def _strings(values: list[str]) -> pa.Array:
    """A string array built from its buffers (pa.array imports pandas)."""
    encoded = [value.encode("utf-8") for value in values]
    offsets = np.concatenate([[0], np.cumsum([len(e) for e in encoded])]).astype(np.int32)
    return pa.Array.from_buffers(pa.string(), len(values), [None, pa.py_buffer(offsets), pa.py_buffer(b"".join(encoded))])


def write_token_file(path: Path, rows: np.ndarray, metadata: dict[str, str], source_runs: list[tuple[str, int]],
                     columns_by_name: dict[str, np.ndarray] | None = None) -> None:
    """`rows` (grouped by source as `source_runs` says) with `metadata` in the schema, and the int32
    `columns_by_name`, as one Arrow IPC file written atomically."""
    table = to_arrow_table(rows, source_runs, columns_by_name).replace_schema_metadata(metadata)
    # One record batch even with no rows (write_table writes none for an empty table; readers expect one).
    batch = pa.RecordBatch.from_arrays([column.combine_chunks() for column in table.columns], schema=table.schema)
    with atomic_path(path) as tmp, pa.OSFile(str(tmp), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_batch(batch)


class TokenFile(NamedTuple):
    """What a token file says of itself, from its footer and source column (its tokens are not read)."""

    metadata: dict[str, str]
    sequences: int
    sequences_by_source: dict[str, int]


def read_token_file_info(path: Path) -> TokenFile | None:
    """A readable token file's metadata and counts; None when it is missing, unreadable or has no source column."""
    if not path.is_file():
        return None
    try:
        reader = pa.ipc.open_file(pa.memory_map(str(path), "r"))
        batch = reader.get_batch(0) if reader.num_record_batches == 1 else None
    except (pa.ArrowInvalid, OSError):
        return None
    if batch is None or "source" not in batch.schema.names:
        return None
    metadata = {k.decode(): v.decode() for k, v in (reader.schema.metadata or {}).items()}
    sources = batch.column("source")
    counts = np.bincount(np.frombuffer(sources.indices.buffers()[1], np.int32, len(sources), sources.offset * 4),
                         minlength=len(sources.dictionary))
    return TokenFile(metadata, batch.num_rows, dict(zip(sources.dictionary.to_pylist(), counts.tolist())))


def read_token_shard(path: str | Path) -> np.ndarray:
    """One tokens-NNNNN.arrow file as a (sequences, seq_len) uint32 array, memory-mapped (no copy)."""
    return read_token_columns(path, ())[0]


def read_token_columns(path: str | Path, names: tuple[str, ...]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """A token file's rows and its int32 columns `names`, all memory-mapped; raises ConfigError naming a
    missing column. (The writer writes one record batch.)"""
    reader = pa.ipc.open_file(pa.memory_map(str(path), "r"))
    missing = [name for name in names if name not in reader.schema.names]
    if missing:
        raise ConfigError(f"{path} has no column {', '.join(missing)}: it was not written by the job that writes those ({RERUN}, "
                          "or python -m pipelines.sft_shards for SFT pairs)")
    batch = reader.get_batch(0)
    seq_len = reader.schema.field("tokens").type.list_size
    rows = _uint32_view(batch.column("tokens").flatten()).reshape(-1, seq_len)
    columns = {}
    for name in names:
        column = batch.column(name)
        columns[name] = np.frombuffer(column.buffers()[1], dtype=np.int32, count=len(column), offset=column.offset * 4)
    return rows, columns


def _uint32_view(values: pa.Array) -> np.ndarray:
    """The ids of a uint32 array without nulls, as numpy over the same memory (to_numpy imports pandas)."""
    return np.frombuffer(values.buffers()[1], dtype=np.uint32, count=len(values), offset=values.offset * 4)


def folder_manifest(shards: list[dict[str, Any]], *, seq_len: int, tokenizer_sha256: str,
                    special_tokens: dict[str, int]) -> dict[str, Any]:
    """The manifest of a folder of token files (`shards`: one entry of SHARD_KEYS per file, in file order)."""
    sequences = sum(s["sequences"] for s in shards)
    return {
        "seq_len": seq_len,
        "sequences": sequences,
        "tokens": sequences * seq_len,
        "tokens_dropped": sum(s["tokens_dropped"] for s in shards),
        "dropped": DROPPED,
        "documents": sum(s["documents"] for s in shards),
        "format": FORMAT,
        "tokenizer_sha256": tokenizer_sha256,
        "special_tokens": special_tokens,
        "shards": [{key: s[key] for key in SHARD_KEYS} for s in shards],
    }


def write_manifest(directory: Path, manifest: dict[str, Any]) -> None:
    """manifest.json, written last: it marks the folder complete."""
    write_json(directory / MANIFEST, manifest)


def read_manifest(directory: str | Path) -> dict[str, Any]:
    """A token-shard folder's manifest; raises ConfigError naming the missing file."""
    manifest_path = Path(directory) / MANIFEST
    if not manifest_path.is_file():
        raise ConfigError(f"no token shards at {directory}: {manifest_path} is missing; {RERUN}")
    return json.loads(manifest_path.read_text(encoding="utf-8"))


def verify_token_folder(directory: str | Path, *, tokenizer_sha256: str | None = None) -> dict[str, Any]:
    """The manifest of a token-shard folder whose files agree with it; raises ConfigError naming the file.

    Checks the tokenizer (when given), and each file's size in bytes, seq_len and sequence count (its
    footer). Not the sha256s the manifest also records: hashing a multi-GB file on every start is too
    slow, and a truncated, rewritten or foreign file changes its size or counts."""
    directory = Path(directory)
    manifest = read_manifest(directory)
    if tokenizer_sha256 is not None and manifest.get("tokenizer_sha256") != tokenizer_sha256:
        raise ConfigError(
            f"{directory / MANIFEST} was made by the tokenizer with sha256 {manifest.get('tokenizer_sha256')}, not "
            f"the expected {tokenizer_sha256}; rewrite the shards with this run's tokenizer or train with theirs"
        )
    for shard in manifest["shards"]:
        path = directory / shard["file"]
        if "bytes" not in shard or "sequences_by_source" not in shard:
            raise ConfigError(f"{directory / MANIFEST} predates sizes and sources per file ({path}); {RERUN}")
        if not path.is_file() or path.stat().st_size != shard["bytes"]:
            found = f"{path.stat().st_size} bytes" if path.is_file() else "missing"
            raise ConfigError(f"{path} is {found}, {directory / MANIFEST} says {shard['bytes']} bytes; {RERUN}")
        reader = pa.ipc.open_file(pa.memory_map(str(path), "r"))
        rows = sum(reader.get_batch(i).num_rows for i in range(reader.num_record_batches))
        _check_shape(directory, shard, (rows, reader.schema.field("tokens").type.list_size), manifest["seq_len"])
    return manifest


def _check_shape(directory: Path, shard: dict[str, Any], shape: tuple[int, int], seq_len: int) -> None:
    """Raise ConfigError unless a file's (sequences, tokens per sequence) are what the manifest says."""
    if shape != (shard["sequences"], seq_len):
        raise ConfigError(
            f"{directory / shard['file']} holds {shape[0]} sequences of {shape[1]} tokens, "
            f"{directory / MANIFEST} says {shard['sequences']} of {seq_len}; {RERUN}"
        )
