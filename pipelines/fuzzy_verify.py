"""Verification of the fuzzy dedup's candidate pairs: each pair's Jaccard similarity, true or estimated.

LSH makes a pair a candidate when one band of its signatures is equal, which pairs well below the
threshold also do by luck. With verify_threshold, the buckets task measures every candidate edge and
keeps those that reach it: verify_method=shingles merges the two documents' sorted shingle sets (the
true Jaccard, up to 32-bit hash collisions), verify_method=signature counts equal signature values
(MinHash's estimate). Both read only the rows asked for, from the files the signatures task wrote.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipelines import components, minhash
from pipelines.fuzzy_work import shingle_offsets_path, shingles_path, signatures_path


def candidate_similarity(
    work: Path, larger: np.ndarray, smaller: np.ndarray, method: str, num_hashes: int
) -> np.ndarray:
    """Per edge (larger[i], smaller[i]): the Jaccard similarity of its two documents, as `method` measures it."""
    if method == "shingles":
        return true_jaccard(work, larger, smaller)
    sigs_larger, sigs_smaller = gather_signatures(work, larger, num_hashes), gather_signatures(work, smaller, num_hashes)
    return minhash.estimated_jaccard(sigs_larger, sigs_smaller)


def gather_signatures(work: Path, nodes: np.ndarray, num_hashes: int) -> np.ndarray:
    """The signatures of `nodes`, read from their shards' memory-mapped files (only the rows asked for)."""
    sigs = np.empty((len(nodes), num_hashes), dtype=np.uint32)
    shards = components.shard_of(nodes)
    for shard_index in np.unique(shards):
        chosen = np.flatnonzero(shards == shard_index)
        mapped = np.load(signatures_path(work, int(shard_index)), mmap_mode="r")
        sigs[chosen] = mapped[components.row_of(nodes[chosen])]
    return sigs


def read_shingle_sets(work: Path, shard_index: int) -> tuple[np.ndarray, np.ndarray]:
    """One shard's shingle sets (values memory-mapped, offsets), as minhash.shingle_sets returns them."""
    offsets = np.load(shingle_offsets_path(work, shard_index))
    if offsets[-1] == 0:  # no shingles at all; an empty file cannot be mapped
        return np.zeros(0, dtype=np.uint32), offsets
    return np.memmap(shingles_path(work, shard_index), dtype=np.uint32, mode="r"), offsets


def true_jaccard(work: Path, larger: np.ndarray, smaller: np.ndarray) -> np.ndarray:
    """Per edge: the Jaccard similarity of its two documents' shingle sets, read from their shards' files.

    Edges are taken by pair of shards, so each call merges sets from two files; the OS pages in only the
    sets asked for, and only two files are mapped at a time."""
    similarity = np.empty(len(larger), dtype=np.float64)
    shard_a, shard_b = components.shard_of(larger), components.shard_of(smaller)
    order = np.lexsort((shard_b, shard_a))
    starts = np.flatnonzero(np.r_[True, (np.diff(shard_a[order]) != 0) | (np.diff(shard_b[order]) != 0)])
    sets: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for start, end in zip(starts, [*starts[1:], len(order)]):
        chosen = order[start:end]
        a, b = int(shard_a[chosen[0]]), int(shard_b[chosen[0]])
        # Only the two shards of this group stay mapped: the pages a mapping has touched count in the
        # task's RSS until it is dropped, and a partition's edges reach into every shard.
        sets = {shard: sets[shard] if shard in sets else read_shingle_sets(work, shard) for shard in (a, b)}
        rows_a, rows_b = components.row_of(larger[chosen]), components.row_of(smaller[chosen])
        similarity[chosen] = minhash.set_jaccard(sets[a], rows_a, sets[b], rows_b)
    return similarity
