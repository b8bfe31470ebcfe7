"""The Tokenizer wrapper: special ids never split, exact round trips, and LLaDA's chat layout."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from common.config import ConfigError
from tests.tokenizer import real_documents, train_tokenizer, write_corpus
from tokenizer.encode import Tokenizer
from tokenizer.specials import SPECIAL_TOKENS


@pytest.fixture(scope="module")
def documents() -> list[dict]:
    return real_documents()


@pytest.fixture(scope="module")
def tokenizer_dir(documents, tmp_path_factory) -> Path:
    corpus = write_corpus(tmp_path_factory.mktemp("corpus"), documents)
    output = tmp_path_factory.mktemp("tokenizer")
    train_tokenizer(corpus, output)
    return output


@pytest.fixture(scope="module")
def tok(tokenizer_dir) -> Tokenizer:
    return Tokenizer.load(tokenizer_dir)


def test_special_ids(tok):
    assert (tok.unk_id, tok.bos_id, tok.eos_id, tok.pad_id) == (0, 1, 2, 3)
    assert (tok.mask_id, tok.eot_id, tok.start_header_id, tok.end_header_id) == (4, 5, 6, 7)
    assert tok.special_tokens == {
        "unk": 0, "bos": 1, "eos": 2, "pad": 3, "mask": 4, "eot": 5, "start_header": 6, "end_header": 7
    }
    assert tok.vocab_size == 1024 and len(tok.sha256) == 64


def test_user_defined_specials_are_one_id_anywhere_in_text(tok):
    for piece, token_id in [
        (SPECIAL_TOKENS.mask, tok.mask_id),
        (SPECIAL_TOKENS.eot, tok.eot_id),
        (SPECIAL_TOKENS.start_header, tok.start_header_id),
        (SPECIAL_TOKENS.end_header, tok.end_header_id),
    ]:
        assert tok.encode(piece) == [token_id]
        ids = tok.encode(f"The answer is{piece}42, not x{piece}{piece}y.")
        assert ids.count(token_id) == 3
        assert tok.decode(ids) == f"The answer is{piece}42, not x{piece}{piece}y."


def test_control_pieces_in_text_are_not_control_ids(tok):
    # "<s>" typed in a document is text, not a BOS: a document cannot forge a sequence boundary.
    ids = tok.encode("<s>hello</s><pad><unk>")
    assert not {tok.bos_id, tok.eos_id, tok.pad_id, tok.unk_id} & set(ids)
    assert tok.decode(ids) == "<s>hello</s><pad><unk>"


@pytest.mark.parametrize(
    "text",
    [
        "Hello, world!",
        "  leading and trailing spaces,  doubled  spaces\t\ttabs  ",
        "def f(x):\n    return x * 2\n\n\nprint(f(21))\n",
        "Zażółć gęślą jaźń. Ünïcödé, 漢字, emoji 🙂, control \x07 and CRLF\r\n",
        "ﬁ ligature and full-width Ａ stay as they are (no NFKC)",
        "",
    ],
)
def test_round_trip(tok, text):
    assert tok.decode(tok.encode(text)) == text


def test_round_trip_real_documents_and_batch_encode(tok, documents):
    texts = [d["text"] for d in documents[::7]]
    batch = tok.encode_batch(texts, num_threads=2)
    assert batch == [tok.encode(t) for t in texts]
    assert [tok.decode(ids) for ids in batch] == texts
    assert tok.unk_id not in {i for ids in batch for i in ids}  # byte fallback spells every character


def test_decode_accepts_numpy_and_drops_control_ids(tok):
    ids = tok.encode("packed text")
    assert tok.decode(np.array([tok.bos_id, *ids, tok.eos_id, tok.pad_id], dtype=np.uint32)) == "packed text"


def test_special_tokens_json_must_match_the_model(tokenizer_dir, tmp_path):
    copy = tmp_path / "tok"
    shutil.copytree(tokenizer_dir, copy)
    specials = json.loads((copy / "special_tokens.json").read_text())
    (copy / "special_tokens.json").write_text(json.dumps({**specials, "mask": 9}))
    with pytest.raises(ConfigError, match="special_tokens.json"):
        Tokenizer.load(copy)
    (copy / "tokenizer.model").write_bytes(b"not a model")
    with pytest.raises(ConfigError, match="tokenizer.model"):
        Tokenizer.load(copy)
    with pytest.raises(ConfigError, match=str(tmp_path / "missing")):
        Tokenizer.load(tmp_path / "missing")


def header(tok, role):
    return [tok.start_header_id, *tok.encode(role), tok.end_header_id, *tok.encode("\n")]


def test_chat_prompt_layout(tok):
    prompt = tok.chat_prompt([{"role": "user", "content": "What is the capital of France?"}])
    assert prompt == [
        tok.bos_id,
        *header(tok, "user"),
        *tok.encode("What is the capital of France?"),
        tok.eot_id,
        *header(tok, "assistant"),
    ]
    assert tok.decode(prompt) == (
        "<|start_header_id|>user<|end_header_id|>\nWhat is the capital of France?<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n"
    )


DIALOGUE = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "Capital of France?"},
    {"role": "assistant", "content": "Paris."},
    {"role": "user", "content": "And of Poland?"},
    {"role": "assistant", "content": "Warsaw."},
    {"role": "user", "content": "Spell it backwards."},
    {"role": "assistant", "content": "wasraW."},
]


def test_conversation_gives_one_pair_per_assistant_turn(tok):
    pairs = tok.encode_conversation(DIALOGUE)
    answers = [m["content"] for m in DIALOGUE if m["role"] == "assistant"]
    assert len(pairs) == 3
    for k, ((prompt, response), answer) in enumerate(zip(pairs, answers)):
        assert response == tok.encode(answer) + [tok.eos_id]
        assert prompt[0] == tok.bos_id and tok.bos_id not in prompt[1:] + response
        assert tok.eos_id not in prompt and response.count(tok.eos_id) == 1
        assert prompt[-len(header(tok, "assistant")) :] == header(tok, "assistant")
        assert answer not in tok.decode(prompt)  # the prompt never holds its own response
        assert all(a in tok.decode(prompt) for a in answers[:k])  # but holds the earlier ones
    # Each later prompt extends the earlier pair: its response closed with <eot> instead of EOS.
    (p0, r0), (p1, _), _ = pairs
    assert p1[: len(p0) + len(r0)] == p0 + r0[:-1] + [tok.eot_id]
    assert tok.chat_pair(DIALOGUE) == pairs[-1]
    assert tok.chat_prompt(DIALOGUE[:-1]) == pairs[-1][0]


@pytest.mark.parametrize(
    "messages, error",
    [
        ([{"role": "user", "content": "hi"}], "no assistant turn"),
        ([{"role": "assistant", "content": "hi"}], "nothing before it"),
        ([{"role": "user"}, {"role": "assistant", "content": "x"}], "message 0"),
        ([{"content": "hi"}, {"role": "assistant", "content": "x"}], "message 0"),
    ],
)
def test_bad_conversations_are_rejected(tok, messages, error):
    with pytest.raises(ValueError, match=error):
        tok.encode_conversation(messages)
