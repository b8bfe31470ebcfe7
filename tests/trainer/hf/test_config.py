import json

import pytest

from common.config import ConfigError
from tests.trainer.hf import VOCAB, assert_identical_logits, gqa_config, random_model
from trainer.hf.config import read_hf_config
from trainer.hf.export import export_hf_checkpoint
from trainer.hf.load import load_hf_checkpoint

# GSAI-ML/LLaDA-8B-Instruct's config.json as released (keys and architecture values).
RELEASED_LLADA_8B_CONFIG = {
    "activation_type": "silu", "alibi": False, "alibi_bias_max": 8.0, "architectures": ["LLaDAModelLM"],
    "attention_dropout": 0.0, "attention_layer_norm": False, "attention_layer_norm_with_affine": True,
    "auto_map": {
        "AutoConfig": "configuration_llada.LLaDAConfig",
        "AutoModelForCausalLM": "modeling_llada.LLaDAModelLM",
        "AutoModel": "modeling_llada.LLaDAModelLM",
    },
    "bias_for_layer_norm": False, "block_group_size": 1, "block_type": "llama", "d_model": 4096,
    "embedding_dropout": 0.0, "embedding_size": 126464, "eos_token_id": 126081, "flash_attention": False,
    "include_bias": False, "include_qkv_bias": False, "init_cutoff_factor": None, "init_device": "meta",
    "init_fn": "mitchell", "init_std": 0.02, "input_emb_norm": False, "layer_norm_type": "rms",
    "layer_norm_with_affine": True, "mask_token_id": 126336, "max_sequence_length": 4096, "mlp_hidden_size": 12288,
    "mlp_ratio": 4, "model_type": "llada", "multi_query_attention": None, "n_heads": 32, "n_kv_heads": 32,
    "n_layers": 32, "pad_token_id": 126081, "precision": "amp_bf16", "residual_dropout": 0.0, "rms_norm_eps": 1e-05,
    "rope": True, "rope_full_precision": True, "rope_theta": 500000.0, "scale_logits": False,
    "transformers_version": "4.46.3", "use_cache": False, "vocab_size": 126464, "weight_tying": False,
}
ARCHITECTURE_KEYS = (
    "activation_type", "alibi", "block_type", "block_group_size", "include_bias", "include_qkv_bias",
    "bias_for_layer_norm", "input_emb_norm", "attention_layer_norm", "layer_norm_type", "layer_norm_with_affine",
    "rope", "rope_full_precision", "scale_logits", "weight_tying", "model_type", "architectures", "auto_map",
)


def test_embedding_size_larger_than_vocab_keeps_every_row(tmp_path):
    # LLaDA pads wte and ff_out to embedding_size and returns logits over all rows; so do we.
    model = random_model(gqa_config())
    export_hf_checkpoint(model, tmp_path, extra_config={"vocab_size": 250, "mask_token_id": 249, "eos_token_id": 1})
    config = json.loads((tmp_path / "config.json").read_text())
    assert (config["vocab_size"], config["embedding_size"]) == (250, VOCAB)
    info = read_hf_config(tmp_path)
    assert info.vocab_size == 250 and info.model_config.vocab_size == VOCAB
    assert info.special_token_ids == {"mask_token_id": 249, "eos_token_id": 1}
    loaded = load_hf_checkpoint(tmp_path)
    assert loaded.transformer.ff_out.weight.shape == (VOCAB, 32)
    assert_identical_logits(model, loaded, vocab=250)

    config["embedding_size"] = 200  # fewer rows than the vocabulary
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ConfigError, match="embedding_size=200 is smaller than vocab_size=250"):
        read_hf_config(tmp_path)


def test_exported_config_has_llada_field_names(tmp_path):
    model = random_model(gqa_config())
    export_hf_checkpoint(model, tmp_path, extra_config={"mask_token_id": 255, "eos_token_id": 2, "pad_token_id": 2})
    config = json.loads((tmp_path / "config.json").read_text())
    # Every field of the released config, except the version stamp of the transformers that wrote it.
    assert set(RELEASED_LLADA_8B_CONFIG) - {"transformers_version"} <= set(config)
    for key in ARCHITECTURE_KEYS:
        assert config[key] == RELEASED_LLADA_8B_CONFIG[key], key
    assert (config["d_model"], config["n_heads"], config["n_kv_heads"], config["n_layers"]) == (32, 4, 2, 2)
    assert (config["mlp_hidden_size"], config["embedding_size"], config["vocab_size"]) == (64, VOCAB, VOCAB)
    assert (config["rope_theta"], config["rms_norm_eps"]) == (500000.0, 1e-5)
    assert config["mask_token_id"] == 255 and config["architectures"] == ["LLaDAModelLM"]


def test_released_8b_config_maps_to_the_llada_8b_preset(tmp_path):
    from trainer.model_config import llada_8b

    (tmp_path / "config.json").write_text(json.dumps(RELEASED_LLADA_8B_CONFIG))
    info = read_hf_config(tmp_path)
    assert info.model_config == llada_8b()
    assert info.special_token_ids == {"mask_token_id": 126336, "eos_token_id": 126081, "pad_token_id": 126081}


@pytest.mark.parametrize(
    "key, value",
    [
        ("weight_tying", True),
        ("include_bias", True),
        ("alibi", True),
        ("layer_norm_type", "default"),
        ("activation_type", "swiglu"),
        ("block_type", "sequential"),
        ("scale_logits", True),
    ],
)
def test_config_we_cannot_compute_is_refused_naming_the_key(tmp_path, key, value):
    config = {**RELEASED_LLADA_8B_CONFIG, key: value}
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ConfigError, match=rf"config\.json: {key}={json.dumps(value)} cannot be loaded"):
        read_hf_config(tmp_path)


def test_absent_key_takes_llada_default(tmp_path):
    # LLaDA's configuration code ties the head when weight_tying is absent; we refuse, saying so.
    config = {k: v for k, v in RELEASED_LLADA_8B_CONFIG.items() if k != "weight_tying"}
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ConfigError, match="weight_tying=true .LLaDA's default when the key is absent."):
        read_hf_config(tmp_path)
