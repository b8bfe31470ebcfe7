"""The streaming, deterministic, elastic sequence loader, and the fixed validation subset.

Global position p (the p-th sequence of the run) is drawn from a source chosen by the mixture schedule
(mixture.py), and is that source's n-th draw, a sequence fixed by its block shuffle (order.py). Step k's
global batch is positions k * global_batch_size onwards, whatever the number of ranks; rank r of W reads
its contiguous share, so a run resumed on another number of workers continues the same sample order
(MosaicML Streaming's "elastic determinism"). The position is two integers per source; the files are
memory-mapped (a bounded number at once) and only the rows a rank trains on are read.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from common.config import ConfigError
from formats.token_shards import MANIFEST, VALIDATION_DIR, read_manifest, read_token_columns
from trainer.data.mixture import Source, as_mixture, open_mixture, schedule
from trainer.data.order import BlockShuffle

SOURCE_SHIFT = 40
"""A sequence id is source << 40 | index in the source: 10^12 sequences per source, 2^23 sources."""


@dataclass
class MicroBatch:
    """One micro-batch of this rank's share of a global batch."""

    tokens: np.ndarray
    """(micro_batch_size, seq_len) uint32 token ids."""
    tokens_by_source: dict[str, int]
    """Tokens of each mixture source (every key, 0 when absent) in this micro-batch."""
    sequence_ids: np.ndarray
    """(micro_batch_size,) int64 global sequence ids, source << 40 | index in the source."""
    columns: dict[str, np.ndarray]
    """The loader's extra int32 columns for these rows (SFT pairs: prompt_length, length); else empty."""


class _MappedFiles:
    """At most `limit` token files memory-mapped at once; the least recently used one is unmapped first."""

    def __init__(self, limit: int, columns: tuple[str, ...] = ()) -> None:
        self.limit, self.columns = limit, columns
        self.views: OrderedDict[str, tuple[np.ndarray, dict[str, np.ndarray]]] = OrderedDict()

    def rows(self, path: str) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """(tokens, extra columns) of a file, mapped."""
        if path not in self.views:
            self.views[path] = read_token_columns(path, self.columns)
            while len(self.views) > self.limit:
                self.views.popitem(last=False)  # the last view of a file gone, Arrow unmaps it
        self.views.move_to_end(path)
        return self.views[path]


def _read(files: _MappedFiles, source: Source, indices: np.ndarray, seq_len: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The source's sequences `indices` as a (len(indices), seq_len) uint32 copy and their extra columns,
    one gather per file."""
    out = np.empty((len(indices), seq_len), dtype=np.uint32)
    columns = {name: np.empty(len(indices), dtype=np.int32) for name in files.columns}
    segments, rows = source.locate(indices)
    for segment in np.unique(segments).tolist():
        picked = segments == segment
        tokens, extra = files.rows(source.paths[segment])
        out[picked] = tokens[rows[picked]]
        for name, values in extra.items():
            columns[name][picked] = values[rows[picked]]
    return out, columns


class SequenceLoader:
    """Global batches of a mixture of token folders, the same for any number of ranks; resumable from
    `state_dict()` in constant time."""

    def __init__(self, mixture: dict[str, float] | str, *, global_batch_size: int, seed: int,
                 shuffle_block: int = 1 << 16, tokenizer_sha256: str | None = None, max_open_files: int = 1024,
                 columns: tuple[str, ...] = ()) -> None:
        """`mixture`: {folder or folder:source: weight}, or one folder. `shuffle_block`: sequences per
        shuffle block (1 << 16: 1 GB of tokens at seq_len 4096); the order is random within a block and
        across blocks. `tokenizer_sha256`: refuse folders made by another tokenizer. `max_open_files`:
        files kept mapped (no descriptor, only address space and the pages read, which are page cache);
        at least the files one block spans (shuffle_block / sequences per file + 1) opens each once a block.
        `columns`: int32 columns to read beside the tokens (formats/token_shards.py SFT_COLUMNS for SFT pairs)."""
        if global_batch_size < 1 or shuffle_block < 1 or seed < 0 or max_open_files < 1:
            raise ConfigError(f"global_batch_size, shuffle_block and max_open_files must be >= 1 and seed >= 0, got "
                              f"{global_batch_size}, {shuffle_block}, {max_open_files} and {seed}")
        self.mixture = as_mixture(mixture)
        self.sources, self.weights, shared = open_mixture(self.mixture, tokenizer_sha256=tokenizer_sha256)
        self.global_batch_size, self.seed, self.shuffle_block = global_batch_size, seed, shuffle_block
        self.seq_len: int = shared["seq_len"]
        self.special_tokens: dict[str, int] = shared["special_tokens"]
        self.vocab_size: int = self.special_tokens["vocab_size"]
        self.tokenizer_sha256: str = shared["tokenizer_sha256"]
        self.orders = [BlockShuffle(s.sequences, block=shuffle_block, seed=seed, source=i) for i, s in enumerate(self.sources)]
        self.position = 0
        self.drawn = np.zeros(len(self.sources), dtype=np.int64)
        self._files = _MappedFiles(max_open_files, tuple(columns))

    @property
    def keys(self) -> list[str]:
        return [s.key for s in self.sources]

    @property
    def epochs(self) -> dict[str, int]:
        """The epoch each source is in (how many times its sequences were all drawn)."""
        return {s.key: int(n) // s.sequences for s, n in zip(self.sources, self.drawn)}

    @property
    def tokens_seen(self) -> dict[str, int]:
        """Tokens drawn so far per source, over all ranks (every rank schedules the whole global batch)."""
        return {s.key: int(n) * self.seq_len for s, n in zip(self.sources, self.drawn)}

    @property
    def index_bytes(self) -> int:
        """Memory of the sources' index (16 bytes per file); the cached permutations are bounded apart."""
        return sum(s.index_bytes for s in self.sources)

    def next_step(self, *, rank: int, world_size: int, micro_batch_size: int) -> list[MicroBatch]:
        """This rank's micro-batches of the next global batch; advances the global position by one global batch."""
        share, remainder = divmod(self.global_batch_size, world_size * micro_batch_size)
        if remainder or not share:
            raise ConfigError(
                f"global_batch_size={self.global_batch_size} must be a multiple of world_size={world_size} * "
                f"micro_batch_size={micro_batch_size}; change one of them"
            )
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is not in 0 .. {world_size - 1}")
        # Every rank schedules the whole global batch (microseconds per position) so that all advance alike.
        sources, draws = schedule(self.weights, self.drawn, self.position, self.global_batch_size)
        self.position += self.global_batch_size
        per_rank = self.global_batch_size // world_size
        mine = slice(rank * per_rank, (rank + 1) * per_rank)
        sources, draws = sources[mine], draws[mine]
        indices = np.empty_like(draws)
        for s in np.unique(sources).tolist():
            picked = sources == s
            indices[picked] = self.orders[s].indices(draws[picked])
        return [self._micro_batch(sources[i : i + micro_batch_size], indices[i : i + micro_batch_size])
                for i in range(0, per_rank, micro_batch_size)]

    def _micro_batch(self, sources: np.ndarray, indices: np.ndarray) -> MicroBatch:
        tokens = np.empty((len(indices), self.seq_len), dtype=np.uint32)
        columns = {name: np.empty(len(indices), dtype=np.int32) for name in self._files.columns}
        for s in np.unique(sources).tolist():
            picked = sources == s
            tokens[picked], extra = _read(self._files, self.sources[s], indices[picked], self.seq_len)
            for name, values in extra.items():
                columns[name][picked] = values
        counts = np.bincount(sources, minlength=len(self.sources)) * self.seq_len
        return MicroBatch(tokens, dict(zip(self.keys, counts.tolist())), (sources << SOURCE_SHIFT) | indices, columns)

    def state_dict(self) -> dict[str, Any]:
        """The position, JSON-able: sequences drawn in all and per source, plus what must match on load."""
        return {
            "position": self.position,
            "drawn": dict(zip(self.keys, self.drawn.tolist())),
            "sequences": {s.key: s.sequences for s in self.sources},
            "seed": self.seed,
            "shuffle_block": self.shuffle_block,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from `state_dict()`'s position: sets counters, reads no data (constant time)."""
        expected = {"sequences": {s.key: s.sequences for s in self.sources}, "seed": self.seed,
                    "shuffle_block": self.shuffle_block}
        for field, value in expected.items():
            if state.get(field) != value:
                raise ConfigError(
                    f"the loader state to resume has {field} {state.get(field)!r}, this run's loader has {value!r}: "
                    "the sample order would differ; resume with the same mixture, folders, seed and shuffle_block"
                )
        drawn = [int(state["drawn"][key]) for key in self.keys]
        if sum(drawn) != state["position"]:
            raise ConfigError(f"the loader state to resume is inconsistent: drawn {drawn} does not sum to {state['position']}")
        self.position, self.drawn[:] = int(state["position"]), drawn


def require_validation(tokens_dir: str | Path) -> Path:
    """The validation split of a token-shard folder; raises ConfigError when it is missing or empty."""
    folder = Path(tokens_dir) / VALIDATION_DIR
    if not (folder / MANIFEST).is_file() or not read_manifest(folder)["sequences"]:
        raise ConfigError(f"{tokens_dir} has no validation sequences ({folder / MANIFEST} is missing or counts none): rerun "
                          "python -m pipelines.token_shards with validation_fraction > 0, or set val_sequences=0")
    return folder


class RankData:
    """One rank's view of a SequenceLoader, as the training loop takes its data (trainer/loop.py StepData):
    its micro-batches of each global batch, and the loader's position."""

    def __init__(self, loader: SequenceLoader, *, rank: int, world_size: int, micro_batch_size: int) -> None:
        self.loader, self.rank, self.world_size, self.micro_batch_size = loader, rank, world_size, micro_batch_size

    def next_step(self) -> list[MicroBatch]:
        return self.loader.next_step(rank=self.rank, world_size=self.world_size, micro_batch_size=self.micro_batch_size)

    def state_dict(self) -> dict[str, Any]:
        return self.loader.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.loader.load_state_dict(state)


def validation_batches(tokens_dir: str | Path, *, max_sequences: int, micro_batch_size: int) -> list[np.ndarray]:
    """A fixed validation subset of `tokens_dir/validation/` as (<= micro_batch_size, seq_len) uint32 batches.

    `max_sequences` evenly spaced sequences of the split (all of them when it holds fewer): the same ones
    on every call and every run, spread over all its files and sources, so the loss compares across runs."""
    if max_sequences < 1 or micro_batch_size < 1:
        raise ConfigError(f"max_sequences and micro_batch_size must be >= 1, got {max_sequences} and {micro_batch_size}")
    folder = require_validation(tokens_dir)
    (source,), _, shared = open_mixture(str(folder))
    count = min(max_sequences, source.sequences)
    indices = np.arange(count, dtype=np.int64) * source.sequences // count
    tokens, _ = _read(_MappedFiles(limit=4), source, indices, shared["seq_len"])
    return [tokens[i : i + micro_batch_size] for i in range(0, count, micro_batch_size)]
