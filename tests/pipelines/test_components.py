"""Candidate edges, large-star / small-star connected components and survivors, on hand-built graphs."""

from __future__ import annotations

import numpy as np
import pytest

from pipelines import components as cc


def run_rounds(edges: list[tuple[int, int]], num_partitions: int) -> tuple[dict[int, int], int]:
    """The job's rounds in one process: {node: its component's smallest node} and the rounds it took."""
    larger = np.array([max(e) for e in edges], dtype=np.int64)
    smaller = np.array([min(e) for e in edges], dtype=np.int64)
    node, neighbor = cc.route(larger, smaller, cc.round_kind(1))
    changes: dict[int, int] = {}
    round_number = 1
    while True:
        kind = cc.round_kind(round_number)
        partition = cc.partition_of(node, num_partitions)
        outputs = [cc.star_round(kind, node[partition == p], neighbor[partition == p]) for p in range(num_partitions)]
        changes[round_number] = sum(changed for _, _, changed in outputs)
        larger = np.concatenate([a for a, _, _ in outputs])
        smaller = np.concatenate([b for _, b, _ in outputs])
        node, neighbor = cc.route(larger, smaller, cc.round_kind(round_number + 1))
        if kind == cc.SMALL_STAR and cc.converged(changes[round_number - 1], changes[round_number]):
            break
        round_number += 1
    centre, leaf = cc.stars(node, neighbor)
    labels = {int(n): int(n) for n in centre}
    labels |= dict(zip(leaf.tolist(), centre.tolist()))
    return labels, round_number


def union_find(edges: list[tuple[int, int]]) -> dict[int, int]:
    parent: dict[int, int] = {}

    def find(x: int) -> int:
        while parent.setdefault(x, x) != x:
            x = parent[x]
        return x

    for a, b in edges:
        ra, rb = find(a), find(b)
        parent[max(ra, rb)] = min(ra, rb)
    return {x: find(x) for x in parent}


def test_node_ids_keep_shard_and_row():
    nodes = cc.node_ids(3, np.array([0, 7, 2**32 - 1]))
    assert cc.shard_of(nodes).tolist() == [3, 3, 3]
    assert cc.row_of(nodes).tolist() == [0, 7, 2**32 - 1]
    assert (np.diff(nodes) > 0).all() and cc.node_ids(4, np.array([0]))[0] > nodes[-1]  # input order


def test_partitions_spread_consecutive_nodes():
    partition = cc.partition_of(cc.node_ids(0, np.arange(10_000)), 8)
    assert set(partition.tolist()) == set(range(8))
    assert np.bincount(partition).min() > 1000


def test_bucket_edges_link_members_to_the_smallest():
    keys = np.array([7, 7, 7, 9, 9, 4, 7, 9], dtype=np.uint64)
    nodes = np.array([5, 2, 9, 8, 3, 4, 5, 8], dtype=np.int64)  # (7, 5) and (9, 8) twice: another band
    larger, smaller = cc.bucket_edges(keys, nodes)
    assert list(zip(larger.tolist(), smaller.tolist())) == [(5, 2), (8, 3), (9, 2)]


def test_large_star_links_larger_neighbours_to_the_local_minimum():
    # The path 1 - 2 - 3, both directions: node 2 links 3 to 1; node 1 links 2 to itself.
    node, neighbor = cc.route(np.array([2, 3]), np.array([1, 2]), cc.LARGE_STAR)
    larger, smaller, changes = cc.large_star(node, neighbor)
    assert sorted(zip(larger.tolist(), smaller.tolist())) == [(2, 1), (3, 1)]
    assert changes == 1


def test_small_star_links_smaller_neighbours_to_their_minimum():
    # Node 5 has smaller neighbours 1 and 3: all of 5, 3 link to 1. Node 4 has one (2): unchanged.
    larger, smaller, changes = cc.small_star(np.array([5, 5, 4]), np.array([3, 1, 2]))
    assert sorted(zip(larger.tolist(), smaller.tolist())) == [(3, 1), (4, 2), (5, 1)]
    assert changes == 1


@pytest.mark.parametrize("num_partitions", [1, 3, 8])
def test_components_of_a_hand_built_graph(num_partitions):
    edges = [(10, 11), (11, 12), (12, 10), (30, 31), (20, 21), (21, 22), (22, 23), (23, 24), (31, 5)]
    labels, _ = run_rounds(edges, num_partitions)
    assert labels == {10: 10, 11: 10, 12: 10, 5: 5, 30: 5, 31: 5, 20: 20, 21: 20, 22: 20, 23: 20, 24: 20}


@pytest.mark.parametrize("num_partitions", [1, 4])
def test_a_long_shuffled_chain_needs_several_rounds(num_partitions):
    order = np.random.default_rng(0).permutation(200).tolist()
    edges = list(zip(order[1:], order[:-1]))
    labels, rounds = run_rounds(edges, num_partitions)
    assert labels == dict.fromkeys(range(200), 0)
    assert rounds > 4


def test_random_graphs_agree_with_union_find():
    rng = np.random.default_rng(1)
    for _ in range(20):
        n = int(rng.integers(2, 400))
        edges = [(int(a), int(b)) for a, b in rng.integers(0, n, size=(int(rng.integers(1, 500)), 2)) if a != b]
        if edges:
            labels, _ = run_rounds(edges, int(rng.integers(1, 6)))
            assert labels == union_find(edges)


def test_survivor_is_the_smallest_priority_then_the_first_node():
    cluster = np.array([1, 1, 1, 50, 50])
    member = np.array([1, 2, 3, 50, 60])
    assert cc.survivors(cluster, member, np.zeros(5, dtype=np.int64)).tolist() == [1, 1, 1, 50, 50]
    longest = np.array([-10, -30, -30, -5, -6])  # "longest": minus the text length
    assert cc.survivors(cluster, member, longest).tolist() == [2, 2, 2, 60, 60]
    shuffled = np.array([4, 0, 3, 1, 2])
    assert cc.survivors(cluster[shuffled], member[shuffled], longest[shuffled]).tolist() == [60, 2, 60, 2, 2]


def test_verified_survivors_split_a_chain_where_members_are_unlike_its_survivor():
    # one component 1-2-3-4 (a chain), and 50-60; 1~2 and 3~4 are alike, nothing else is
    cluster = np.array([1, 1, 1, 1, 50, 50])
    member = np.array([1, 2, 3, 4, 50, 60])
    alike = {(2, 1), (4, 3), (60, 50)}

    def similar(members, survivors):
        return np.array([(int(m), int(s)) in alike for m, s in zip(members, survivors)])

    priority = np.zeros(6, dtype=np.int64)
    assert cc.verified_survivors(cluster, member, priority, similar).tolist() == [1, 1, 3, 3, 50, 50]
    # everything alike: the plain survivors
    assert cc.verified_survivors(cluster, member, priority, lambda m, s: np.ones(len(m), bool)).tolist() == \
        cc.survivors(cluster, member, priority).tolist()
    # nothing alike: every member is kept
    assert cc.verified_survivors(cluster, member, priority, lambda m, s: np.zeros(len(m), bool)).tolist() == member.tolist()

    # the clusters as deduplicated: 1-2 and 3-4 (ids: their smallest member), each of two
    clusters, sizes = cc.survivor_groups(member, np.array([1, 1, 3, 3, 50, 50]))
    assert clusters.tolist() == [1, 1, 3, 3, 50, 50] and sizes.tolist() == [2, 2, 2, 2, 2, 2]
    clusters, sizes = cc.survivor_groups(member, member)  # nothing removed: clusters of one
    assert sizes.tolist() == [1] * 6
