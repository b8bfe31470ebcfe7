"""Train the SentencePiece tokenizer on the cleaned corpus: `python -m tokenizer.train [key=value ...]`.

Texts stream from the corpus build's Parquet shards into SentencePiece's trainer (no temporary text
file, so newlines stay inside the training pieces and the vocabulary learns pieces such as ".\\n\\n").
The normalizer is the identity and whitespace is kept as it is, so decode(encode(text)) == text for
any text (with byte_fallback): code indentation, blank lines and non-NFKC characters survive.
Training is deterministic: the same corpus and config give the same tokenizer.model bytes.
"""

from __future__ import annotations

import io
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import sentencepiece as spm

from common.cli import run_job
from common.config import ConfigError
from common.job_harness import Built, run_folder_job
from formats.corpus import document_shards
from tokenizer.config import TokenizerConfig
from tokenizer.sentencepiece_tokenizer import MODEL_FILE, SPECIALS_FILE, SentencePieceTokenizer
from tokenizer.specials import trainer_options

READ_BATCH_ROWS = 1024
COUNTS = ("documents_total", "documents_sampled", "documents_empty", "documents_split", "pieces", "bytes")


def split_text(text: str, max_bytes: int) -> Iterator[str]:
    """Consecutive pieces of `text` of at most max_bytes UTF-8 bytes that join back to it.

    A piece ends after its last newline where it has one, else before its last space (so the next
    word keeps its leading space), else at a character boundary.
    """
    data = text.encode("utf-8")
    start = 0
    while len(data) - start > max_bytes:
        end = start + max_bytes
        cut = data.rfind(b"\n", start, end) + 1
        if cut <= start:
            cut = data.rfind(b" ", start + 1, end)
        if cut <= start:
            cut = end
            while data[cut] & 0xC0 == 0x80:  # a UTF-8 continuation byte: back off to the character's start
                cut -= 1
        yield data[start:cut].decode("utf-8")
        start = cut
    if start < len(data):
        yield data[start:].decode("utf-8")


def sample_documents(row_counts: list[int], max_documents: int, seed: int) -> np.ndarray | None:
    """Sorted corpus-wide row numbers of max_documents documents drawn without replacement (None: all)."""
    total = sum(row_counts)
    if max_documents == 0 or total <= max_documents:
        return None
    return np.sort(np.random.default_rng(seed).choice(total, size=max_documents, replace=False))


def training_texts(shards: list[Path], config: TokenizerConfig, counts: Counter) -> Iterator[str]:
    """Pieces of the sampled documents, shard by shard; `counts` tallies documents and pieces by kind."""
    row_counts = [pq.ParquetFile(shard).metadata.num_rows for shard in shards]
    chosen = sample_documents(row_counts, config.max_documents, config.seed)
    counts["documents_total"] = sum(row_counts)
    first_row = 0
    for shard in shards:
        for batch in pq.ParquetFile(shard).iter_batches(batch_size=READ_BATCH_ROWS, columns=["text"]):
            texts = batch.column(0)
            if chosen is not None:
                lo, hi = np.searchsorted(chosen, [first_row, first_row + len(texts)])
                texts = texts.take(chosen[lo:hi] - first_row)
            first_row += len(batch)
            for text in texts.to_pylist():
                counts["documents_sampled"] += 1
                if not text or text.isspace():
                    counts["documents_empty"] += 1
                    continue
                size = len(text.encode("utf-8"))
                counts["bytes"] += size
                if size > config.max_sentence_length:
                    counts["documents_split"] += 1
                for piece in split_text(text, config.max_sentence_length):
                    counts["pieces"] += 1
                    yield piece


def train_options(config: TokenizerConfig) -> dict:
    return {
        "model_type": config.model_type,
        "vocab_size": config.vocab_size,
        "character_coverage": config.character_coverage,
        "byte_fallback": config.byte_fallback,
        "input_sentence_size": config.input_sentence_size,
        "shuffle_input_sentence": True,
        "max_sentence_length": config.max_sentence_length,
        "num_threads": config.num_threads,
        # Keep text exactly as it is (no NFKC, no whitespace squeezing, no dummy leading space), so
        # decode(encode(x)) == x and runs of spaces (code indentation) become pieces of their own.
        "normalization_rule_name": "identity",
        "remove_extra_whitespaces": False,
        "add_dummy_prefix": False,
        "allow_whitespace_only_pieces": True,
        # One piece per digit, as LLaMA does: numbers get a consistent spelling.
        "split_digits": True,
        "minloglevel": 1,  # warnings only: the info log prints a line per merge
        **trainer_options(),
    }


def build(config: TokenizerConfig, shards: list[Path]) -> Built:
    """Train and write tokenizer.model and special_tokens.json; returns the stats (the folder has no manifest:
    Tokenizer.load checks the two files against each other)."""
    started = time.perf_counter()
    counts: Counter = Counter()
    model = io.BytesIO()
    spm.set_random_generator_seed(config.seed)
    try:
        spm.SentencePieceTrainer.train(
            sentence_iterator=training_texts(shards, config, counts), model_writer=model, **train_options(config)
        )
    except RuntimeError as e:
        if counts["pieces"] == 0:
            raise ConfigError(f"no text to train on: every document in {shards[0].parent} is empty") from None
        raise ConfigError(
            f"SentencePiece cannot train with this config ({e}); see vocab_size and character_coverage"
        ) from None
    tokenizer = SentencePieceTokenizer(model.getvalue())
    tokenizer.save(config.output_dir)
    return Built({
        "tokenizer_sha256": tokenizer.sha256,
        "vocab_size": tokenizer.vocab_size,
        "special_tokens": tokenizer.special_tokens,
        "shards": len(shards),
        **{key: counts[key] for key in COUNTS},
        "seconds": {"train": round(time.perf_counter() - started, 3)},
    })


def main(config: TokenizerConfig) -> dict:
    """Train, then write tokenizer.model, special_tokens.json, config.json and stats.json; returns the stats."""
    shards = document_shards(config.corpus_dir)
    return run_folder_job(config, "tokenizer", lambda: build(config, shards), settings=(f"vocab {config.vocab_size}",),
                          artifacts=(MODEL_FILE, SPECIALS_FILE), not_metrics=("special_tokens",))


if __name__ == "__main__":
    sys.exit(run_job(TokenizerConfig, main, description=__doc__.splitlines()[0]))
