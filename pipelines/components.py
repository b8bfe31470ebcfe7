"""LSH buckets -> candidate edges -> connected components -> survivors: pure functions of numpy arrays.

A document is a node: int64 `shard << 32 | row`, so node order is input order. Edges are pairs of
nodes; every function here sees one partition's rows and returns what that partition contributes, so
the job can spread each step over Ray tasks and never hold the whole graph in one process.

Connected components: the alternating large-star / small-star algorithm of Kiveris, Lattanzi,
Mirrokni, Rastogi, Vassilvitskii, "Connected Components in MapReduce and Beyond" (SoCC 2014),
section 3. Each round is a map (route every edge to the partition of one endpoint) and a reduce (per
node, over its neighbourhood); it converges in O(log^2 n) rounds, and no round has more edges than
the input graph. At convergence every component is a star whose centre is its smallest node.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from pipelines.minhash import mix64

ROW_BITS = 32
LARGE_STAR, SMALL_STAR = "large_star", "small_star"


def node_ids(shard_index: int, rows: np.ndarray) -> np.ndarray:
    return (np.int64(shard_index) << np.int64(ROW_BITS)) | rows.astype(np.int64)


def shard_of(nodes: np.ndarray) -> np.ndarray:
    return nodes >> np.int64(ROW_BITS)


def row_of(nodes: np.ndarray) -> np.ndarray:
    return nodes & np.int64((1 << ROW_BITS) - 1)


def partition_of(values: np.ndarray, num_partitions: int) -> np.ndarray:
    """Partition (0 .. n-1) of each int64 node or uint64 key, spread by a hash so that runs of
    consecutive nodes (one shard's rows) land everywhere."""
    mixed = mix64(values.view(np.uint64))
    return (mixed % np.uint64(num_partitions)).astype(np.int64)


def unique_pairs(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct (a, b) rows, sorted by a then b."""
    order = np.lexsort((b, a))
    a, b = a[order], b[order]
    keep = np.ones(len(a), dtype=bool)
    keep[1:] = (a[1:] != a[:-1]) | (b[1:] != b[:-1])
    return a[keep], b[keep]


def _groups(node: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(index of the first row of each run of equal nodes, run number of each row) of sorted nodes."""
    first = np.ones(len(node), dtype=bool)
    first[1:] = node[1:] != node[:-1]
    return np.flatnonzero(first), np.cumsum(first) - 1


def bucket_edges(keys: np.ndarray, nodes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Edges (member, smallest member) of every bucket of equal band keys; distinct, member > smallest.

    Linking each member to one anchor, not to every other member, keeps a bucket of k documents at
    k - 1 edges; the components are the same.
    """
    keys, nodes = unique_pairs(keys, nodes)
    starts, group = _groups(keys)
    anchor = nodes[starts][group]  # rows are sorted by node within a key: its first is the smallest
    linked = nodes != anchor
    return unique_pairs(nodes[linked], anchor[linked])


def large_star(node: np.ndarray, neighbor: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Large-star reduce over rows (node -> neighbor) holding both directions of every edge.

    Each node u links every larger neighbour to m(u), the smallest of u and its neighbours. Returns the
    new edges (larger, smaller) and how many nodes changed anything (u had larger neighbours and m(u) < u).
    """
    node, neighbor = unique_pairs(node[node != neighbor], neighbor[node != neighbor])
    if len(node) == 0:
        return node, neighbor, 0
    starts, group = _groups(node)
    centre = node[starts]
    smallest = np.minimum(centre, neighbor[starts])
    largest = neighbor[np.r_[starts[1:], len(node)] - 1]
    changes = int(np.count_nonzero((smallest < centre) & (largest > centre)))
    emit = neighbor > node
    return neighbor[emit], smallest[group][emit], changes


def small_star(node: np.ndarray, neighbor: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Small-star reduce over rows (node -> smaller neighbour).

    Each node u links itself and its smaller neighbours to the smallest of them. Returns the new edges
    (larger, smaller) and how many nodes changed anything (had two or more smaller neighbours).
    """
    node, neighbor = unique_pairs(node, neighbor)
    if len(node) == 0:
        return node, neighbor, 0
    starts, group = _groups(node)
    smallest = neighbor[starts]
    changes = int(np.count_nonzero(np.diff(np.r_[starts, len(node)]) >= 2))
    others = neighbor != smallest[group]
    larger = np.concatenate([neighbor[others], node[starts]])
    smaller = np.concatenate([smallest[group][others], smallest])
    return larger, smaller, changes


def round_kind(round_number: int) -> str:
    """Rounds 1, 3, 5, ... are large-star, 2, 4, 6, ... small-star."""
    return LARGE_STAR if round_number % 2 == 1 else SMALL_STAR


def star_round(kind: str, node: np.ndarray, neighbor: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    return large_star(node, neighbor) if kind == LARGE_STAR else small_star(node, neighbor)


def route(larger: np.ndarray, smaller: np.ndarray, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """The map step before a `kind` round: rows (node -> neighbor), to be partitioned by node.

    Large-star needs each node's whole neighbourhood (both directions); small-star only its smaller
    neighbours (the edge keyed by its larger end).
    """
    if kind == SMALL_STAR:
        return larger, smaller
    return np.concatenate([larger, smaller]), np.concatenate([smaller, larger])


def converged(large_star_changes: int, small_star_changes: int) -> bool:
    """A large-star and the small-star after it changed nothing: every node then has either only larger
    neighbours (a centre) or exactly one, smaller, neighbour (a leaf), so each component is a star."""
    return large_star_changes == 0 and small_star_changes == 0


def stars(node: np.ndarray, neighbor: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(centre, leaf) of the converged rows routed for a large-star round: the rows node < neighbor."""
    centre = node < neighbor
    return unique_pairs(node[centre], neighbor[centre])


def survivors(cluster: np.ndarray, member: np.ndarray, priority: np.ndarray) -> np.ndarray:
    """Per row, the member of its cluster with the smallest (priority, node): the one to keep."""
    order = np.lexsort((member, priority, cluster))
    starts, group = _groups(cluster[order])
    chosen = np.empty(len(member), dtype=member.dtype)
    chosen[order] = member[order][starts][group]
    return chosen


def verified_survivors(cluster: np.ndarray, member: np.ndarray, priority: np.ndarray,
                       similar: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> np.ndarray:
    """Per row, the member kept in its place, such that every removed member is similar to its survivor.

    Connected components chain: A~B and B~C put A and C in one cluster though A and C may share little.
    So each member is checked against its cluster's survivor (`similar(members, survivors)` -> bool per
    pair); those that fail form a cluster of their own, whose survivor is checked in turn, until every
    member is settled. A member that matches no survivor is its own (kept)."""
    chosen = np.empty(len(member), dtype=member.dtype)
    pending = np.arange(len(member))
    group = cluster.astype(np.int64, copy=True)
    while len(pending):
        best = survivors(group[pending], member[pending], priority[pending])
        settled = best == member[pending]
        others = np.flatnonzero(~settled)
        if len(others):
            settled[others] = similar(member[pending][others], best[others])
        chosen[pending[settled]] = best[settled]
        pending = pending[~settled]
        # the unsettled rows of a group become a group of their own: keyed by their old survivor, a member
        # of the old group, so distinct from every other group's key
        group[pending] = -1 - best[~settled].astype(np.int64)
    return chosen


def survivor_groups(member: np.ndarray, survivor: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row, (its cluster: the smallest member with the same survivor, the size of that cluster). Without
    verification a cluster is a component and its id the component's centre; verification may split one."""
    groups, inverse, sizes = np.unique(survivor, return_inverse=True, return_counts=True)
    smallest = np.full(len(groups), np.iinfo(member.dtype).max, dtype=member.dtype)
    np.minimum.at(smallest, inverse, member)
    return smallest[inverse], sizes[inverse]
