"""Conversation files -> (prompt ids, response ids) pairs, the SFT examples (docs/SPEC-diffusion.md, SFT).

A file is JSON lines (.jsonl, .json) or Parquet (.parquet); each record holds either `messages` (a list of
{"role", "content"} dicts, the dialogue) or `prompt` and `response` strings (one user turn and its answer).
An assistant turn becomes a pair: its prompt is the chat layout of the turns before it
(Tokenizer.encode_conversation), its response the turn's ids ending in EOS.

Which assistant turns of a multi-turn dialogue become pairs (`turns`):
- "all": every one (n turns -> n pairs; the spec's wording);
- "sampled": one of the n, drawn per dialogue from `seed` and its record number. This is what LLaDA's
  paper describes in appendix B.1: an n-turn dialogue is treated as n single-turn pairs "and randomly
  sample one".

Bad records are counted and skipped, the first few named by file and record number; pairs longer than
max_seq_len are cut from the left of the prompt (the most recent history stays), and a response that
alone fills max_seq_len is dropped.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

EXAMPLES = 5
"""Bad records named in the stats."""

TURN_CHOICES = ("all", "sampled")
PARQUET_SUFFIXES = (".parquet",)


def new_stats() -> dict[str, Any]:
    return {"conversations": 0, "pairs": 0, "bad_lines": 0, "truncated": 0, "too_long": 0, "examples": []}


def iter_records(path: str | Path) -> Iterator[tuple[int, Any]]:
    """(record number from 1, record) of a JSON-lines or Parquet file, streamed; a JSON line that does not
    parse is yielded as the exception, so the caller counts it where it stands."""
    if Path(path).suffix in PARQUET_SUFFIXES:
        import pyarrow.parquet as pq

        number = 0
        for batch in pq.ParquetFile(path).iter_batches(batch_size=1024):
            for record in batch.to_pylist():
                number += 1
                yield number, record
        return
    with open(path, "rb") as f:
        for number, raw in enumerate(f, 1):
            if not raw.strip():
                continue
            try:
                yield number, json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as e:
                yield number, e


def record_messages(record: Any) -> list[dict]:
    """The dialogue of a record: its `messages`, or its `prompt` and `response` as a user and an assistant turn."""
    if not isinstance(record, dict):
        raise TypeError(f"expected an object with 'messages', or 'prompt' and 'response', got {type(record).__name__}")
    if "messages" in record:
        messages = record["messages"]
        if not isinstance(messages, list):
            raise TypeError(f"'messages' must be a list of role/content objects, got {type(messages).__name__}")
        return messages
    if "prompt" in record and "response" in record:
        return [{"role": "user", "content": record["prompt"]}, {"role": "assistant", "content": record["response"]}]
    raise KeyError(f"no 'messages', nor 'prompt' and 'response' (keys: {', '.join(sorted(map(str, record))) or 'none'})")


def iter_pairs(path: str | Path, tokenizer, max_seq_len: int, stats: dict[str, Any], turns: str = "all",
               seed: int = 0) -> Iterator[tuple[list[int], list[int]]]:
    """The pairs of one conversation file, one at a time (the file is streamed); counts into `stats` (new_stats())."""
    if turns not in TURN_CHOICES:
        raise ValueError(f"turns must be one of {', '.join(TURN_CHOICES)}, got {turns!r}")
    for number, record in iter_records(path):
        try:
            if isinstance(record, Exception):
                raise record
            pairs = tokenizer.encode_conversation(record_messages(record))
        except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
            stats["bad_lines"] += 1
            if len(stats["examples"]) < EXAMPLES:
                stats["examples"].append(f"{path}:{number}: {type(e).__name__}: {e}")
            continue
        stats["conversations"] += 1
        if turns == "sampled":
            pairs = [random.Random(f"{seed}:{number}").choice(pairs)]
        for prompt, response in pairs:
            if len(response) >= max_seq_len:
                stats["too_long"] += 1
                continue
            if len(prompt) + len(response) > max_seq_len:
                prompt = prompt[len(prompt) + len(response) - max_seq_len :]
                stats["truncated"] += 1
            stats["pairs"] += 1
            yield prompt, response


def read_pairs(path: str | Path, tokenizer, max_seq_len: int, turns: str = "all",
               seed: int = 0) -> tuple[list[tuple[list[int], list[int]]], dict[str, Any]]:
    """All pairs of a file as a list, and the stats (for small files and tests; the SFT shard job streams)."""
    stats = new_stats()
    pairs = list(iter_pairs(path, tokenizer, max_seq_len, stats, turns, seed))
    return pairs, stats
