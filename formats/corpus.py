"""A corpus folder, as the corpus build and the fuzzy dedup write it and later stages read it.

    documents/shard-00000.parquet ...  CORPUS_SCHEMA: id, text, source, language, language_score
    manifest.json                      shards (file, documents, text bytes, file size, sha256), totals, config;
                                       written last

The manifest marks a finished folder: the job removes it before writing and writes it after every shard
(common/job_harness.py). Readers (`document_shards`) require it and check the folder against it: the
same shard files, each of the size recorded; a stage that reads a shard's bytes anyway also compares its
sha256 (`check_sha256`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from common.config import ConfigError
from common.files import write_json
from common.job_harness import MANIFEST
from common.paths import require_paths

DOCUMENT_SCHEMA = pa.schema([("id", pa.string()), ("text", pa.string()), ("source", pa.string())])
"""What every document has, from the readers on: its id, its text and the input it came from."""

CORPUS_SCHEMA = DOCUMENT_SCHEMA.append(pa.field("language", pa.string())).append(pa.field("language_score", pa.float32()))
"""The columns of the corpus build's document shards: DOCUMENT_SCHEMA with the cleaned text, plus the
fastText language and score. The fuzzy dedup carries every column along; readers need `text`."""

DOCUMENTS_DIR = "documents"
SHARD_GLOB = "shard-*.parquet"
SHARD_KEYS = ("documents", "bytes", "sha256")
"""What the manifest records of each shard besides its file."""


def shard_name(index: int) -> str:
    """The file name of the index-th document shard."""
    return f"shard-{index:05d}.parquet"


def read_manifest(corpus_dir: str | Path) -> dict[str, Any]:
    """A finished corpus folder's manifest; raises ConfigError when the folder or its manifest is missing."""
    (root,) = require_paths([corpus_dir], "corpus")
    path = root / MANIFEST
    if not path.is_file():
        raise ConfigError(
            f"{root} has no {MANIFEST}: the job that writes it has not finished there (or was interrupted); "
            "run the corpus build (and the fuzzy dedup, for corpus_fuzzy) to the end first"
        )
    return json.loads(path.read_text(encoding="utf-8"))


def document_shards(corpus_dir: str | Path) -> list[Path]:
    """The document shards of a finished corpus folder, in manifest order, after checking the folder
    against its manifest (the same files, each of its recorded size); raises ConfigError naming the file."""
    root = Path(corpus_dir)
    manifest = read_manifest(root)
    documents = root / DOCUMENTS_DIR
    listed = [root / entry["file"] for entry in manifest["shards"]]
    found = sorted(documents.glob(SHARD_GLOB))
    if not listed:
        raise ConfigError(f"{root / MANIFEST} lists no document shards: the build kept no document; rerun it")
    rerun = "rerun the job that wrote it"
    if extra := sorted(set(found) - set(listed)):
        raise ConfigError(f"{extra[0]} is not in {root / MANIFEST} ({len(extra)} such files): a later run was interrupted; {rerun}")
    for entry, shard in zip(manifest["shards"], listed):
        if "file_bytes" not in entry:
            raise ConfigError(f"{root / MANIFEST} predates file sizes in the manifest; {rerun}")
        size = shard.stat().st_size if shard.is_file() else None
        if size != entry["file_bytes"]:
            raise ConfigError(f"{shard} is {'missing' if size is None else f'{size} bytes'}, {root / MANIFEST} says "
                              f"{entry['file_bytes']} bytes; {rerun}")
    shards = listed
    for shard in shards:
        if "text" not in pq.read_schema(shard).names:
            raise ConfigError(f"{shard} has no 'text' column; expected the corpus build's documents (id, text, source)")
    return shards


def shard_entry(name: str, result: dict[str, Any]) -> dict[str, Any]:
    """The manifest's record of the shard `documents/<name>` from a write task's result."""
    return {"file": f"{DOCUMENTS_DIR}/{name}", **{key: result[key] for key in SHARD_KEYS}}


def check_sha256(shard: Path, sha256: str) -> None:
    """For a stage that hashes a shard anyway (token shards record it): refuse one that is not the
    manifest's, naming it."""
    manifest = read_manifest(shard.parent.parent)
    entry = next((e for e in manifest["shards"] if shard.parent.parent / e["file"] == shard), None)
    if entry is None or entry["sha256"] != sha256:
        raise ConfigError(f"{shard} has sha256 {sha256}, {shard.parent.parent / MANIFEST} says "
                          f"{entry['sha256'] if entry else 'nothing of it'}; rerun the job that wrote it")


def existing_shard_entries(corpus_dir: Path) -> list[dict[str, Any]]:
    """Manifest entries of the document shards a folder holds now (their rows and sha256; text bytes
    uncounted), for corpora written by other means than the corpus jobs (benches, tests)."""
    from common.files import sha256_of

    shards = sorted((corpus_dir / DOCUMENTS_DIR).glob(SHARD_GLOB))
    return [{"file": f"{DOCUMENTS_DIR}/{path.name}", "documents": pq.read_metadata(path).num_rows, "bytes": 0,
             "sha256": sha256_of(path)} for path in shards]


def write_manifest(output_dir: Path, shards: list[dict[str, Any]], config: dict[str, Any]) -> dict[str, Any]:
    """manifest.json (written last: it marks the folder complete), each shard with its file size; returns it."""
    shards = [{**entry, "file_bytes": (output_dir / entry["file"]).stat().st_size} for entry in shards]
    manifest = {
        "shards": shards,
        "documents": sum(s["documents"] for s in shards),
        "bytes": sum(s["bytes"] for s in shards),
        "config": config,
    }
    write_json(output_dir / MANIFEST, manifest)
    return manifest
