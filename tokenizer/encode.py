"""The tokenizer interface every stage uses: text <-> ids, special ids by role, LLaDA's chat layout.

Two implementations, one folder each, told apart by their files (`Tokenizer.load`):
- ours, a SentencePiece model (tokenizer.model + special_tokens.json): tokenizer/sentencepiece_tokenizer.py;
- any Hugging Face tokenizer folder (tokenizer.json + tokenizer_config.json), LLaDA's own among them:
  tokenizer/hf_tokenizer.py.
The token shards, SFT pairs, training, sampling and evaluation all take a `tokenizer_dir` and read it here.

Special ids are kept by role (SPECIAL_ROLES), not by fixed id: ours are 0..7, LLaDA's mask is 126336.

Chat layout (docs/SPEC-diffusion.md, "SFT loss"; LLaDA's paper, appendix B):
    <BOS><start_header>user<end_header>\\n{text}<eot><start_header>assistant<end_header>\\n{text}<EOS>
Every turn of the history ends with <eot>; the response being learned or generated ends with <EOS>. A
prompt is `chat_prompt(history)`; a Hugging Face tokenizer with a chat template renders it with that
template (LLaDA-8B-Instruct's puts "\\n\\n" after the header), ours encodes the parts of the layout above.
Either way training pairs and generation prompts come from the same `chat_prompt`, so the model is asked
exactly as it was fine-tuned.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from pathlib import Path

from common.config import ConfigError

Message = dict[str, str]  # {"role": "user" | "assistant" | "system" | ..., "content": text}

SPECIAL_ROLES = ("bos", "eos", "pad", "mask", "eot", "start_header", "end_header")
"""Roles every tokenizer fills (`unk` too where the vocabulary has one)."""


class Tokenizer(ABC):
    """Text <-> ids with special ids by role, and the chat layout built on them."""

    sha256: str
    """Names the exact vocabulary (and chat layout) that token shards and checkpoints were made with."""

    @classmethod
    def load(cls, directory: str | Path) -> Tokenizer:
        """The tokenizer of `directory`: a Hugging Face folder (tokenizer.json) or ours (tokenizer.model)."""
        from tokenizer.hf_tokenizer import HF_TOKENIZER_FILE, HFTokenizer
        from tokenizer.sentencepiece_tokenizer import MODEL_FILE, SentencePieceTokenizer

        folder = Path(directory).expanduser()
        if (folder / HF_TOKENIZER_FILE).is_file():
            return HFTokenizer.load(folder)
        if (folder / MODEL_FILE).is_file() or not folder.is_dir():
            return SentencePieceTokenizer.load(folder)  # names what is missing
        raise ConfigError(f"{folder} holds no tokenizer: expected {HF_TOKENIZER_FILE} (a Hugging Face tokenizer) "
                          f"or {MODEL_FILE} (ours, from python -m tokenizer.train)")

    @abstractmethod
    def save(self, directory: str | Path) -> None:
        """Write the tokenizer folder that `Tokenizer.load` reads back."""

    @property
    @abstractmethod
    def vocab_size(self) -> int:
        """Ids the tokenizer can produce (special ids included); the model's embedding needs at least this many rows."""

    @property
    @abstractmethod
    def special_tokens(self) -> dict[str, int]:
        """Role -> id for every role of SPECIAL_ROLES (plus "unk" where there is one)."""

    @abstractmethod
    def encode(self, text: str) -> list[int]:
        """Ids of `text` (no BOS/EOS added); special tokens written in the text, such as <|mdm_mask|>, are one id each."""

    @abstractmethod
    def encode_batch(self, texts: Sequence[str], num_threads: int = -1) -> list[list[int]]:
        """Ids of each text, on `num_threads` threads where the implementation allows (-1: its default)."""

    @abstractmethod
    def decode(self, ids: Iterable[int]) -> str:
        """Text of `ids` (a list or a numpy array); BOS, EOS and pad decode to nothing."""

    @property
    def bos_id(self) -> int:
        return self.special_tokens["bos"]

    @property
    def eos_id(self) -> int:
        return self.special_tokens["eos"]

    @property
    def pad_id(self) -> int:
        return self.special_tokens["pad"]

    @property
    def mask_id(self) -> int:
        return self.special_tokens["mask"]

    @property
    def eot_id(self) -> int:
        return self.special_tokens["eot"]

    @property
    def start_header_id(self) -> int:
        return self.special_tokens["start_header"]

    @property
    def end_header_id(self) -> int:
        return self.special_tokens["end_header"]

    def layout_prompt(self, messages: Sequence[Message], header_separator: str = "\n") -> list[int]:
        """The layout above, part by part: BOS, each turn as <start_header>role<end_header>{separator}text<eot>,
        then the assistant header. Each part is encoded on its own."""
        separator = self.encode(header_separator)

        def header(role: str) -> list[int]:
            return [self.start_header_id, *self.encode(role), self.end_header_id, *separator]

        ids = [self.bos_id]
        for i, message in enumerate(messages):
            role, content = role_and_content(i, message)
            ids += header(role) + self.encode(content) + [self.eot_id]
        return ids + header("assistant")

    def chat_prompt(self, messages: Sequence[Message]) -> list[int]:
        """Ids of BOS, the dialogue so far and the assistant header: what the model answers from."""
        if not messages:
            raise ValueError("a chat prompt needs at least one message")
        return self.layout_prompt(messages)

    def chat_pair(self, messages: Sequence[Message]) -> tuple[list[int], list[int]]:
        """(prompt, response) for the dialogue's last turn, which must be the assistant's."""
        if len(messages) < 2 or role_and_content(len(messages) - 1, messages[-1])[0] != "assistant":
            raise ValueError("a chat pair needs a dialogue that ends with an assistant turn after some prompt")
        return self.chat_prompt(messages[:-1]), self.encode(messages[-1]["content"]) + [self.eos_id]

    def encode_conversation(self, messages: Sequence[Message]) -> list[tuple[list[int], list[int]]]:
        """One (prompt, response) pair per assistant turn (SPEC: n turns -> n pairs): the prompt is
        chat_prompt of the dialogue before that turn; the response is the turn's text and EOS."""
        pairs = []
        for i, message in enumerate(messages):
            role, content = role_and_content(i, message)
            if role == "assistant":
                if i == 0:
                    raise ValueError("message 0 is an assistant turn with nothing before it to answer")
                pairs.append((self.chat_prompt(messages[:i]), self.encode(content) + [self.eos_id]))
        if not pairs:
            raise ValueError("the dialogue has no assistant turn to learn")
        return pairs


def role_and_content(index: int, message: Message) -> tuple[str, str]:
    """(role, content) of message `index`; a ValueError naming it when it is not a role/content dict."""
    if not isinstance(message, dict) or not isinstance(message.get("role"), str) or not message["role"]:
        raise ValueError(f"message {index} must be a dict with a non-empty 'role' and a 'content' string: {message!r}")
    if not isinstance(message.get("content"), str):
        raise ValueError(f"message {index} ({message['role']}) has no 'content' string")
    return message["role"], message["content"]
