"""A corpus folder, as the corpus build and the fuzzy dedup write it and later stages read it.

    documents/shard-00000.parquet ...  CORPUS_SCHEMA: id, text, source, language, language_score
    manifest.json                      shards (file, documents, text bytes, sha256), totals, config; written last

The manifest marks a finished folder: a job removes it before writing, and writes it after every shard.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from common.config import ConfigError
from common.files import write_json
from common.paths import require_paths

DOCUMENT_SCHEMA = pa.schema([("id", pa.string()), ("text", pa.string()), ("source", pa.string())])
"""What every document has, from the readers on: its id, its text and the input it came from."""

CORPUS_SCHEMA = DOCUMENT_SCHEMA.append(pa.field("language", pa.string())).append(pa.field("language_score", pa.float32()))
"""The columns of the corpus build's document shards: DOCUMENT_SCHEMA with the cleaned text, plus the
fastText language and score. The fuzzy dedup carries every column along; readers need `text`."""

DOCUMENTS_DIR = "documents"
MANIFEST = "manifest.json"
SHARD_GLOB = "shard-*.parquet"
SHARD_KEYS = ("documents", "bytes", "sha256")
"""What the manifest records of each shard besides its file."""


def shard_name(index: int) -> str:
    """The file name of the index-th document shard."""
    return f"shard-{index:05d}.parquet"


def document_shards(corpus_dir: str | Path) -> list[Path]:
    """The corpus folder's `documents/shard-*.parquet`, in name order; raises ConfigError naming what is missing."""
    (root,) = require_paths([corpus_dir], "corpus")
    documents = root / DOCUMENTS_DIR
    shards = sorted(documents.glob(SHARD_GLOB))
    if not shards:
        raise ConfigError(f"no document shards ({SHARD_GLOB}) in {documents}; run the corpus build first")
    for shard in shards:
        if "text" not in pq.read_schema(shard).names:
            raise ConfigError(f"{shard} has no 'text' column; expected the corpus build's documents (id, text, source)")
    return shards


def start_output(output_dir: Path) -> None:
    """Create `output_dir` and remove its manifest, so an interrupted rerun is not mistaken for a finished one."""
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / MANIFEST).unlink(missing_ok=True)


def shard_entry(name: str, result: dict[str, Any]) -> dict[str, Any]:
    """The manifest's record of the shard `documents/<name>` from a write task's result."""
    return {"file": f"{DOCUMENTS_DIR}/{name}", **{key: result[key] for key in SHARD_KEYS}}


def write_manifest(output_dir: Path, shards: list[dict[str, Any]], config: dict[str, Any]) -> dict[str, Any]:
    """manifest.json (written last: it marks the folder complete); returns it."""
    manifest = {
        "shards": shards,
        "documents": sum(s["documents"] for s in shards),
        "bytes": sum(s["bytes"] for s in shards),
        "config": config,
    }
    write_json(output_dir / MANIFEST, manifest)
    return manifest
