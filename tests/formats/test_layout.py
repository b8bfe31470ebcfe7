"""The build layout: the one table the DAGs chain their tasks with and the configs take defaults from."""

from __future__ import annotations

import dataclasses

import pytest

from formats.layout import CHAINED_FIELDS, JOB_FOLDERS, default_folder, folder, job_folders
from pipelines.config import CorpusBuildConfig
from pipelines.fuzzy_dedup_config import FuzzyDedupConfig
from pipelines.sft_shards_config import SFTShardsConfig
from pipelines.token_config import TokenShardsConfig
from tokenizer.config import TokenizerConfig
from trainer.config import EvaluateConfig, PretrainConfig, SampleConfig, SFTConfig

CONFIGS = {
    "pipelines.corpus_build": CorpusBuildConfig,
    "pipelines.fuzzy_dedup": FuzzyDedupConfig,
    "tokenizer.train": TokenizerConfig,
    "pipelines.token_shards": TokenShardsConfig,
    "trainer.pretrain": PretrainConfig,
    "pipelines.sft_shards": SFTShardsConfig,
    "trainer.sft": SFTConfig,
    "trainer.sample": SampleConfig,
    "trainer.evaluate": EvaluateConfig,
}


@pytest.mark.parametrize("job", JOB_FOLDERS)
def test_every_config_defaults_to_its_folders_under_out(job):
    config = CONFIGS[job]()
    fields = {f.name for f in dataclasses.fields(config)}
    assert set(JOB_FOLDERS[job]) <= fields
    assert {name: getattr(config, name) for name in JOB_FOLDERS[job]} == job_folders(job, "out")


def test_each_output_is_the_next_jobs_input():
    assert job_folders("pipelines.fuzzy_dedup", "w")["corpus_dir"] == job_folders("pipelines.corpus_build", "w")["output_dir"]
    assert job_folders("pipelines.token_shards", "w")["tokenizer_dir"] == job_folders("tokenizer.train", "w")["output_dir"]
    assert job_folders("trainer.pretrain", "w")["tokens_dir"] == job_folders("pipelines.token_shards", "w")["output_dir"]
    assert job_folders("trainer.sft", "w")["init_checkpoint"] == job_folders("trainer.pretrain", "w")["output_dir"]
    assert job_folders("trainer.sft", "w")["sft_tokens_dir"] == job_folders("pipelines.sft_shards", "w")["output_dir"] == "w/sft_tokens"
    assert job_folders("trainer.sample", "w")["checkpoint"] == "w/sft" == default_folder("trainer.sft", "output_dir").replace("out", "w")
    # SFT pairs are tokenized with the tokenizer inside the checkpoint they fine-tune
    assert job_folders("pipelines.sft_shards", "w")["tokenizer_dir"] == job_folders("trainer.pretrain", "w")["output_dir"]
    assert set(CHAINED_FIELDS) == {"output_dir", "corpus_dir", "tokenizer_dir", "tokens_dir", "sft_tokens_dir", "init_checkpoint",
                                  "checkpoint", "corpus"}


def test_corpus_folders_come_from_the_corpus_version_and_training_folders_from_the_work_dir():
    version = "w/corpora/main/v1"
    assert job_folders("pipelines.token_shards", "w", version) == {
        "corpus_dir": f"{version}/corpus_fuzzy", "tokenizer_dir": f"{version}/tokenizer", "output_dir": f"{version}/tokens"}
    assert job_folders("trainer.pretrain", "w", version) == {"tokens_dir": f"{version}/tokens", "output_dir": "w/pretrain"}


def test_an_unknown_folder_is_named():
    with pytest.raises(KeyError, match="no build folder 'tokens_v2'"):
        folder("tokens_v2")
