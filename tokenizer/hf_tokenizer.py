"""A Hugging Face tokenizer folder behind our interface: LLaDA's own 126k-token tokenizer, or any other.

Reads tokenizer.json with the `tokenizers` library, and tokenizer_config.json / special_tokens_map.json
(and chat_template.jinja, where transformers 5 keeps the template) for the special tokens and the chat
template, as `transformers.AutoTokenizer` does.

Special tokens by role. Each role's token is the `{role}_token` entry of those files (transformers sets
bos, eos, pad, unk and mask; eot_token, start_header_token and end_header_token may be added), and
its id is the vocabulary's. A role the files leave out is looked up by LLaDA's name for it
(LLADA_TOKEN_NAMES): LLaDA's tokenizer_config.json names no chat markers. pad, when unset, is EOS: LLaDA pads
SFT responses with EOS (docs/SPEC-diffusion.md, "SFT loss"). A model folder's config.json, when there
is one beside the tokenizer, must agree on the mask id.

Chat prompts are rendered with the folder's chat template by transformers' own Jinja renderer
(sandboxed, trim_blocks/lstrip_blocks) and encoded whole, special tokens recognized, exactly as
`apply_chat_template(..., add_generation_prompt=True)` builds them. A folder without a template uses
our layout (tokenizer/encode.py).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from common.config import ConfigError
from common.files import write_atomically
from tokenizer.encode import SPECIAL_ROLES, Message, Tokenizer

HF_TOKENIZER_FILE = "tokenizer.json"
HF_CONFIG_FILE = "tokenizer_config.json"
HF_SPECIAL_MAP_FILE = "special_tokens_map.json"
HF_TEMPLATE_FILE = "chat_template.jinja"
HF_FILES = (HF_TOKENIZER_FILE, HF_CONFIG_FILE, HF_SPECIAL_MAP_FILE, HF_TEMPLATE_FILE)

HF_ROLE_KEYS = ("bos", "eos", "pad", "unk", "mask", "eot", "start_header", "end_header")
"""Roles a tokenizer_config.json may name as `{role}_token` (transformers knows the first five)."""

LLADA_TOKEN_NAMES = {
    "mask": "<|mdm_mask|>",
    "bos": "<|startoftext|>",
    "eos": "<|endoftext|>",
    "eot": "<|eot_id|>",
    "start_header": "<|start_header_id|>",
    "end_header": "<|end_header_id|>",
}
"""LLaDA's special tokens (GSAI-ML/LLaDA-8B-*), looked up by name where the files give no role."""


class HFTokenizer(Tokenizer):
    """tokenizer.json (+ its config files) of a folder, with ids by role and the folder's chat template."""

    def __init__(self, files: dict[str, bytes], source: str = "<memory>"):
        from tokenizers import Tokenizer as Backend

        self._files = files
        try:
            self._backend = Backend.from_str(files[HF_TOKENIZER_FILE].decode("utf-8"))
        except Exception as e:  # tokenizers raises a bare Exception on a malformed file
            raise ConfigError(f"{source}/{HF_TOKENIZER_FILE}: not a Hugging Face tokenizer ({e})") from None
        config = _json(files, HF_CONFIG_FILE, source)
        special_map = _json(files, HF_SPECIAL_MAP_FILE, source)
        self.token_strings = {role: _content(config.get(f"{role}_token", special_map.get(f"{role}_token")))
                              for role in HF_ROLE_KEYS}
        self._ids = self._role_ids(source)
        self.chat_template = _chat_template(files, config, source)
        self.sha256 = hashlib.sha256(
            files[HF_TOKENIZER_FILE] + b"\0" + json.dumps([self._ids, self.chat_template], sort_keys=True).encode()
        ).hexdigest()

    def _role_ids(self, source: str) -> dict[str, int]:
        ids: dict[str, int] = {}
        for role in (*SPECIAL_ROLES, "unk"):
            name = self.token_strings.get(role) or LLADA_TOKEN_NAMES.get(role)
            token_id = None if name is None else self._backend.token_to_id(name)
            if token_id is not None:
                ids[role], self.token_strings[role] = token_id, name
            elif self.token_strings.get(role) is not None:
                raise ConfigError(f"{source}/{HF_CONFIG_FILE}: the {role} token {name!r} is not in "
                                  f"{HF_TOKENIZER_FILE}'s vocabulary")
        if "pad" not in ids and "eos" in ids:
            ids["pad"], self.token_strings["pad"] = ids["eos"], self.token_strings["eos"]
        missing = [role for role in SPECIAL_ROLES if role not in ids]
        if missing:
            names = ", ".join(f"{role} (looked for {LLADA_TOKEN_NAMES.get(role, 'its name')})" for role in missing)
            raise ConfigError(f"{source}: no special token for {names}: set `{{role}}_token` in {HF_CONFIG_FILE} "
                              f"or add the token to {HF_TOKENIZER_FILE}")
        return ids

    @classmethod
    def load(cls, directory: str | Path) -> HFTokenizer:
        """The tokenizer of a Hugging Face folder; its config.json (a model folder) must agree on the mask id."""
        folder = Path(directory).expanduser()
        if not (folder / HF_TOKENIZER_FILE).is_file():
            raise ConfigError(f"tokenizer path does not exist: {folder / HF_TOKENIZER_FILE}")
        files = {name: (folder / name).read_bytes() for name in HF_FILES if (folder / name).is_file()}
        tokenizer = cls(files, source=str(folder))
        model_config = folder / "config.json"
        if model_config.is_file():
            mask = json.loads(model_config.read_text(encoding="utf-8")).get("mask_token_id")
            if mask is not None and mask != tokenizer.mask_id:
                raise ConfigError(f"{model_config} says mask_token_id={mask}, but the tokenizer's mask token "
                                  f"{tokenizer.token_strings['mask']!r} is id {tokenizer.mask_id}")
        return tokenizer

    def save(self, directory: str | Path) -> None:
        """The folder's files as they were read (tokenizer.json last: its presence marks the folder)."""
        for name in sorted(self._files, key=lambda name: name == HF_TOKENIZER_FILE):
            write_atomically(Path(directory) / name, self._files[name])

    @property
    def vocab_size(self) -> int:
        return self._backend.get_vocab_size(with_added_tokens=True)

    @property
    def special_tokens(self) -> dict[str, int]:
        return dict(self._ids)

    def encode(self, text: str) -> list[int]:
        return self._backend.encode(text, add_special_tokens=False).ids

    def encode_batch(self, texts: Sequence[str], num_threads: int = -1) -> list[list[int]]:
        # tokenizers parallelizes batches itself (RAYON_NUM_THREADS); it has no per-call thread count.
        return [e.ids for e in self._backend.encode_batch(list(texts), add_special_tokens=False)]

    def decode(self, ids: Iterable[int]) -> str:
        dropped = {self.bos_id, self.eos_id, self.pad_id}
        values = ids.tolist() if hasattr(ids, "tolist") else [int(i) for i in ids]
        return self._backend.decode([i for i in values if i not in dropped], skip_special_tokens=False)

    def chat_prompt(self, messages: Sequence[Message]) -> list[int]:
        if not messages:
            raise ValueError("a chat prompt needs at least one message")
        if self.chat_template is None:
            return self.layout_prompt(messages)
        return self.encode(self.render_chat(messages, add_generation_prompt=True))

    def render_chat(self, messages: Sequence[Message], add_generation_prompt: bool) -> str:
        """The chat template's text for `messages`, rendered by transformers' renderer with the special
        tokens' strings (bos_token, eos_token, ...) as its variables."""
        from transformers.utils.chat_template_utils import render_jinja_template

        from tokenizer.encode import role_and_content

        for i, message in enumerate(messages):
            role_and_content(i, message)
        strings = {f"{role}_token": text for role, text in self.token_strings.items() if text is not None}
        rendered, _ = render_jinja_template(conversations=[list(messages)], chat_template=self.chat_template,
                                            add_generation_prompt=add_generation_prompt, **strings)
        return rendered[0]


def _json(files: dict[str, bytes], name: str, source: str) -> dict[str, Any]:
    if name not in files:
        return {}
    try:
        value = json.loads(files[name].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ConfigError(f"{source}/{name}: not JSON ({e})") from None
    if not isinstance(value, dict):
        raise ConfigError(f"{source}/{name}: expected a JSON object, got {type(value).__name__}")
    return value


def _content(token: Any) -> str | None:
    """A special token entry: a string, or transformers' AddedToken dict {"content": ...}."""
    if isinstance(token, dict):
        return token.get("content")
    return token if isinstance(token, str) else None


def _chat_template(files: dict[str, bytes], config: dict[str, Any], source: str) -> str | None:
    """chat_template.jinja, else tokenizer_config.json's chat_template (a string, or named templates: "default")."""
    if HF_TEMPLATE_FILE in files:
        return files[HF_TEMPLATE_FILE].decode("utf-8")
    template = config.get("chat_template")
    if isinstance(template, list):
        named = {entry.get("name"): entry.get("template") for entry in template if isinstance(entry, dict)}
        if "default" not in named:
            raise ConfigError(f"{source}/{HF_CONFIG_FILE}: chat_template lists {sorted(named)} but no 'default'")
        template = named["default"]
    if template is not None and not isinstance(template, str):
        raise ConfigError(f"{source}/{HF_CONFIG_FILE}: chat_template must be a string, got {type(template).__name__}")
    return template
