"""A mixture of token sources: which rows each source is, checked before training, and which source each
global position draws from.

A mixture maps a token-shard folder, or `folder:source` (one document source inside a folder, as the
manifest records them), to a weight. Each source is indexed as row ranges of its files, a few integers
per file (formats/token_shards.py groups a file's rows by source), never per sequence.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from common.config import ConfigError
from formats.token_shards import MANIFEST, verify_token_folder

SHARED_KEYS = ("seq_len", "tokenizer_sha256", "special_tokens")
"""What every folder of one mixture must agree on: the model sees one vocabulary and one length."""


@dataclass(frozen=True)
class Source:
    """One mixture entry's sequences, concatenated over its files in manifest order."""

    key: str
    """The mixture key as given: a folder, or folder:source."""
    paths: tuple[str, ...]
    """The file of each segment (only the files that hold the source), as a path string: a dict key."""
    starts: np.ndarray
    """int64 (segments + 1,): segment k holds the source's sequences starts[k] .. starts[k+1] - 1."""
    first_rows: np.ndarray
    """int64 (segments,): the row of segment k's first sequence inside its file."""

    @property
    def sequences(self) -> int:
        return int(self.starts[-1])

    @property
    def index_bytes(self) -> int:
        """Memory of the index arrays: 16 bytes per file (besides its path), whatever the number of sequences."""
        return self.starts.nbytes + self.first_rows.nbytes

    def locate(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(segment, row in that segment's file) of each of the source's sequence indices."""
        segments = np.searchsorted(self.starts, indices, side="right") - 1
        return segments, self.first_rows[segments] + (indices - self.starts[segments])


def as_mixture(mixture: dict[str, float] | str) -> dict[str, float]:
    """A plain tokens_dir is the mixture {tokens_dir: 1.0}."""
    return {str(mixture): 1.0} if isinstance(mixture, (str, Path)) else dict(mixture)


def _split_key(key: str) -> tuple[Path, str | None]:
    """(folder, document source or None for the whole folder) of a mixture key."""
    if (Path(key) / MANIFEST).is_file():
        return Path(key), None
    # A source name (an input path) may itself hold ':', so the folder is the shortest prefix that is one.
    for i, char in enumerate(key):
        if char == ":" and (Path(key[:i]) / MANIFEST).is_file():
            return Path(key[:i]), key[i + 1 :]
    raise ConfigError(
        f"mixture source {key!r}: neither {Path(key) / MANIFEST} nor, for folder:source, a folder before a ':' "
        "exists; give a token-shard folder (python -m pipelines.token_shards writes one) or folder:source"
    )


def resolve_mixture(mixture: dict[str, float] | str) -> dict[str, float]:
    """The mixture with each key's folder made absolute (what a checkpoint's fingerprint records)."""
    resolved = {}
    for key, weight in as_mixture(mixture).items():
        folder, name = _split_key(key)
        resolved[str(folder.resolve()) + (f":{name}" if name is not None else "")] = weight
    return resolved


def mixture_folders(mixture: dict[str, float] | str) -> list[Path]:
    """The distinct token-shard folders of a mixture, in key order."""
    folders = [_split_key(key)[0] for key in sorted(as_mixture(mixture))]
    return list(dict.fromkeys(folders))


def _index(key: str, folder: Path, name: str | None, manifest: dict[str, Any]) -> Source:
    """The segments of one source: whole files, or the run of rows of `name` in each file holding it."""
    files, lengths, first_rows = [], [], []
    for shard in manifest["shards"]:
        runs = shard["sequences_by_source"] if name is not None else {None: shard["sequences"]}
        offset = 0
        for source, count in runs.items():
            if source == name and count:
                files.append(str(folder / shard["file"]))
                lengths.append(count)
                first_rows.append(offset)
            offset += count
    if not files:
        known = sorted({s for shard in manifest["shards"] for s in shard["sequences_by_source"]})
        what = "it holds no sequences"
        if name is not None:
            what = f"source {name!r} has no sequences in it (its sources: {', '.join(known) or 'none'})"
        raise ConfigError(f"mixture source {key!r} is empty: {folder / MANIFEST} says {what}; remove it from the mixture")
    starts = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    return Source(key, tuple(files), starts, np.asarray(first_rows, dtype=np.int64))


def open_mixture(mixture: dict[str, float] | str, *, tokenizer_sha256: str | None = None
                 ) -> tuple[list[Source], np.ndarray, dict[str, Any]]:
    """(sources in key order, their normalized weights, what their folders share); raises ConfigError
    naming the file or key at fault. Key order makes {"a": .5, "b": .5} and {"b": .5, "a": .5} one mixture."""
    mixture = as_mixture(mixture)
    if not mixture:
        raise ConfigError("the mixture is empty: give tokens_dir or at least one mixture source")
    for key, weight in mixture.items():
        if not (isinstance(weight, (int, float)) and math.isfinite(weight) and weight > 0):
            raise ConfigError(f"mixture source {key!r} has weight {weight!r}; weights must be positive numbers")
    manifests: dict[Path, dict[str, Any]] = {}
    sources = []
    for key in sorted(mixture):
        folder, name = _split_key(key)
        if folder not in manifests:
            manifests[folder] = verify_token_folder(folder, tokenizer_sha256=tokenizer_sha256)
        sources.append(_index(key, folder, name, manifests[folder]))
    (first, reference), *others = manifests.items()
    for folder, manifest in others:
        for field in SHARED_KEYS:
            if manifest.get(field) != reference.get(field):
                raise ConfigError(
                    f"{folder / MANIFEST} has {field} {manifest.get(field)!r} but {first / MANIFEST} has "
                    f"{reference.get(field)!r}: the folders of one mixture must share {', '.join(SHARED_KEYS)}"
                )
    weights = np.array([mixture[s.key] for s in sources], dtype=np.float64)
    return sources, weights / weights.sum(), {field: reference[field] for field in SHARED_KEYS}


def check_mixture(mixture: dict[str, float] | str, *, tokenizer_sha256: str | None = None) -> dict[str, Any]:
    """Check a mixture before any worker starts (folders, tokenizer, file sizes and counts, non-empty
    sources); returns seq_len, vocab_size, special_tokens, tokenizer_sha256, and per key its normalized
    weight and sequence count. Raises ConfigError naming the file."""
    sources, weights, shared = open_mixture(mixture, tokenizer_sha256=tokenizer_sha256)
    return {
        **shared,
        "vocab_size": shared["special_tokens"]["vocab_size"],
        "weights": {s.key: float(w) for s, w in zip(sources, weights)},
        "sequences": {s.key: s.sequences for s in sources},
    }


def schedule(weights: np.ndarray, drawn: np.ndarray, start: int, length: int) -> tuple[np.ndarray, np.ndarray]:
    """(source, that source's draw number) of each global position start .. start + length - 1; advances
    `drawn` (sequences drawn so far per source, summing to `start`) in place.

    Position t goes to the source furthest behind its share, argmax (t + 1) * w - drawn (the first on
    ties), as Megatron-LM's blended datasets do (megatron/core/datasets/helpers.cpp,
    build_blending_indices). Each source's count stays within a couple of sequences of t * w, so any
    window of 1,000 positions is within 1% of the weights (tests/trainer/test_loader.py checks it);
    and the state is the counts alone, so a resume costs nothing however far the run got."""
    w, counts = weights.tolist(), drawn.tolist()
    sources, draws = np.empty(length, np.int64), np.empty(length, np.int64)
    for i in range(length):
        t = start + i + 1
        best = max(range(len(w)), key=lambda s: t * w[s] - counts[s])
        sources[i], draws[i] = best, counts[best]
        counts[best] += 1
    drawn[:] = counts
    return sources, draws
