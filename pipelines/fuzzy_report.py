"""Accounting of the fuzzy dedup: documents and bytes in, kept and removed, by source; and the report
made of it: stats.json, the summary printed at the end, the MLflow metrics."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pyarrow as pa

from common.job_stats import flat_metrics
from pipelines.minhash_presets import MinHashParams

COUNTED = (
    "documents_in", "documents_kept", "documents_removed", "documents_without_shingles", "bytes_in",
    "bytes_kept", "bytes_removed", "candidate_edges", "edges", "clusters", "documents_in_clusters",
    "component_rounds", "partitions", "tasks_resumed",
)
"""The stats logged as MLflow metrics, besides the timings and peak RSS."""


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


def print_summary(stats: dict, log: str) -> None:
    rows = [
        ("documents in", stats["documents_in"]),
        ("kept", stats["documents_kept"]),
        ("removed", stats["documents_removed"]),
        ("without shingles (kept)", stats["documents_without_shingles"]),
        ("bytes in", stats["bytes_in"]),
        ("bytes removed", stats["bytes_removed"]),
        ("candidate edges", stats["candidate_edges"]),
        ("edges after verification", stats["edges"]),
        ("clusters", stats["clusters"]),
        ("documents in clusters", stats["documents_in_clusters"]),
        ("kept, unlike their survivor", stats["documents_unchained"]),
        ("component rounds", stats["component_rounds"]),
        ("partitions", stats["partitions"]),
        ("tasks resumed", stats["tasks_resumed"]),
    ]
    width = max(len(name) for name, _ in rows)
    print(f"{log} done in {stats['seconds']['total']:.1f}s")
    for name, value in rows:
        print(f"  {name:<{width}}  {value:>14,}")
    sources = sorted(stats["by_source"].items(), key=lambda item: -item[1]["documents_removed"])
    source_width = max([len("source")] + [len(source) for source, _ in sources])
    print(f"  {'source':<{source_width}}  {'in':>10}  {'kept':>10}  {'removed':>10}  {'bytes removed':>14}")
    for source, counts in sources:
        print(
            f"  {source:<{source_width}}  {counts['documents_in']:>10,}  {counts['documents_kept']:>10,}  "
            f"{counts['documents_removed']:>10,}  {counts['bytes_removed']:>14,}"
        )
    print("  " + ", ".join(f"{name} {value:.1f}s" for name, value in stats["seconds"].items()))
    print("  peak RSS per worker: " + ", ".join(f"{name} {mb:.0f} MB" for name, mb in stats["peak_rss_mb"].items()))


def log_to_mlflow(stats: dict, output_dir: Path) -> None:
    """Counts, timings and peak RSS as metrics of the active MLflow run; manifest.json and stats.json as artifacts."""
    import mlflow

    metrics = {name: stats[name] for name in COUNTED}
    metrics |= flat_metrics({"seconds": stats["seconds"], "peak_rss_mb": stats["peak_rss_mb"]})
    mlflow.log_metrics(metrics)
    mlflow.log_artifact(str(output_dir / "manifest.json"))
    mlflow.log_artifact(str(output_dir / "stats.json"))
