"""The special tokens of the tokenizer: their pieces, their fixed ids, and how SentencePiece is told.

LLaDA needs a mask token for the forward process, BOS/EOS for documents and responses, and the
Llama-3-style chat markers of its instruct layout (docs/SPEC-diffusion.md, "SFT loss"):
`<BOS><start_header>user<end_header>\\n{text}<eot><start_header>assistant<end_header>\\n{text}<EOS>`.

unk/bos/eos/pad are SentencePiece's own reserved pieces (control symbols: never produced from text,
so a document cannot forge a BOS). The other four are user-defined symbols: SentencePiece gives them
the next ids in order and always matches them whole, so "<|mdm_mask|>" in any text is one id.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class SpecialTokens:
    """Piece strings of the special tokens (the field order below is the id order, 0..7)."""

    unk: str = "<unk>"
    bos: str = "<s>"
    eos: str = "</s>"
    pad: str = "<pad>"
    mask: str = "<|mdm_mask|>"
    eot: str = "<|eot_id|>"
    start_header: str = "<|start_header_id|>"
    end_header: str = "<|end_header_id|>"


SPECIAL_TOKENS = SpecialTokens()

# Ids SentencePiece gives the pieces when trained with `trainer_options()`.
SPECIAL_IDS: dict[str, int] = {name: i for i, name in enumerate(asdict(SPECIAL_TOKENS))}

_RESERVED = ("unk", "bos", "eos", "pad")
_USER_DEFINED = ("mask", "eot", "start_header", "end_header")


def trainer_options() -> dict[str, Any]:
    """SentencePieceTrainer options that fix the special pieces to the ids of SPECIAL_IDS."""
    pieces = asdict(SPECIAL_TOKENS)
    options: dict[str, Any] = {}
    for name in _RESERVED:
        options[f"{name}_id"] = SPECIAL_IDS[name]
        options[f"{name}_piece"] = pieces[name]
    options["user_defined_symbols"] = [pieces[name] for name in _USER_DEFINED]
    return options


def special_ids(processor: Any) -> dict[str, int]:
    """Ids of the special pieces in a loaded SentencePieceProcessor; raises if one is not where expected."""
    ids = {name: processor.piece_to_id(piece) for name, piece in asdict(SPECIAL_TOKENS).items()}
    if ids != SPECIAL_IDS:
        wrong = {name: ids[name] for name in ids if ids[name] != SPECIAL_IDS[name]}
        raise ValueError(f"tokenizer model has special ids {wrong}, expected {SPECIAL_IDS}")
    return ids
