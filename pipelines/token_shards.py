"""Documents -> fixed-length token sequences: `python -m pipelines.token_shards [key=value ...]`.

One task per document shard (a Ray task unless runner=local) encodes its texts batch by batch, packs
them (EOS after every document) into rows of seq_len ids and writes them as tokens-NNNNN.arrow, the
n-th shard's file (formats/token_shards.py), under a temporary name that is then renamed. Each source
(the input a document came from) is packed on its own and its rows are grouped in the file, so a row
holds one source; the last, partial row of each source in a shard is dropped and counted as
tokens_dropped. Documents whose id hashes below validation_fraction go to validation/tokens-NNNNN.arrow
instead (formats/token_shards.py `held_out`). Each file records its source shard's sha256, the
tokenizer's sha256, seq_len and validation_fraction in its schema metadata: a rerun keeps a shard whose
files match and redoes the others. The manifests (validation/ first) are written last, after config.json
and stats.json (common/job_harness.py). The same inputs give the same bytes.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from common.cli import run_job
from common.config import ConfigError
from common.files import sha256_of
from common.job_harness import Built, run_folder_job
from common.runners import make_runner
from formats import token_shards as token_format
from formats.corpus import check_sha256, document_shards
from pipelines.packing import pack_sequences
from pipelines.token_config import TokenShardsConfig
from tokenizer.encode import Tokenizer

LOG = "[token_shards]"
SPLITS = ("train", "validation")


class _SplitPacker:
    """The rows of one split of a document shard, each source packed on its own (carry kept per source)."""

    def __init__(self, seq_len: int, eos_id: int) -> None:
        self.seq_len, self.eos_id = seq_len, eos_id
        self.parts: dict[str, list[np.ndarray]] = {}
        self.carry: dict[str, list[int]] = {}
        self.documents = 0

    def add(self, source: str, docs_ids: list[list[int]]) -> None:
        rows, self.carry[source] = pack_sequences(docs_ids, self.seq_len, self.eos_id, carry=self.carry.get(source, ()))
        self.parts.setdefault(source, []).append(rows)
        self.documents += len(docs_ids)

    def write(self, path: Path, provenance: dict[str, str]) -> None:
        """The rows, grouped by source in name order (the order the format promises), as `path`."""
        blocks = {name: np.concatenate(self.parts[name]) for name in sorted(self.parts)}
        runs = [(name, len(rows)) for name, rows in blocks.items() if len(rows)]
        rows = np.concatenate([blocks[name] for name, _ in runs]) if runs else np.empty((0, self.seq_len), np.uint32)
        dropped = sum(len(carry) for carry in self.carry.values())
        metadata = {**provenance, "documents": str(self.documents), "tokens_dropped": str(dropped)}
        path.parent.mkdir(parents=True, exist_ok=True)
        token_format.write_token_file(path, rows, metadata, runs)


def _entry(path: Path, provenance: dict[str, str]) -> dict | None:
    """The manifest entry of an existing token file made from the same inputs and settings (else None)."""
    found = token_format.read_token_file_info(path)
    if found is None or any(found.metadata.get(key) != value for key, value in provenance.items()):
        return None
    return {
        "file": path.name, "source": provenance["source"], "documents": int(found.metadata["documents"]),
        "sequences": found.sequences, "tokens_dropped": int(found.metadata["tokens_dropped"]),
        "sha256": sha256_of(path), "bytes": path.stat().st_size, "sequences_by_source": found.sequences_by_source,
    }


def tokenize_shard(shard: str, index: int, output_dir: str, tokenizer_dir: str, seq_len: int, batch_size: int,
                   validation_fraction: float) -> dict:
    """Encode and pack one document shard into output_dir/tokens-{index:05d}.arrow and, when
    validation_fraction > 0, its held-out documents into output_dir/validation/; returns their manifest entries."""
    source = Path(shard)
    name = token_format.token_file_name(index)
    targets = {"train": Path(output_dir) / name, "validation": Path(output_dir) / token_format.VALIDATION_DIR / name}
    splits = SPLITS if validation_fraction > 0 else SPLITS[:1]
    tokenizer = Tokenizer.load(tokenizer_dir)
    provenance = {
        "source": source.name,
        "source_sha256": sha256_of(source),
        "tokenizer_sha256": tokenizer.sha256,
        "seq_len": str(seq_len),
        "validation_fraction": repr(validation_fraction),
    }
    check_sha256(source, provenance["source_sha256"])  # hashed for the provenance anyway: the manifest's shard?
    entries = {split: _entry(targets[split], {**provenance, "split": split}) for split in splits}
    skipped = all(entries.values())
    if not skipped:
        packers = {split: _SplitPacker(seq_len, tokenizer.eos_id) for split in splits}
        for batch in pq.ParquetFile(source).iter_batches(batch_size=batch_size, columns=["id", "text", "source"]):
            ids, texts, sources = (batch.column(key).to_pylist() for key in ("id", "text", "source"))
            # One thread: Ray runs one task per core.
            encoded = tokenizer.encode_batch([text or "" for text in texts], num_threads=1)
            groups: dict[tuple[str, str], list[list[int]]] = {}
            for doc_id, doc_source, doc_ids in zip(ids, sources, encoded):
                split = "validation" if token_format.held_out(doc_id or "", validation_fraction) else "train"
                groups.setdefault((split, doc_source or ""), []).append(doc_ids)
            for (split, doc_source), docs_ids in groups.items():
                packers[split].add(doc_source, docs_ids)
        for split, packer in packers.items():
            packer.write(targets[split], {**provenance, "split": split})
        entries = {split: _entry(targets[split], {**provenance, "split": split}) for split in splits}
    import resource

    return {**entries, "skipped": skipped, "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}


def build(config: TokenShardsConfig, shards: list[Path], tokenizer: Tokenizer) -> Built:
    """Write the token files, one task per document shard, and remove those no shard makes any more;
    returns the stats and the writer of the manifests (validation/'s first)."""
    output = Path(config.output_dir)
    runner = make_runner(config.runner)
    started = time.perf_counter()
    # Absolute paths: a worker's current folder need not be the driver's.
    output_dir, tokenizer_dir = str(output.resolve()), str(Path(config.tokenizer_dir).resolve())
    calls = [
        (str(shard.resolve()), i, output_dir, tokenizer_dir, config.seq_len, config.batch_size, config.validation_fraction)
        for i, shard in enumerate(shards)
    ]
    results = []
    for index, result in runner.map_unordered(tokenize_shard, calls):
        results.append(result)
        train, held = result["train"], result.get("validation")
        validation = f" (+{held['sequences']} validation)" if held else ""
        print(
            f"{LOG} [{len(results)}/{len(shards)}] {shards[index].name} -> {train['file']}: "
            f"{train['sequences']} sequences from {train['documents']} documents{validation}"
            f"{' (up to date, kept)' if result['skipped'] else ''} at {time.perf_counter() - started:.1f} s",
            flush=True,
        )
    seconds = time.perf_counter() - started
    results.sort(key=lambda r: r["train"]["file"])
    splits = SPLITS if config.validation_fraction > 0 else SPLITS[:1]
    folders = {"train": output, "validation": output / token_format.VALIDATION_DIR}
    for split, folder in folders.items():
        keep = {folder / r[split]["file"] for r in results} if split in splits else set()
        for stale in sorted(set(folder.glob(token_format.FILE_GLOB)) - keep):
            print(f"{LOG} removing {stale}, which no document shard makes any more", flush=True)
            stale.unlink()
    if "validation" not in splits and folders["validation"].is_dir():
        (folders["validation"] / token_format.MANIFEST).unlink(missing_ok=True)
        if not any(folders["validation"].iterdir()):
            folders["validation"].rmdir()

    manifests = {
        split: token_format.folder_manifest(
            [r[split] for r in results], seq_len=config.seq_len, tokenizer_sha256=tokenizer.sha256,
            special_tokens={**tokenizer.special_tokens, "vocab_size": tokenizer.vocab_size},
        )
        for split in splits
    }
    manifest = manifests["train"]
    if "validation" in manifests:
        manifest["validation"] = {
            "dir": token_format.VALIDATION_DIR, "fraction": config.validation_fraction,
            **{key: manifests["validation"][key] for key in ("documents", "sequences")},
        }

    def write_manifests() -> None:
        if "validation" in manifests:
            token_format.write_manifest(folders["validation"], manifests["validation"])
        token_format.write_manifest(output, manifest)

    dropped = sum(m["tokens_dropped"] for m in manifests.values())
    stats = {
        **{key: manifest[key] for key in ("seq_len", "sequences", "tokens", "tokens_dropped", "documents")},
        "validation_sequences": manifest.get("validation", {}).get("sequences", 0),
        "validation_documents": manifest.get("validation", {}).get("documents", 0),
        "shards": len(results),
        "shards_kept": sum(r["skipped"] for r in results),
        "tokens_per_second": round((sum(m["tokens"] for m in manifests.values()) + dropped) / max(seconds, 1e-9)),
        "seconds": {"tokenize": round(seconds, 3)},
        "peak_rss_mb": {"tokenize": max((r["peak_rss_mb"] for r in results), default=0.0)},  # of a worker, over its tasks so far
    }
    return Built(stats, write_manifests)


def main(config: TokenShardsConfig) -> dict:
    """Write the token files, config.json, stats.json and the manifests; returns the stats."""
    shards = document_shards(config.corpus_dir)
    for shard in shards:
        missing = {"id", "source"} - set(pq.read_schema(shard).names)
        if missing:
            raise ConfigError(f"{shard} has no {', '.join(sorted(missing))} column; expected the corpus build's "
                              "documents (id, text, source)")
    tokenizer = Tokenizer.load(config.tokenizer_dir)
    return run_folder_job(config, "token_shards", lambda: build(config, shards, tokenizer),
                          settings=(f"seq_len {config.seq_len}",))


if __name__ == "__main__":
    sys.exit(run_job(TokenShardsConfig, main, description=__doc__.splitlines()[0]))
