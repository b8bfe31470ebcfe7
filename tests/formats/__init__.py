"""Tests of formats/. The helper below also gives the loader's tests and bench hand-made token folders."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from common.files import sha256_of
from formats import corpus
from formats.token_shards import folder_manifest, token_file_name, write_manifest, write_token_file

TOKENIZER_SHA256 = "0" * 64
SPECIAL_TOKENS = {"eos": 1, "mask": 2, "vocab_size": 1000}


def write_token_folder(directory: Path, files: list[dict[str, np.ndarray]], *, tokenizer_sha256: str = TOKENIZER_SHA256,
                       hash_files: bool = True, columns: list[dict[str, np.ndarray]] | None = None) -> dict:
    """A token folder as pipelines.token_shards writes it: one file per dict of source -> rows (grouped
    in name order, as the format says), and its manifest; returns the manifest. `columns`: per file, int32
    columns beside the tokens (SFT pairs' SFT_COLUMNS), in the file's row order; the manifest then says kind sft."""
    directory.mkdir(parents=True, exist_ok=True)
    seq_len = next(rows.shape[1] for by_source in files for rows in by_source.values())
    entries = []
    for i, by_source in enumerate(files):
        runs = [(name, len(by_source[name])) for name in sorted(by_source) if len(by_source[name])]
        rows = np.concatenate([by_source[name] for name, _ in runs]) if runs else np.empty((0, seq_len), np.uint32)
        path = directory / token_file_name(i)
        write_token_file(path, rows, {"documents": "0", "tokens_dropped": "0"}, runs, columns[i] if columns else None)
        entries.append({"file": path.name, "source": f"shard-{i:05d}.parquet", "documents": 0, "sequences": len(rows),
                        "tokens_dropped": 0, "sha256": sha256_of(path) if hash_files else "", "bytes": path.stat().st_size,
                        "sequences_by_source": dict(runs)})
    manifest = folder_manifest(entries, seq_len=seq_len, tokenizer_sha256=tokenizer_sha256, special_tokens=SPECIAL_TOKENS)
    if columns:
        manifest |= {"kind": "sft", "columns": list(columns[0])}
    write_manifest(directory, manifest)
    return manifest


def write_corpus_manifest(corpus_dir: Path) -> dict:
    """The manifest of a hand-made corpus folder, so that readers, which require it, take the folder."""
    return corpus.write_manifest(corpus_dir, corpus.existing_shard_entries(corpus_dir), {})
