"""Our tokenizer: a SentencePiece model trained by tokenizer/train.py, with LLaDA's special tokens at ids 0..7.

The folder (tokenizer.model + special_tokens.json) is written by `save` and read by `load`;
`convert to_hf` also writes it in Hugging Face form (tokenizer/hf_export.py).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from pathlib import Path

import sentencepiece as spm

from common.config import ConfigError
from common.files import write_atomically, write_json
from common.paths import require_paths
from tokenizer.encode import Tokenizer
from tokenizer.specials import special_ids

MODEL_FILE = "tokenizer.model"
SPECIALS_FILE = "special_tokens.json"


class SentencePieceTokenizer(Tokenizer):
    """A SentencePiece model with the special ids it was trained with (see tokenizer/specials.py)."""

    def __init__(self, model_bytes: bytes):
        self.model_bytes = model_bytes
        self._processor = spm.SentencePieceProcessor(model_proto=model_bytes)
        self._ids = special_ids(self._processor)
        self.sha256 = hashlib.sha256(model_bytes).hexdigest()

    def save(self, directory: str | Path) -> None:
        """The tokenizer folder: tokenizer.model, then special_tokens.json (ids by role and vocab_size), atomically."""
        write_atomically(Path(directory) / MODEL_FILE, self.model_bytes)
        write_json(Path(directory) / SPECIALS_FILE, {**self.special_tokens, "vocab_size": self.vocab_size})

    @classmethod
    def load(cls, directory: str | Path) -> SentencePieceTokenizer:
        """Read `directory`/tokenizer.model and check `directory`/special_tokens.json agrees with it."""
        model_path, specials_path = require_paths([Path(directory) / MODEL_FILE, Path(directory) / SPECIALS_FILE], "tokenizer")
        try:
            tokenizer = cls(model_path.read_bytes())
        except (RuntimeError, ValueError) as e:  # not a SentencePiece model, or not one of ours
            raise ConfigError(f"{model_path}: {e}") from None
        written = json.loads(specials_path.read_text(encoding="utf-8"))
        expected = {**tokenizer.special_tokens, "vocab_size": tokenizer.vocab_size}
        if written != expected:
            raise ConfigError(f"{specials_path} says {written} but {model_path} has {expected}; retrain the tokenizer")
        return tokenizer

    @property
    def vocab_size(self) -> int:
        return self._processor.vocab_size()

    @property
    def special_tokens(self) -> dict[str, int]:
        """{"unk", "bos", "eos", "pad", "mask", "eot", "start_header", "end_header"} -> id."""
        return dict(self._ids)

    @property
    def unk_id(self) -> int:
        return self._ids["unk"]

    def encode(self, text: str) -> list[int]:
        return self._processor.encode(text)

    def encode_batch(self, texts: Sequence[str], num_threads: int = -1) -> list[list[int]]:
        return self._processor.encode(list(texts), num_threads=num_threads)

    def decode(self, ids: Iterable[int]) -> str:
        return self._processor.decode(ids.tolist() if hasattr(ids, "tolist") else [int(i) for i in ids])
