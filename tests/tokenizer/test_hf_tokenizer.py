"""A Hugging Face tokenizer folder behind our interface: roles by name, LLaDA's chat template as transformers applies it."""

from __future__ import annotations

import json
import shutil

import pytest

from common.config import ConfigError
from common.paths import PROJECT_ROOT
from tests.tokenizer import llada_style_tokenizer
from tokenizer.encode import Tokenizer
from tokenizer.hf_tokenizer import HFTokenizer

DEMO = PROJECT_ROOT / "data" / "demo" / "conversations.jsonl"


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return llada_style_tokenizer(tmp_path_factory.mktemp("llada-tokenizer"))


@pytest.fixture(scope="module")
def tok(folder) -> HFTokenizer:
    return Tokenizer.load(folder)


def dialogues() -> list[list[dict]]:
    return [json.loads(line)["messages"] for line in DEMO.read_text().splitlines()]


def test_special_ids_come_by_role_from_the_files(tok, folder):
    backend = json.loads((folder / "tokenizer.json").read_text())
    by_name = {t["content"]: t["id"] for t in backend["added_tokens"]}
    assert isinstance(tok, HFTokenizer)
    assert tok.special_tokens == {
        "bos": by_name["<|startoftext|>"], "eos": by_name["<|endoftext|>"], "pad": by_name["<|endoftext|>"],
        "mask": by_name["<|mdm_mask|>"], "eot": by_name["<|eot_id|>"],
        "start_header": by_name["<|start_header_id|>"], "end_header": by_name["<|end_header_id|>"],
    }
    assert tok.mask_id == tok.vocab_size - 1 != 4  # not our fixed id
    assert tok.encode("a <|mdm_mask|> b").count(tok.mask_id) == 1


def test_chat_template_gives_the_layout_sft_trains_on_and_transformers_ids(tok, folder):
    from transformers import AutoTokenizer

    reference = AutoTokenizer.from_pretrained(folder)
    checked = 0
    for messages in dialogues():
        for end in range(1, len(messages) + 1, 2):
            history = messages[:end]
            prompt = tok.chat_prompt(history)
            # LLaDA's template: our layout with "\n\n" after each header.
            assert prompt == tok.layout_prompt(history, header_separator="\n\n")
            assert prompt == list(reference.apply_chat_template(history, add_generation_prompt=True)["input_ids"])
            checked += 1
    assert checked >= 100
    pairs = tok.encode_conversation(messages)
    assert [p for p, _ in pairs] == [tok.chat_prompt(messages[:i]) for i, m in enumerate(messages) if m["role"] == "assistant"]
    assert all(r[-1] == tok.eos_id for _, r in pairs)


def test_text_round_trips_and_matches_transformers(tok, folder):
    from transformers import AutoTokenizer

    reference = AutoTokenizer.from_pretrained(folder)
    texts = [m["content"] for messages in dialogues() for m in messages]
    batch = tok.encode_batch(texts)
    for text, ids in zip(texts, batch):
        assert ids == tok.encode(text) == reference.encode(text, add_special_tokens=False)
        assert tok.decode(ids) == text
    assert tok.decode([tok.bos_id, *batch[0], tok.eos_id, tok.pad_id]) == texts[0]


def test_save_and_load_keep_the_vocabulary(tok, tmp_path):
    tok.save(tmp_path)
    again = Tokenizer.load(tmp_path)
    assert again.sha256 == tok.sha256 and again.special_tokens == tok.special_tokens


def test_a_missing_role_or_a_disagreeing_model_config_is_named(folder, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(folder, broken)
    config = json.loads((broken / "tokenizer_config.json").read_text())
    (broken / "tokenizer_config.json").write_text(json.dumps({**config, "bos_token": "<|no_such_token|>"}))
    with pytest.raises(ConfigError, match=r"the bos token '<\|no_such_token\|>' is not in tokenizer.json"):
        Tokenizer.load(broken)
    (broken / "tokenizer_config.json").write_text(json.dumps({**config, "eot_token": "<|endoftext|>"}))
    renamed = Tokenizer.load(broken)  # a role named in the config wins over LLaDA's name for it
    assert renamed.eot_id == renamed.eos_id != Tokenizer.load(folder).eot_id
    backend = json.loads((folder / "tokenizer.json").read_text())
    backend["added_tokens"] = [t for t in backend["added_tokens"] if t["content"] != "<|eot_id|>"]
    del backend["model"]["vocab"]["<|eot_id|>"]
    (broken / "tokenizer.json").write_text(json.dumps(backend))
    (broken / "tokenizer_config.json").write_text(json.dumps(config))
    with pytest.raises(ConfigError, match=r"no special token for eot \(looked for <\|eot_id\|>\)"):
        Tokenizer.load(broken)

    model_folder = tmp_path / "model"
    shutil.copytree(folder, model_folder)
    (model_folder / "config.json").write_text(json.dumps({"model_type": "llada", "mask_token_id": 126336}))
    with pytest.raises(ConfigError, match=r"config.json says mask_token_id=126336, but the tokenizer's mask token"):
        Tokenizer.load(model_folder)
    with pytest.raises(ConfigError, match="holds no tokenizer"):
        Tokenizer.load(tmp_path)
