"""Conversation files -> (prompt ids, response ids) pairs, the SFT examples (docs/SPEC-diffusion.md, SFT).

Every assistant turn of a conversation is one pair: its prompt is the chat layout of the turns before it
(Tokenizer.encode_conversation), its response the turn's ids ending in EOS/EOT. Bad lines are counted and
skipped, the first few named by file and line number; pairs longer than max_seq_len are cut from the
left of the prompt (the most recent history stays), and a response that alone fills max_seq_len is dropped.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

EXAMPLES = 5
"""Bad lines named in the stats."""


def new_stats() -> dict[str, Any]:
    return {"conversations": 0, "pairs": 0, "bad_lines": 0, "truncated": 0, "too_long": 0, "examples": []}


def iter_pairs(path: str | Path, tokenizer, max_seq_len: int, stats: dict[str, Any]) -> Iterator[tuple[list[int], list[int]]]:
    """The pairs of one JSON-lines file of {"messages": [{"role", "content"}, ...]}, one at a time (the
    file is streamed); counts into `stats` (new_stats())."""
    with open(path, "rb") as f:
        for line_number, raw in enumerate(f, 1):
            if not raw.strip():
                continue
            try:
                messages = json.loads(raw.decode("utf-8"))["messages"]
                turns = tokenizer.encode_conversation(messages)
            except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
                stats["bad_lines"] += 1
                if len(stats["examples"]) < EXAMPLES:
                    stats["examples"].append(f"{path}:{line_number}: {type(e).__name__}: {e}")
                continue
            stats["conversations"] += 1
            for prompt, response in turns:
                if len(response) >= max_seq_len:
                    stats["too_long"] += 1
                    continue
                if len(prompt) + len(response) > max_seq_len:
                    prompt = prompt[len(prompt) + len(response) - max_seq_len :]
                    stats["truncated"] += 1
                stats["pairs"] += 1
                yield prompt, response


def read_pairs(path: str | Path, tokenizer, max_seq_len: int) -> tuple[list[tuple[list[int], list[int]]], dict[str, Any]]:
    """All pairs of a file as a list, and the stats (for small files and tests; the SFT shard job streams)."""
    stats = new_stats()
    pairs = list(iter_pairs(path, tokenizer, max_seq_len, stats))
    return pairs, stats
