"""Accounting of the fuzzy dedup: documents and bytes in, kept and removed, by source: its stats.json
(common/job_harness.py writes it, logs it to MLflow and prints its table) and the per-source lines of that table."""

from __future__ import annotations

import dataclasses

import pyarrow as pa

from pipelines.minhash_presets import MinHashParams


def source_counts(table: pa.Table) -> dict[str, dict[str, int]]:
    """Per source: documents and text bytes in, and how many of each were removed (`removed` column)."""
    sums = [("bytes", "sum"), ("bytes", "count"), ("removed", "sum"), ("removed_bytes", "sum")]
    grouped = table.group_by("source").aggregate(sums)
    return {
        row["source"]: {
            "documents_in": row["bytes_count"],
            "bytes_in": row["bytes_sum"],
            "documents_removed": row["removed_sum"],
            "bytes_removed": row["removed_bytes_sum"],
        }
        for row in grouped.to_pylist()
    }


def add_counts(total: dict[str, dict[str, int]], more: dict[str, dict[str, int]]) -> None:
    for source, counts in more.items():
        into = total.setdefault(source, dict.fromkeys(counts, 0))
        for name, value in counts.items():
            into[name] += value


def build_stats(
    *,
    params: MinHashParams,
    partitions: int,
    final_round: int,
    results: dict[str, list[dict]],
    seconds: dict[str, float],
) -> dict:
    """stats.json from every round's task results (`results`: signatures, buckets, components, clusters,
    write; each in task order) and the timings so far."""
    signatures, buckets, clusters, writes = (results[name] for name in ("signatures", "buckets", "clusters", "write"))
    by_source: dict[str, dict[str, int]] = {}
    for result in writes:
        add_counts(by_source, result["by_source"])
    for counts in by_source.values():
        counts["documents_kept"] = counts["documents_in"] - counts["documents_removed"]
    documents_in, documents_kept = sum(r["documents_in"] for r in writes), sum(r["documents"] for r in writes)
    bytes_in, bytes_kept = sum(r["bytes_in"] for r in writes), sum(r["bytes"] for r in writes)
    return {
        "shards": len(writes),
        "partitions": partitions,
        "minhash": dataclasses.asdict(params),
        "documents_in": documents_in,
        "documents_kept": documents_kept,
        "documents_removed": documents_in - documents_kept,
        "documents_without_shingles": sum(r["without_shingles"] for r in signatures),
        "bytes_in": bytes_in,
        "bytes_kept": bytes_kept,
        "bytes_removed": bytes_in - bytes_kept,
        "candidate_edges": sum(r["candidate_edges"] for r in buckets),
        "edges": sum(r["edges"] for r in buckets),
        "component_rounds": final_round - 1,
        "clusters": sum(r["clusters"] for r in clusters),
        "documents_in_clusters": sum(r["documents"] for r in clusters),
        "documents_unchained": sum(r["unchained"] for r in clusters),
        "by_source": dict(sorted(by_source.items())),
        "seconds": seconds,
        "peak_rss_mb": {name: max((r["peak_rss_mb"] for r in rs), default=0.0) for name, rs in results.items()},
        "tasks_resumed": sum(r["resumed"] for rs in results.values() for r in rs),
    }


def source_table(stats: dict) -> list[str]:
    """The fuzzy dedup's lines of its end-of-job table (common/job_harness.py): documents in, kept and
    removed per source, the most removed first."""
    sources = sorted(stats["by_source"].items(), key=lambda item: -item[1]["documents_removed"])
    width = max([len("source")] + [len(source) for source, _ in sources])
    lines = [f"{'source':<{width}}  {'in':>10}  {'kept':>10}  {'removed':>10}  {'bytes removed':>14}"]
    for source, counts in sources:
        lines.append(f"{source:<{width}}  {counts['documents_in']:>10,}  {counts['documents_kept']:>10,}  "
                     f"{counts['documents_removed']:>10,}  {counts['bytes_removed']:>14,}")
    return lines
