"""Our tokenizer exported in Hugging Face form: transformers gives the ids we train with, text and chat alike."""

from __future__ import annotations

import gzip
import json

import pytest
import zstandard

from common.paths import PROJECT_ROOT
from tests.tokenizer import train_tokenizer, write_corpus
from tokenizer.encode import Tokenizer
from tokenizer.hf_export import export_hf_tokenizer
from tokenizer.hf_tokenizer import HFTokenizer

DEMO = PROJECT_ROOT / "data" / "demo"


def demo_documents() -> list[dict]:
    documents = []
    for path in sorted((DEMO / "corpus").iterdir()):
        raw = path.read_bytes()
        text = zstandard.ZstdDecompressor().stream_reader(raw).read() if path.suffix == ".zst" else gzip.decompress(raw)
        documents += [json.loads(line) for line in text.decode("utf-8").splitlines() if line.strip()]
    return [{"id": d["id"], "text": d["text"], "source": d["source"]} for d in documents]


@pytest.fixture(scope="module")
def documents():
    return demo_documents()


@pytest.fixture(scope="module")
def exported(documents, tmp_path_factory):
    """(our tokenizer trained on the demo corpus as the demo trains it, its Hugging Face export folder)."""
    root = tmp_path_factory.mktemp("export")
    train_tokenizer(write_corpus(root / "corpus", documents), root / "ours", vocab_size=4096)
    ours = Tokenizer.load(root / "ours")
    export_hf_tokenizer(ours, root / "hf")
    return ours, root / "hf"


def test_transformers_gives_our_ids_on_every_demo_document(exported, documents):
    from transformers import AutoTokenizer

    ours, folder = exported
    reference = AutoTokenizer.from_pretrained(folder)
    texts = [d["text"] for d in documents]
    assert len(texts) > 6000
    ids = ours.encode_batch(texts)
    assert reference(texts, add_special_tokens=False)["input_ids"] == ids
    assert reference(texts[0])["input_ids"] == ids[0]  # adds no BOS/EOS by default either
    assert [reference.decode(i) for i in ids[:500]] == texts[:500]
    assert {name: reference.convert_tokens_to_ids(piece) for name, piece in
            [("bos", reference.bos_token), ("eos", reference.eos_token), ("pad", reference.pad_token), ("unk", reference.unk_token)]} \
        == {"bos": ours.bos_id, "eos": ours.eos_id, "pad": ours.pad_id, "unk": ours.unk_id}
    assert reference.encode("a <|mdm_mask|> b", add_special_tokens=False) == ours.encode("a <|mdm_mask|> b")


def test_the_exported_chat_template_gives_our_chat_layout(exported):
    from transformers import AutoTokenizer

    ours, folder = exported
    reference = AutoTokenizer.from_pretrained(folder)
    loaded = Tokenizer.load(folder)
    assert isinstance(loaded, HFTokenizer) and loaded.special_tokens == {k: v for k, v in ours.special_tokens.items()}
    dialogues = [json.loads(line)["messages"] for line in (DEMO / "conversations.jsonl").read_text().splitlines()]
    for messages in dialogues:
        history = messages[:-1]
        expected = ours.chat_prompt(history)
        assert reference.apply_chat_template(history, add_generation_prompt=True, return_dict=False) == expected
        assert loaded.chat_prompt(history) == expected
        assert loaded.encode_conversation(messages) == ours.encode_conversation(messages)
