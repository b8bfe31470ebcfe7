"""Documents -> fixed-length token sequences: `python -m pipelines.token_shards [key=value ...]`.

One task per document shard (a Ray task unless runner=local) encodes its texts batch by batch, packs
them (EOS after every document) into rows of seq_len ids and writes them as tokens-NNNNN.arrow, the
n-th shard's file (formats/token_shards.py), under a temporary name that is then renamed. The last, partial row of each shard is dropped and
counted as tokens_dropped. Each file records its source shard's sha256, the tokenizer's sha256 and
seq_len in its schema metadata: a rerun keeps a file whose record matches and redoes the others.
manifest.json is written last. The same inputs give the same bytes.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from common.cli import run_job
from common.config import save_config, to_dict
from common.files import sha256_of, write_json
from common.runners import make_runner
from common.tracking import mlflow_run
from formats import token_shards as token_format
from formats.corpus import document_shards
from pipelines.packing import pack_sequences
from pipelines.token_config import TokenShardsConfig
from tokenizer.encode import Tokenizer

METRICS = ("sequences", "tokens", "tokens_dropped", "documents", "seconds", "tokens_per_second")


def _up_to_date(path: Path, provenance: dict[str, str]) -> dict | None:
    """The counts of an existing token file made from the same source, tokenizer and seq_len (else None)."""
    found = token_format.read_token_file_metadata(path)
    if found is None:
        return None
    metadata, sequences = found
    if any(metadata.get(key) != value for key, value in provenance.items()):
        return None
    return {"sequences": sequences, "documents": int(metadata["documents"]), "tokens_dropped": int(metadata["tokens_dropped"])}


def tokenize_shard(shard: str, index: int, output_dir: str, tokenizer_dir: str, seq_len: int, batch_size: int) -> dict:
    """Encode and pack one document shard into output_dir/tokens-{index:05d}.arrow; returns its counts."""
    source, target = Path(shard), Path(output_dir) / token_format.token_file_name(index)
    tokenizer = Tokenizer.load(tokenizer_dir)
    provenance = {
        "source": source.name,
        "source_sha256": sha256_of(source),
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
        token_format.write_token_file(target, rows, metadata)
    return {"file": target.name, "source": source.name, **counts, "sha256": sha256_of(target), "skipped": skipped}


def main(config: TokenShardsConfig) -> dict:
    """Write the token files, manifest.json, config.json and report.json; returns the report (counts, timings)."""
    shards = document_shards(config.corpus_dir)
    tokenizer = Tokenizer.load(config.tokenizer_dir)
    output = Path(config.output_dir)
    output.mkdir(parents=True, exist_ok=True)
    runner = make_runner(config.runner)
    started = time.perf_counter()
    # Absolute paths: a worker's current folder need not be the driver's.
    output_dir, tokenizer_dir = str(output.resolve()), str(Path(config.tokenizer_dir).resolve())
    calls = [
        (str(shard.resolve()), i, output_dir, tokenizer_dir, config.seq_len, config.batch_size) for i, shard in enumerate(shards)
    ]
    results = []
    for index, result in runner.map_unordered(tokenize_shard, calls):
        results.append(result)
        print(
            f"token shards: [{len(results)}/{len(shards)}] {shards[index].name} -> {result['file']}: "
            f"{result['sequences']} sequences from {result['documents']} documents"
            f"{' (up to date, kept)' if result['skipped'] else ''} at {time.perf_counter() - started:.1f} s",
            flush=True,
        )
    results.sort(key=lambda r: r["file"])
    for stale in sorted(set(output.glob(token_format.FILE_GLOB)) - {output / r["file"] for r in results}):
        print(f"token shards: removing {stale}, which no document shard makes any more", flush=True)
        stale.unlink()

    sequences = sum(r["sequences"] for r in results)
    manifest = {
        "seq_len": config.seq_len,
        "sequences": sequences,
        "tokens": sequences * config.seq_len,
        "tokens_dropped": sum(r["tokens_dropped"] for r in results),
        "dropped": token_format.DROPPED,
        "documents": sum(r["documents"] for r in results),
        "format": token_format.FORMAT,
        "tokenizer_sha256": tokenizer.sha256,
        "special_tokens": {**tokenizer.special_tokens, "vocab_size": tokenizer.vocab_size},
        "shards": [{key: r[key] for key in token_format.SHARD_KEYS} for r in results],
    }
    token_format.write_manifest(output, manifest)
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
    write_json(output / "report.json", report)
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
