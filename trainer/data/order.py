"""The order in which one source's sequences are drawn, epoch after epoch, without holding a permutation.

The source's sequences (concatenated over its files) are cut into fixed-size blocks; each epoch draws
the blocks in a seeded order and the rows of each block in a seeded order, seeded by (seed, source,
epoch, block). So the n-th draw's sequence is a pure function of n: any rank computes any draw, and a
resume is a counter. A block is a contiguous range of a few files, so reads stay local and few files
are mapped at once. This is the two-level shuffle of MosaicML Streaming (streaming/base/shuffle/py1b.py:
shards into blocks, samples shuffled within a block), over fixed-size blocks of sequences instead of shards.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np

CACHED = 4
"""Permutations kept per source (block orders and row orders each): a global batch spans at most two
blocks of a source unless it is larger than a block; more only costs recomputing one."""


class BlockShuffle:
    """Draw number -> sequence index of one source, for every epoch."""

    def __init__(self, sequences: int, *, block: int, seed: int, source: int) -> None:
        self.sequences, self.block, self.seed, self.source = sequences, block, seed, source
        self.blocks = -(-sequences // block)
        self.last_size = sequences - (self.blocks - 1) * block
        self._block_orders: OrderedDict[int, tuple[np.ndarray, int]] = OrderedDict()
        self._row_orders: OrderedDict[tuple[int, int], np.ndarray] = OrderedDict()

    @property
    def cached_bytes(self) -> int:
        """Memory of the cached permutations: bounded by CACHED blocks, whatever the source's size."""
        return sum(o.nbytes for o, _ in self._block_orders.values()) + sum(o.nbytes for o in self._row_orders.values())

    def indices(self, draws: np.ndarray) -> np.ndarray:
        """The sequence index (into the source's concatenated sequences) of each draw number."""
        epochs, within = np.divmod(np.asarray(draws, dtype=np.int64), self.sequences)
        out = np.empty_like(within)
        for epoch in np.unique(epochs).tolist():
            picked = epochs == epoch
            blocks, offsets = self._place(epoch, within[picked])
            rows = np.empty_like(offsets)
            for block in np.unique(blocks).tolist():
                in_block = blocks == block
                rows[in_block] = block * self.block + self._row_order(epoch, block)[offsets[in_block]]
            out[picked] = rows
        return out

    def _place(self, epoch: int, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(block, offset in the block) of positions within an epoch, blocks taken in the epoch's order.

        Every block holds `block` sequences but the last, shorter one, which sits at slot `short` of the
        order: positions before it, in it and after it are each a division away."""
        order, short = self._block_order(epoch)
        short_start = short * self.block
        slots = np.where(positions < short_start, positions // self.block, short)
        offsets = np.where(positions < short_start, positions % self.block, positions - short_start)
        after = positions >= short_start + self.last_size
        rest = positions[after] - short_start - self.last_size
        slots[after], offsets[after] = short + 1 + rest // self.block, rest % self.block
        return order[slots], offsets

    def _block_order(self, epoch: int) -> tuple[np.ndarray, int]:
        if epoch not in self._block_orders:
            # The trailing 0 keeps this stream apart from the row orders' (block + 1 there).
            order = np.random.default_rng([self.seed, self.source, epoch, 0]).permutation(self.blocks)
            self._block_orders[epoch] = order, int(np.flatnonzero(order == self.blocks - 1)[0])
            _trim(self._block_orders)
        self._block_orders.move_to_end(epoch)
        return self._block_orders[epoch]

    def _row_order(self, epoch: int, block: int) -> np.ndarray:
        key = (epoch, block)
        if key not in self._row_orders:
            size = self.last_size if block == self.blocks - 1 else self.block
            rng = np.random.default_rng([self.seed, self.source, epoch, block + 1])
            self._row_orders[key] = rng.permutation(size).astype(np.int64)
            _trim(self._row_orders)
        self._row_orders.move_to_end(key)
        return self._row_orders[key]


def _trim(cache: OrderedDict) -> None:
    """Drop the least recently used entries beyond CACHED."""
    while len(cache) > CACHED:
        cache.popitem(last=False)
