"""Documents -> fixed-length token sequences: `python -m pipelines.token_shards [key=value ...]`.

One Ray task per document shard encodes its texts batch by batch, packs them (EOS after every
document) into rows of seq_len ids and writes them as tokens-NNNNN.arrow, the n-th shard's file,
under a temporary name that is then renamed. The last, partial row of each shard is dropped and
counted as tokens_dropped. Each file records its source shard's sha256, the tokenizer's sha256 and
seq_len in its schema metadata: a rerun keeps a file whose record matches and redoes the others.
manifest.json is written last. The same inputs give the same bytes.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.ipc
import pyarrow.parquet as pq

from common.cli import run_job
from common.config import save_config, to_dict
from common.files import atomic_path, write_atomically
from common.ray_runtime import init_ray
from common.tracking import mlflow_run
from pipelines.packing import pack_sequences, to_arrow_table
from pipelines.readers.documents import document_shards
from pipelines.token_config import TokenShardsConfig
from tokenizer.encode import Tokenizer

FORMAT = "Arrow IPC file, one column tokens: fixed_size_list<uint32>[seq_len], one record batch"
DROPPED = (
    "the last partial sequence (fewer than seq_len tokens) of each document shard is dropped; "
    "tokens_dropped counts its tokens"
)
SHARD_KEYS = ("file", "source", "documents", "sequences", "tokens_dropped", "sha256")
METRICS = ("sequences", "tokens", "tokens_dropped", "documents", "seconds", "tokens_per_second")


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _up_to_date(path: Path, provenance: dict[str, str]) -> dict | None:
    """The counts of an existing token file made from the same source, tokenizer and seq_len (else None)."""
    if not path.is_file():
        return None
    try:
        reader = pa.ipc.open_file(pa.memory_map(str(path), "r"))
    except (pa.ArrowInvalid, OSError):
        return None
    metadata = {k.decode(): v.decode() for k, v in (reader.schema.metadata or {}).items()}
    if any(metadata.get(key) != value for key, value in provenance.items()):
        return None
    sequences = sum(reader.get_batch(i).num_rows for i in range(reader.num_record_batches))
    return {
        "sequences": sequences,
        "documents": int(metadata["documents"]),
        "tokens_dropped": int(metadata["tokens_dropped"]),
    }


def tokenize_shard(shard: str, index: int, output_dir: str, tokenizer_dir: str, seq_len: int, batch_size: int) -> dict:
    """Encode and pack one document shard into output_dir/tokens-{index:05d}.arrow; returns its counts."""
    source, target = Path(shard), Path(output_dir) / f"tokens-{index:05d}.arrow"
    tokenizer = Tokenizer.load(tokenizer_dir)
    provenance = {
        "source": source.name,
        "source_sha256": file_sha256(source),
        "tokenizer_sha256": tokenizer.sha256,
        "seq_len": str(seq_len),
    }
    counts = _up_to_date(target, provenance)
    skipped = counts is not None
    if not skipped:
        parts, carry, documents = [], [], 0
        for batch in pq.ParquetFile(source).iter_batches(batch_size=batch_size, columns=["text"]):
            texts = [text or "" for text in batch.column(0).to_pylist()]
            documents += len(texts)
            # One thread: Ray runs one task per core.
            ids = tokenizer.encode_batch(texts, num_threads=1)
            rows, carry = pack_sequences(ids, seq_len, tokenizer.eos_id, carry=carry)
            parts.append(rows)
        rows = np.concatenate(parts) if parts else np.empty((0, seq_len), dtype=np.uint32)
        counts = {"sequences": len(rows), "documents": documents, "tokens_dropped": len(carry)}
        metadata = {**provenance, "documents": str(documents), "tokens_dropped": str(len(carry))}
        table = to_arrow_table(rows).replace_schema_metadata(metadata)
        with atomic_path(target) as tmp, pa.OSFile(str(tmp), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
            writer.write_table(table)
    return {"file": target.name, "source": source.name, **counts, "sha256": file_sha256(target), "skipped": skipped}


def main(config: TokenShardsConfig) -> dict:
    """Write the token files, manifest.json, config.json and report.json; returns the report (counts, timings)."""
    shards = document_shards(config.corpus_dir)
    tokenizer = Tokenizer.load(config.tokenizer_dir)
    output = Path(config.output_dir)
    output.mkdir(parents=True, exist_ok=True)
    ray = init_ray()
    started = time.perf_counter()
    task = ray.remote(num_cpus=1)(tokenize_shard)
    # Absolute paths: a worker's current folder need not be the driver's.
    output_dir, tokenizer_dir = str(output.resolve()), str(Path(config.tokenizer_dir).resolve())
    pending = {
        task.remote(str(shard.resolve()), i, output_dir, tokenizer_dir, config.seq_len, config.batch_size): shard
        for i, shard in enumerate(shards)
    }
    results = []
    while pending:
        (ref,), _ = ray.wait(list(pending), num_returns=1)
        shard = pending.pop(ref)
        result = ray.get(ref)
        results.append(result)
        print(
            f"token shards: [{len(results)}/{len(shards)}] {shard.name} -> {result['file']}: "
            f"{result['sequences']} sequences from {result['documents']} documents"
            f"{' (up to date, kept)' if result['skipped'] else ''} at {time.perf_counter() - started:.1f} s",
            flush=True,
        )
    results.sort(key=lambda r: r["file"])
    for stale in sorted(set(output.glob("tokens-*.arrow")) - {output / r["file"] for r in results}):
        print(f"token shards: removing {stale}, which no document shard makes any more", flush=True)
        stale.unlink()

    sequences = sum(r["sequences"] for r in results)
    manifest = {
        "seq_len": config.seq_len,
        "sequences": sequences,
        "tokens": sequences * config.seq_len,
        "tokens_dropped": sum(r["tokens_dropped"] for r in results),
        "dropped": DROPPED,
        "documents": sum(r["documents"] for r in results),
        "format": FORMAT,
        "tokenizer_sha256": tokenizer.sha256,
        "special_tokens": {**tokenizer.special_tokens, "vocab_size": tokenizer.vocab_size},
        "shards": [{key: r[key] for key in SHARD_KEYS} for r in results],
    }
    write_atomically(output / "manifest.json", (json.dumps(manifest, indent=2) + "\n").encode())
    save_config(config, output / "config.json")
    seconds = time.perf_counter() - started
    report = {
        **{key: manifest[key] for key in ("seq_len", "sequences", "tokens", "tokens_dropped", "documents")},
        "shards": len(results),
        "shards_kept": sum(r["skipped"] for r in results),
        "seconds": round(seconds, 3),
        "tokens_per_second": round((manifest["tokens"] + manifest["tokens_dropped"]) / max(seconds, 1e-9)),
        "output_dir": str(output),
    }
    write_atomically(output / "report.json", (json.dumps(report, indent=2) + "\n").encode())
    print(
        f"token shards: {report['sequences']} sequences of {config.seq_len} ({report['tokens']} tokens, "
        f"{report['tokens_dropped']} dropped) from {report['documents']} documents in {seconds:.1f} s -> {output}",
        flush=True,
    )
    if config.log_to_mlflow:
        with mlflow_run(config.mlflow_experiment, "token_shards", params=to_dict(config)) as run:
            import mlflow

            mlflow.log_metrics({key: report[key] for key in METRICS})
            for name in ("manifest.json", "report.json"):
                mlflow.log_artifact(str(output / name))
            report["mlflow_run_id"] = run.info.run_id
    return report


if __name__ == "__main__":
    sys.exit(run_job(TokenShardsConfig, main, description=__doc__.splitlines()[0]))
