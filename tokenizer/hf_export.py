"""Our SentencePiece tokenizer in Hugging Face form: tokenizer.json, tokenizer_config.json (with the chat
template of our layout) and special_tokens_map.json, so `transformers.AutoTokenizer.from_pretrained` on an
exported model gives the ids we trained with. `trainer.convert to_hf` writes it beside the weights.

The conversion is transformers' own (TokenizersBackend.from_pretrained on a folder holding only
tokenizer.model runs SpmConverter over the model's proto: no dummy prefix, identity normalizer, byte
fallback, merges by score). Two settings are then corrected, both measured on the demo corpus:
- BPE's `ignore_merges` is turned off: with it, text spelled like a byte or control piece ("<0x41>",
  "<s>") became that piece's id, where SentencePiece spells it out;
- the four user-defined symbols (<|mdm_mask|>, <|eot_id|>, the header markers) become added tokens,
  matched whole in any text and kept on decode, as SentencePiece does.
With that, every demo document and conversation encodes to the same ids and decodes to the same text.
One difference stays: a Hugging Face tokenizer reads the control pieces' text ("<s>", "</s>", "<pad>",
"<unk>") in a document as those special ids, which SentencePiece never does (transformers'
`split_special_tokens=True` spells them out).
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import asdict
from pathlib import Path

from tokenizer.hf_tokenizer import HF_FILES, HF_SPECIAL_MAP_FILE
from tokenizer.sentencepiece_tokenizer import MODEL_FILE, SentencePieceTokenizer
from tokenizer.specials import SPECIAL_IDS, SPECIAL_TOKENS

USER_DEFINED = ("mask", "eot", "start_header", "end_header")

# Tokenizer.layout_prompt (tokenizer/encode.py) as a chat template: what apply_chat_template must give.
CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}" + SPECIAL_TOKENS.start_header + "{{ message['role'] }}"
    + SPECIAL_TOKENS.end_header + "\n{{ message['content'] }}" + SPECIAL_TOKENS.eot + "{% endfor %}"
    "{% if add_generation_prompt %}" + SPECIAL_TOKENS.start_header + "assistant" + SPECIAL_TOKENS.end_header
    + "\n{% endif %}"
)


def export_hf_tokenizer(tokenizer: SentencePieceTokenizer, output: str | Path) -> list[Path]:
    """Write `tokenizer` in Hugging Face form into `output`; returns the files written."""
    from tokenizers import AddedToken
    from transformers import TokenizersBackend

    output = Path(output)
    pieces = asdict(SPECIAL_TOKENS)
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / MODEL_FILE).write_bytes(tokenizer.model_bytes)
        converted = TokenizersBackend.from_pretrained(
            tmp, pad_token=SPECIAL_TOKENS.pad, add_bos_token=False, add_eos_token=False, chat_template=CHAT_TEMPLATE,
            chat_control_tokens=[], extra_special_tokens=[],
        )
    for key in ("is_local", "local_files_only"):  # left by loading from the temporary folder
        converted.init_kwargs.pop(key, None)
    converted.backend_tokenizer.model.ignore_merges = False
    converted.backend_tokenizer.pre_tokenizer = None  # its split at the user-defined symbols: the added tokens do it
    converted.add_tokens([AddedToken(pieces[role], normalized=False, special=False) for role in USER_DEFINED])
    ids = {role: converted.convert_tokens_to_ids(pieces[role]) for role in SPECIAL_IDS}
    if ids != SPECIAL_IDS:
        raise RuntimeError(f"the converted tokenizer has special ids {ids}, expected {SPECIAL_IDS}")
    written = [Path(p) for p in converted.save_pretrained(output, save_jinja_files=False)]
    # transformers 5 reads special_tokens_map.json but no longer writes it; older readers need it.
    special_map = output / HF_SPECIAL_MAP_FILE
    special_map.write_text(json.dumps(converted.special_tokens_map, indent=2) + "\n", encoding="utf-8")
    return sorted({*written, special_map})


def write_hf_tokenizer(tokenizer_dir: str | Path, output: str | Path) -> list[Path]:
    """The tokenizer of `tokenizer_dir` in Hugging Face form in `output`: ours converted, a Hugging Face one copied."""
    from tokenizer.encode import Tokenizer

    tokenizer = Tokenizer.load(tokenizer_dir)
    if isinstance(tokenizer, SentencePieceTokenizer):
        return export_hf_tokenizer(tokenizer, output)
    tokenizer.save(output)
    return sorted(p for p in Path(output).iterdir() if p.name in HF_FILES)


