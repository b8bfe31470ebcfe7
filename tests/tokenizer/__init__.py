"""Tests of tokenizer/. The helpers below also give tests/pipelines a real corpus and a trained tokenizer."""

from __future__ import annotations

import io
import json
from itertools import islice
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.formats import write_corpus_manifest
from tests.shared_data import DEBIAN_DOCS


def _read_jsonl_zst(path: Path, limit: int) -> list[dict]:
    import zstandard

    with open(path, "rb") as f:
        lines = io.TextIOWrapper(zstandard.ZstdDecompressor().stream_reader(f), encoding="utf-8")
        return [json.loads(line) for line in islice(lines, limit)]


def real_documents(english: int = 300, polish: int = 60) -> list[dict]:
    """Documents of the shared debian-docs corpus: Python's reference manual (English, many longer than
    SentencePiece's 4192-byte sentence limit) and Polish fortunes (non-ASCII). Skips the test when absent."""
    files = [DEBIAN_DOCS / "docs-00003.jsonl.zst", DEBIAN_DOCS / "docs-00006.jsonl.zst"]
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        pytest.skip(f"shared corpus not here: {', '.join(missing)}")
    records = _read_jsonl_zst(files[0], english) + _read_jsonl_zst(files[1], polish)
    return [{"id": r["id"], "text": r["text"], "source": r["source"]} for r in records]


def write_corpus(corpus_dir: Path, documents: list[dict], shards: int = 1) -> Path:
    """The corpus build's layout: documents/shard-NNNNN.parquet (id, text, source) and manifest.json."""
    (corpus_dir / "documents").mkdir(parents=True, exist_ok=True)
    per_shard = -(-len(documents) // shards)
    for i in range(shards):
        part = documents[i * per_shard : (i + 1) * per_shard]
        table = pa.table({key: pa.array([d[key] for d in part], pa.string()) for key in ("id", "text", "source")})
        pq.write_table(table, corpus_dir / "documents" / f"shard-{i:05d}.parquet")
    write_corpus_manifest(corpus_dir)
    return corpus_dir


def train_tokenizer(corpus_dir: Path, output_dir: Path, **overrides) -> dict:
    """A small tokenizer (1024 pieces) trained by the real job; returns its report."""
    from tokenizer.config import TokenizerConfig
    from tokenizer.train import main

    values = {"vocab_size": 1024, "log_to_mlflow": False, **overrides}
    config = TokenizerConfig(corpus_dir=str(corpus_dir), output_dir=str(output_dir), **values)
    return main(config)


def conversation_tokenizer(root: Path, vocab_size: int = 512) -> Path:
    """A small tokenizer trained on the demo conversations' texts (for SFT and sampling tests); returns its folder."""
    from common.paths import PROJECT_ROOT

    lines = (PROJECT_ROOT / "data" / "demo" / "conversations.jsonl").read_text().splitlines()
    texts = [m["content"] for line in lines for m in json.loads(line)["messages"]]
    documents = [{"id": str(i), "text": " ".join(texts[i : i + 20]), "source": "demo"} for i in range(0, len(texts), 20)]
    write_corpus(root / "corpus", documents)
    train_tokenizer(root / "corpus", root / "tokenizer", vocab_size=vocab_size)
    return root / "tokenizer"


LLADA_CHAT_TEMPLATE = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}"
    "{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim"
    " + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}"
)
"""LLaDA-8B-Instruct's chat template (Llama 3's): "\\n\\n" after each header, contents trimmed."""

LLADA_SPECIALS = ["<|startoftext|>", "<|endoftext|>", "<|eot_id|>", "<|start_header_id|>", "<|end_header_id|>"]


def llada_style_tokenizer(folder: Path, vocab_size: int = 600) -> Path:
    """A small Hugging Face tokenizer folder in LLaDA's layout, built offline: a byte-level BPE trained
    with `tokenizers` on the demo conversations, LLaDA's special-token names (the mask token added last,
    so its id is not one of ours), tokenizer_config.json with LLaDA's chat template. Returns the folder."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    from common.paths import PROJECT_ROOT

    lines = (PROJECT_ROOT / "data" / "demo" / "conversations.jsonl").read_text().splitlines()
    texts = [m["content"] for line in lines for m in json.loads(line)["messages"]]
    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=LLADA_SPECIALS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    backend.train_from_iterator(texts, trainer)
    backend.add_special_tokens(["<|mdm_mask|>"])
    folder.mkdir(parents=True, exist_ok=True)
    backend.save(str(folder / "tokenizer.json"))
    config = {"bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>", "chat_template": LLADA_CHAT_TEMPLATE,
              "tokenizer_class": "PreTrainedTokenizerFast", "model_max_length": 4096}
    (folder / "tokenizer_config.json").write_text(json.dumps(config, indent=2))
    return folder
