"""The streaming loader (trainer/data/): sequences/s and memory for 1, 100 and 1,000 shards of the same
data, and the cost of restoring a position far into a run.

    python bench/loader_speed.py [--sequences 100000] [--seq-len 1024] [--steps 300] [--global-batch 256]
    python bench/loader_speed.py --sft --sequences 4500000 --seq-len 64   # LLaDA's 4.5M SFT pairs, short rows

With --sft the rows are SFT pairs (pipelines.sft_shards' layout: prompt_length and length columns beside
the tokens), read with those columns as trainer.sft does.

Each case runs in a fresh process, so its peak RSS is its own. RSS counts the pages of the mapped files a
process touched (file MB: page cache, shared and reclaimable, and bounded by the files kept mapped,
--max-open-files); anonymous memory (anon MB) is what the process allocates.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from formats.token_shards import SFT_COLUMNS
from tests.formats import write_token_folder
from trainer.data import SequenceLoader

SHARD_COUNTS = (1, 100, 1000)


def write_folder(folder: Path, shards: int, sequences: int, seq_len: int, sft: bool) -> None:
    """`sequences` random rows of `seq_len` ids, cut into `shards` files of one source each (with --sft,
    random prompt lengths and lengths beside them)."""
    rng = np.random.default_rng(0)
    bounds = np.linspace(0, sequences, shards + 1).astype(int)
    files = [{"web": rng.integers(0, 50_000, (hi - lo, seq_len), dtype=np.uint32)} for lo, hi in zip(bounds, bounds[1:])]
    columns = None
    if sft:
        lengths = [rng.integers(2, seq_len + 1, hi - lo, dtype=np.int32) for lo, hi in zip(bounds, bounds[1:])]
        columns = [{"prompt_length": length // 2, "length": length} for length in lengths]
    write_token_folder(folder, files, hash_files=False, columns=columns)


def _status_mb(field: str) -> float:
    """A memory figure of this process from /proc/self/status (ru_maxrss would keep the parent's peak across exec)."""
    status = Path("/proc/self/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith(field + ":"))) / 1024


def measure(folder: str, steps: int, global_batch: int, micro_batch: int, max_open_files: int, sft: bool) -> dict:
    """One case, in this process: open, stream `steps` global batches, restore a far position."""
    started = time.perf_counter()
    columns = SFT_COLUMNS if sft else ()
    loader = SequenceLoader(folder, global_batch_size=global_batch, seed=0, max_open_files=max_open_files, columns=columns)
    opened = time.perf_counter() - started
    started = time.perf_counter()
    for _ in range(steps):
        loader.next_step(rank=0, world_size=1, micro_batch_size=micro_batch)
    streamed = time.perf_counter() - started
    far = 10**12  # a trillion sequences in
    state = {**loader.state_dict(), "position": far, "drawn": {loader.keys[0]: far}}
    resumed = SequenceLoader(folder, global_batch_size=global_batch, seed=0, columns=columns)
    started = time.perf_counter()
    resumed.load_state_dict(state)
    restore = time.perf_counter() - started
    started = time.perf_counter()
    resumed.next_step(rank=0, world_size=1, micro_batch_size=micro_batch)
    first_step = time.perf_counter() - started
    return {
        "open_s": opened, "sequences_per_s": steps * global_batch / streamed, "restore_s": restore,
        "first_step_after_restore_s": first_step, "index_bytes": loader.index_bytes,
        "peak_rss_mb": _status_mb("VmHWM"), "anon_mb": _status_mb("RssAnon"), "file_mb": _status_mb("RssFile"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sequences", type=int, default=100_000)
    parser.add_argument("--seq-len", type=int, default=1024)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--global-batch", type=int, default=256)
    parser.add_argument("--micro-batch", type=int, default=32)
    parser.add_argument("--max-open-files", type=int, default=1024)
    parser.add_argument("--sft", action="store_true", help="SFT pairs: rows with prompt_length and length columns")
    parser.add_argument("--measure", help=argparse.SUPPRESS)  # a child process: one case
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure, args.steps, args.global_batch, args.micro_batch, args.max_open_files, args.sft)))
        return
    gb = args.sequences * args.seq_len * 4 / 1e9
    print(f"{args.sequences:,} {'SFT pairs' if args.sft else 'sequences'} of {args.seq_len} ({gb:.2f} GB), global batch {args.global_batch}, "
          f"micro-batch {args.micro_batch}, {args.steps} steps, one rank, max_open_files {args.max_open_files}")
    print(f"{'shards':>6} {'open s':>7} {'seq/s':>8} {'MB/s':>7} {'peak RSS MB':>11} {'anon MB':>8} {'file MB':>8} "
          f"{'index B':>8} {'restore s':>10} {'1st step s':>10}")
    with tempfile.TemporaryDirectory(prefix="loader-bench-") as root:
        for shards in SHARD_COUNTS:
            folder = Path(root) / f"shards-{shards}"
            write_folder(folder, shards, args.sequences, args.seq_len, args.sft)
            child = [sys.executable, __file__, "--measure", str(folder), "--steps", str(args.steps),
                     "--global-batch", str(args.global_batch), "--micro-batch", str(args.micro_batch),
                     "--max-open-files", str(args.max_open_files), *(["--sft"] if args.sft else [])]
            r = json.loads(subprocess.run(child, check=True, capture_output=True, text=True).stdout)
            print(f"{shards:>6} {r['open_s']:>7.3f} {r['sequences_per_s']:>8.0f} "
                  f"{r['sequences_per_s'] * args.seq_len * 4 / 1e6:>7.0f} {r['peak_rss_mb']:>11.0f} {r['anon_mb']:>8.0f} {r['file_mb']:>8.0f} "
                  f"{r['index_bytes']:>8} {r['restore_s']:>10.6f} {r['first_step_after_restore_s']:>10.4f}", flush=True)
            shutil.rmtree(folder)


if __name__ == "__main__":
    main()
