"""The trained tokenizer: text <-> ids, LLaDA's chat layout for SFT and generation, and the tokenizer folder.

The folder (tokenizer.model + special_tokens.json) is written by `Tokenizer.save` and read by
`Tokenizer.load`: the token shards, SFT and sampling all read it through this class.

Chat layout (docs/SPEC-diffusion.md, "SFT loss"; LLaDA's paper, appendix B):
    <BOS><start_header>user<end_header>\\n{text}<eot><start_header>assistant<end_header>\\n{text}<EOS>
Every turn of the history ends with <eot>; the response being learned or generated ends with <EOS>.
Each part is encoded on its own (header, "\\n", content), so a prompt built for generation holds the
same ids as the prompt of the pair the model was fine-tuned on.
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
from tokenizer.specials import special_ids

MODEL_FILE = "tokenizer.model"
SPECIALS_FILE = "special_tokens.json"

Message = dict[str, str]  # {"role": "user" | "assistant" | "system" | ..., "content": text}


class Tokenizer:
    """A SentencePiece model with the special ids it was trained with (see tokenizer/specials.py)."""

    def __init__(self, model_bytes: bytes):
        self._model_bytes = model_bytes
        self._processor = spm.SentencePieceProcessor(model_proto=model_bytes)
        self._ids = special_ids(self._processor)
        # Names the exact vocabulary that token shards and checkpoints were made with.
        self.sha256 = hashlib.sha256(model_bytes).hexdigest()
        self._newline = self.encode("\n")

    def save(self, directory: str | Path) -> None:
        """The tokenizer folder: tokenizer.model, then special_tokens.json (ids by role and vocab_size), atomically."""
        write_atomically(Path(directory) / MODEL_FILE, self._model_bytes)
        write_json(Path(directory) / SPECIALS_FILE, {**self.special_tokens, "vocab_size": self.vocab_size})

    @classmethod
    def load(cls, directory: str | Path) -> Tokenizer:
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

    @property
    def bos_id(self) -> int:
        return self._ids["bos"]

    @property
    def eos_id(self) -> int:
        return self._ids["eos"]

    @property
    def pad_id(self) -> int:
        return self._ids["pad"]

    @property
    def mask_id(self) -> int:
        return self._ids["mask"]

    @property
    def eot_id(self) -> int:
        return self._ids["eot"]

    @property
    def start_header_id(self) -> int:
        return self._ids["start_header"]

    @property
    def end_header_id(self) -> int:
        return self._ids["end_header"]

    def encode(self, text: str) -> list[int]:
        """Ids of `text` (no BOS/EOS added); special pieces in the text such as <|mdm_mask|> are one id each."""
        return self._processor.encode(text)

    def encode_batch(self, texts: Sequence[str], num_threads: int = -1) -> list[list[int]]:
        """Ids of each text, encoded by SentencePiece on `num_threads` threads (-1: its default)."""
        return self._processor.encode(list(texts), num_threads=num_threads)

    def decode(self, ids: Iterable[int]) -> str:
        """Text of `ids` (a list or a numpy array); BOS, EOS and pad decode to nothing."""
        return self._processor.decode(ids.tolist() if hasattr(ids, "tolist") else [int(i) for i in ids])

    def _header(self, role: str) -> list[int]:
        return [self.start_header_id, *self.encode(role), self.end_header_id, *self._newline]

    def _turn(self, role: str, content_ids: list[int]) -> list[int]:
        """A finished turn of the dialogue history: header, text, <eot>."""
        return self._header(role) + content_ids + [self.eot_id]

    def chat_prompt(self, messages: Sequence[Message]) -> list[int]:
        """Ids of BOS, the dialogue so far and the assistant header: what the model answers from."""
        if not messages:
            raise ValueError("a chat prompt needs at least one message")
        ids = [self.bos_id]
        for i, message in enumerate(messages):
            role, content = _role_and_content(i, message)
            ids += self._turn(role, self.encode(content))
        return ids + self._header("assistant")

    def chat_pair(self, messages: Sequence[Message]) -> tuple[list[int], list[int]]:
        """(prompt, response) for the dialogue's last turn, which must be the assistant's."""
        if len(messages) < 2 or _role_and_content(len(messages) - 1, messages[-1])[0] != "assistant":
            raise ValueError("a chat pair needs a dialogue that ends with an assistant turn after some prompt")
        return self.chat_prompt(messages[:-1]), self.encode(messages[-1]["content"]) + [self.eos_id]

    def encode_conversation(self, messages: Sequence[Message]) -> list[tuple[list[int], list[int]]]:
        """One (prompt, response) pair per assistant turn (SPEC: n turns -> n pairs): the prompt is BOS,
        the dialogue before that turn and the assistant header; the response is the turn's text and EOS."""
        history = [self.bos_id]
        pairs = []
        for i, message in enumerate(messages):
            role, content = _role_and_content(i, message)
            content_ids = self.encode(content)
            if role == "assistant":
                if i == 0:
                    raise ValueError("message 0 is an assistant turn with nothing before it to answer")
                pairs.append((history + self._header("assistant"), content_ids + [self.eos_id]))
            history += self._turn(role, content_ids)
        if not pairs:
            raise ValueError("the dialogue has no assistant turn to learn")
        return pairs


def _role_and_content(index: int, message: Message) -> tuple[str, str]:
    if not isinstance(message, dict) or not isinstance(message.get("role"), str) or not message["role"]:
        raise ValueError(f"message {index} must be a dict with a non-empty 'role' and a 'content' string: {message!r}")
    if not isinstance(message.get("content"), str):
        raise ValueError(f"message {index} ({message['role']}) has no 'content' string")
    return message["role"], message["content"]
