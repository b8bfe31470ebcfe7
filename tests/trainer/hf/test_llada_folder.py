"""A Hugging Face LLaDA folder (weights + tokenizer) where our checkpoints go: loading, checks, sampling."""

import json

import pytest
import torch

from common.config import ConfigError
from tests.trainer.hf import assert_identical_logits, tiny_llada_folder
from tokenizer.encode import Tokenizer
from trainer.checkpoint import load_model, model_fields, tokenizer_mismatch
from trainer.config import SampleConfig
from trainer.hf.load import load_hf_checkpoint


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tiny_llada_folder(tmp_path_factory.mktemp("llada"))


def test_the_folder_loads_as_a_checkpoint_with_its_own_tokenizer(folder):
    tokenizer = Tokenizer.load(folder)
    model = load_model(folder)
    assert model.config.vocab_size == model_fields(folder)["vocab_size"] == 640 > tokenizer.vocab_size == 601
    assert model.transformer.wte.weight.dtype == torch.float32
    assert_identical_logits(model, load_hf_checkpoint(folder, dtype=torch.float32), vocab=tokenizer.vocab_size)
    assert json.loads((folder / "config.json").read_text())["mask_token_id"] == tokenizer.mask_id == 600
    assert tokenizer_mismatch(folder, tokenizer.sha256, tokenizer.vocab_size) is None


def test_a_tokenizer_larger_than_the_embedding_is_named_with_both_numbers(folder):
    assert tokenizer_mismatch(folder, None, 700) == f"the tokenizer has 700 ids, the model in {folder} only 640 embedding rows"


def test_sampling_an_imported_folder_uses_its_tokenizer(folder, tmp_path):
    import shutil

    from trainer.sample import main

    checkpoint = tmp_path / "llada"
    shutil.copytree(folder, checkpoint)
    result = main(SampleConfig(checkpoint=str(checkpoint), tokenizer_dir="", prompt="What does `ls` do?",
                               gen_length=8, block_length=8, steps=8))
    assert isinstance(result["completion"], str) and result["config"]["tokenizer_dir"] == str(checkpoint)
    assert (checkpoint / "samples.jsonl").is_file()
    with pytest.raises(ConfigError, match="input path does not exist: .*none"):
        main(SampleConfig(checkpoint=str(checkpoint), tokenizer_dir=str(tmp_path / "none")))
