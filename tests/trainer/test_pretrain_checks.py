"""What trainer.pretrain checks on the driver, before any worker starts: validation splits, the init
checkpoint's shape, paths made absolute; and its fingerprint (what a resume must share)."""

import numpy as np
import pytest

from common.config import ConfigError, from_dict
from formats.token_shards import VALIDATION_DIR
from tests.formats import write_token_folder
from trainer.config import PretrainConfig
from trainer.pretrain import check_data, fingerprint


def folder(root, *, validation: bool):
    rows = np.arange(40 * 8, dtype=np.uint32).reshape(40, 8) % 900
    write_token_folder(root, [{"en": rows[:30], "pl": rows[30:]}])
    if validation:
        write_token_folder(root / VALIDATION_DIR, [{"en": rows[:4]}])
    return root


def test_a_folder_without_validation_sequences_is_refused_unless_validation_is_off(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    folder(tmp_path / "tokens", validation=False)
    with pytest.raises(ConfigError, match=r"tokens has no validation sequences .*validation_fraction > 0, or set val_sequences=0"):
        check_data(from_dict(PretrainConfig, {"tokens_dir": "tokens"}))
    config = from_dict(PretrainConfig, {"tokens_dir": "tokens", "val_sequences": 0})
    assert check_data(config)["sequences"] == {str(tmp_path / "tokens"): 40}
    assert config.tokens_dir == str(tmp_path / "tokens")  # absolute: the workers and the fingerprint see one path


def test_a_mixture_is_resolved_and_fingerprinted_with_its_sources(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    folder(tmp_path / "tokens", validation=True)
    config = from_dict(PretrainConfig, {"mixture": {"tokens:en": 3, "tokens:pl": 1}})
    data = check_data(config)
    assert config.mixture == {f"{tmp_path / 'tokens'}:en": 3, f"{tmp_path / 'tokens'}:pl": 1}
    print_ = fingerprint(config, data)
    assert print_["mixture"] == {f"{tmp_path / 'tokens'}:en": 0.75, f"{tmp_path / 'tokens'}:pl": 0.25}
    assert print_["sources"] == sorted(config.mixture) and print_["seq_len"] == 8
    assert fingerprint(from_dict(PretrainConfig, {**vars(config), "shuffle_block": 64}), data) != print_


def test_an_init_checkpoint_must_be_a_complete_export_of_the_presets_shape(tmp_path, monkeypatch):
    from trainer.checkpoint import save_model
    from trainer.model import MaskPredictor
    from trainer.model_config import model_config

    monkeypatch.chdir(tmp_path)
    folder(tmp_path / "tokens", validation=True)
    save_model(MaskPredictor(model_config("tiny", vocab_size=1000)), tmp_path / "stable")
    save_model(MaskPredictor(model_config("tiny", vocab_size=1000, n_layers=2)), tmp_path / "other")
    check_data(from_dict(PretrainConfig, {"tokens_dir": "tokens", "init_checkpoint": "stable"}))
    from formats.checkpoint import write_tokenizer_ref

    write_tokenizer_ref(tmp_path / "stable", "e" * 64, 1000)  # trained with another tokenizer of the same size
    with pytest.raises(ConfigError, match=r"stable does not go with these token shards: .*trained with the tokenizer of sha256 e{64}"):
        check_data(from_dict(PretrainConfig, {"tokens_dir": "tokens", "init_checkpoint": "stable"}))
    write_tokenizer_ref(tmp_path / "stable", "0" * 64, 1000)
    with pytest.raises(ConfigError, match=r"other has another shape: n_layers 2 \(model=tiny over these shards: 4\)"):
        check_data(from_dict(PretrainConfig, {"tokens_dir": "tokens", "init_checkpoint": "other"}))
    (tmp_path / "stable" / "complete.json").unlink()
    with pytest.raises(ConfigError, match="stable has no complete.json"):
        check_data(from_dict(PretrainConfig, {"tokens_dir": "tokens", "init_checkpoint": "stable"}))


def test_fewer_sequences_than_one_global_batch_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    folder(tmp_path / "tokens", validation=True)  # 40 sequences
    check_data(from_dict(PretrainConfig, {"tokens_dir": "tokens", "micro_batch_size": 8, "grad_accum_steps": 5}))
    with pytest.raises(ConfigError, match="the data holds 40 sequences, fewer than one global batch of 48"):
        check_data(from_dict(PretrainConfig, {"tokens_dir": "tokens", "micro_batch_size": 8, "grad_accum_steps": 6}))


def test_a_hugging_face_llada_folder_can_start_pretraining_if_its_embedding_covers_the_vocabulary(tmp_path, monkeypatch):
    from tests.trainer.hf import random_model, tiny_llada_folder
    from trainer.hf.export import export_hf_checkpoint
    from trainer.model_config import model_config

    monkeypatch.chdir(tmp_path)
    folder(tmp_path / "tokens", validation=True)  # 1,000 token ids
    export_hf_checkpoint(random_model(model_config("tiny", vocab_size=1024)), tmp_path / "llada")
    check_data(from_dict(PretrainConfig, {"tokens_dir": "tokens", "init_checkpoint": "llada"}))
    tiny_llada_folder(tmp_path / "small")  # 640 embedding rows
    with pytest.raises(ConfigError, match=r"the tokenizer has 1000 ids, the model in .*small only 640 embedding rows"):
        check_data(from_dict(PretrainConfig, {"tokens_dir": "tokens", "init_checkpoint": "small"}))
