"""Conversations -> SFT pairs in token files: `python -m pipelines.sft_shards [key=value ...]`.

SFT at LLaDA's scale (4.5M pairs) cannot hold every pair in every rank's memory as Python lists: this job
tokenizes them once, and the trainer streams them with the pretraining loader (trainer/data/). One task
per conversation file (a Ray task unless runner=local) streams it (tokenizer/conversations.py: JSON lines
or Parquet, messages or prompt/response; every assistant turn a pair, or one per dialogue; bad records
counted and named) and writes every pairs_per_file pairs one
token file (formats/token_shards.py): rows of prompt + response right-padded with EOS to max_seq_len,
with their prompt_length and length. The manifest, written last (common/job_harness.py), holds the
counts and the tokenizer's sha256. The same inputs give the same bytes.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

from common.cli import run_job
from common.config import ConfigError
from common.files import sha256_of
from common.job_harness import Built, run_folder_job
from common.paths import require_paths
from common.runners import make_runner
from formats import token_shards as token_format
from pipelines.sft_shards_config import SFTShardsConfig
from tokenizer.conversations import iter_pairs, new_stats
from tokenizer.encode import Tokenizer

LOG = "[sft_shards]"
KIND = "sft"
"""The manifest's `kind` for SFT pairs (pretraining folders have none)."""
COUNTS = ("conversations", "pairs", "bad_lines", "truncated", "too_long")


def _write(path: Path, rows: np.ndarray, prompt_lengths: list[int], lengths: list[int], source: str, provenance: dict) -> dict:
    """One token file of pairs; returns its manifest entry."""
    n = len(prompt_lengths)
    columns = {"prompt_length": np.asarray(prompt_lengths, np.int32), "length": np.asarray(lengths, np.int32)}
    metadata = {**provenance, "documents": "0", "tokens_dropped": "0"}
    token_format.write_token_file(path, rows[:n], metadata, [(source, n)] if n else [], columns)
    return {"file": path.name, "source": source, "documents": 0, "sequences": n, "tokens_dropped": 0,
            "sha256": sha256_of(path), "bytes": path.stat().st_size, "sequences_by_source": {source: n} if n else {}}


def tokenize_conversations(path: str, source: str, index: int, output_dir: str, tokenizer_dir: str, max_seq_len: int,
                           pairs_per_file: int, turns: str = "all", seed: int = 0) -> dict:
    """Pairs of one conversation file into output_dir/tokens-{index:05d}-PPPPP.arrow; returns the files'
    manifest entries and the file's counts."""
    tokenizer = Tokenizer.load(tokenizer_dir)
    provenance = {"source": source, "source_sha256": sha256_of(path), "tokenizer_sha256": tokenizer.sha256,
                  "seq_len": str(max_seq_len), "kind": KIND}
    stats = new_stats()
    rows = np.full((pairs_per_file, max_seq_len), tokenizer.eos_id, dtype=np.uint32)
    prompt_lengths: list[int] = []
    lengths: list[int] = []
    entries = []

    def flush() -> None:
        target = Path(output_dir) / token_format.token_file_name(index, len(entries))
        entries.append(_write(target, rows, prompt_lengths, lengths, source, provenance))
        rows.fill(tokenizer.eos_id)
        prompt_lengths.clear()
        lengths.clear()

    for prompt, response in iter_pairs(path, tokenizer, max_seq_len, stats, turns, seed):
        row = len(prompt_lengths)
        rows[row, : len(prompt)] = prompt
        rows[row, len(prompt) : len(prompt) + len(response)] = response
        prompt_lengths.append(len(prompt))
        lengths.append(len(prompt) + len(response))
        if len(prompt_lengths) == pairs_per_file:
            flush()
    if prompt_lengths or not entries:
        flush()
    return {"entries": entries, "stats": stats}


def build(config: SFTShardsConfig, tokenizer: Tokenizer) -> Built:
    """Write the token files, one task per conversation file, and remove those none makes any more; returns
    the stats and the manifest's writer."""
    output = Path(config.output_dir)
    started = time.perf_counter()
    output_dir, tokenizer_dir = str(output.resolve()), str(Path(config.tokenizer_dir).resolve())
    calls = [(str(Path(path).resolve()), str(path), i, output_dir, tokenizer_dir, config.max_seq_len, config.pairs_per_file,
              config.turns, config.seed) for i, path in enumerate(config.conversations)]
    results: dict[int, dict] = {}
    for index, result in make_runner(config.runner).map_unordered(tokenize_conversations, calls):
        results[index] = result
        counts = result["stats"]
        print(f"{LOG} [{len(results)}/{len(calls)}] {config.conversations[index]}: {counts['conversations']} conversations "
              f"-> {counts['pairs']} pairs in {len(result['entries'])} files ({counts['bad_lines']} bad lines, "
              f"{counts['truncated']} truncated, {counts['too_long']} too long) at {time.perf_counter() - started:.1f} s", flush=True)
        for example in counts["examples"]:
            print(f"{LOG} skipped {example}", flush=True)
    entries = [entry for index in sorted(results) for entry in results[index]["entries"]]
    for stale in sorted(set(output.glob(token_format.FILE_GLOB)) - {output / e["file"] for e in entries}):
        print(f"{LOG} removing {stale}, which no conversation file makes any more", flush=True)
        stale.unlink()
    totals = {key: sum(r["stats"][key] for r in results.values()) for key in COUNTS}
    if not totals["pairs"]:
        raise ConfigError(f"no usable conversations in {', '.join(config.conversations)} ({totals['bad_lines']} bad lines)")
    manifest = token_format.folder_manifest(entries, seq_len=config.max_seq_len, tokenizer_sha256=tokenizer.sha256,
                                            special_tokens={**tokenizer.special_tokens, "vocab_size": tokenizer.vocab_size})
    manifest |= {"kind": KIND, "columns": list(token_format.SFT_COLUMNS), "counts": totals,
                 "padding": "each row is prompt + response (ending in EOS) right-padded with EOS to seq_len"}
    stats = {**totals, "files": len(entries), "max_seq_len": config.max_seq_len,
             "seconds": {"tokenize": round(time.perf_counter() - started, 3)}}
    return Built(stats, lambda: token_format.write_manifest(output, manifest))


def main(config: SFTShardsConfig) -> dict:
    """Write the token files, config.json, stats.json and the manifest; returns the stats."""
    require_paths(config.conversations)
    tokenizer = Tokenizer.load(config.tokenizer_dir)
    return run_folder_job(config, "sft_shards", lambda: build(config, tokenizer), settings=(f"max_seq_len {config.max_seq_len}",))


if __name__ == "__main__":
    sys.exit(run_job(SFTShardsConfig, main, description=__doc__.splitlines()[0]))
