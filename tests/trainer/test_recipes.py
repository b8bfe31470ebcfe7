"""Recipes by name on the command line, overrides on top; global_batch_size fixes the batch across worker counts."""

import json

import pytest

from common.cli import run_job
from common.config import ConfigError, from_dict
from trainer.config import PretrainConfig, SFTConfig
from trainer.recipes import RECIPES, SFT_RECIPES


def resolved(cls, argv, recipes, capsys) -> dict:
    assert run_job(cls, lambda config: None, [*argv, "--dry-run"], recipes=recipes) == 0
    return json.loads(capsys.readouterr().out)


def test_a_recipe_is_the_base_and_overrides_win(capsys):
    config = resolved(PretrainConfig, ["recipe=llada_8b", "num_workers=64", "steps=1000"], RECIPES, capsys)
    assert (config["model"], config["global_batch_size"], config["micro_batch_size"]) == ("llada_8b", 1280, 4)
    assert config["grad_accum_steps"] == 5  # 1280 / (4 x 64)
    assert config["steps"] == 1000 and config["lr"] == 4e-4 and config["lr_schedule_unit"] == "tokens" and config["precision"] == "bf16"
    assert resolved(PretrainConfig, ["recipe=llada_1b"], RECIPES, capsys)["model"] == "llada_1b"
    sft = resolved(SFTConfig, ["recipe=llada_8b", "num_workers=8"], SFT_RECIPES, capsys)
    assert (sft["lr"], sft["warmup_steps"], sft["global_batch_size"], sft["grad_accum_steps"]) == (2.5e-5, 50, 256, 8)


def test_an_unknown_recipe_names_the_known_ones(capsys):
    assert run_job(PretrainConfig, lambda config: None, ["recipe=llada_70b", "--dry-run"], recipes=RECIPES) == 2
    assert "unknown recipe 'llada_70b'; recipes: tiny, llada_1b, llada_8b" in capsys.readouterr().err


def test_global_batch_size_sets_the_accumulation_or_is_refused():
    config = from_dict(PretrainConfig, {"global_batch_size": 32, "micro_batch_size": 4, "num_workers": 2})
    assert config.grad_accum_steps == 4 and config.global_batch == 32
    assert from_dict(PretrainConfig, {"global_batch_size": 32, "micro_batch_size": 4, "num_workers": 1}).grad_accum_steps == 8
    with pytest.raises(ConfigError, match="global_batch_size=30 must be a multiple of micro_batch_size x num_workers = 4 x 2"):
        from_dict(PretrainConfig, {"global_batch_size": 30, "micro_batch_size": 4, "num_workers": 2})
    with pytest.raises(ConfigError, match="lr .* must be at least the largest lr of lr_schedule"):
        from_dict(PretrainConfig, {"lr": 1e-4, "lr_schedule": [[0, 0], [0.5, 4e-4]]})
