"""The corpus build's output, as later stages (tokenizer, token shards, fuzzy dedup) find it."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq

from common.config import ConfigError
from common.paths import require_paths


def document_shards(corpus_dir: str | Path) -> list[Path]:
    """The corpus build's `documents/shard-*.parquet`, in name order; raises ConfigError naming what is missing."""
    (root,) = require_paths([corpus_dir], "corpus")
    documents = root / "documents"
    shards = sorted(documents.glob("shard-*.parquet"))
    if not shards:
        raise ConfigError(f"no document shards (shard-*.parquet) in {documents}; run the corpus build first")
    for shard in shards:
        if "text" not in pq.read_schema(shard).names:
            raise ConfigError(f"{shard} has no 'text' column; expected the corpus build's documents (id, text, source)")
    return shards
