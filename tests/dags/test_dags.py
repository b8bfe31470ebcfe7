"""The DAG files: they parse, import nothing heavy, and their Params make valid job configs."""

import json
import os
import subprocess
import sys

import pytest

from stack import airflow_home
from orchestration.airflow_params import CHAINED_FIELDS, overrides_from
from common.config import from_dict, json_schema
from common.paths import PROJECT_ROOT
from pipelines.config import CorpusBuildConfig
from pipelines.fuzzy_dedup_config import FuzzyDedupConfig
from pipelines.sft_shards_config import SFTShardsConfig
from pipelines.token_config import TokenShardsConfig
from tokenizer.config import TokenizerConfig
from trainer.config import EvaluateConfig, PretrainConfig, SampleConfig, SFTConfig

DAG_FILES = ["corpus_build", "pretrain", "sft", "evaluate"]


@pytest.fixture(scope="module")
def dags():
    airflow_home.configure()
    return airflow_home.load_dags()


def test_dagbag_has_the_three_dags_and_their_tasks(dags):
    assert set(DAG_FILES) <= set(dags)
    assert {t.task_id for t in dags["corpus_build"].tasks} == {"claim_version", "clean_and_dedup", "fuzzy_dedup", "train_tokenizer",
                                                              "write_token_shards", "publish_version"}
    assert dags["corpus_build"].get_task("clean_and_dedup").upstream_task_ids == {"claim_version"}
    assert dags["corpus_build"].get_task("publish_version").upstream_task_ids == {"write_token_shards"}
    assert dags["corpus_build"].get_task("train_tokenizer").upstream_task_ids == {"fuzzy_dedup"}
    assert dags["corpus_build"].get_task("fuzzy_dedup").upstream_task_ids == {"clean_and_dedup"}
    assert {t.task_id for t in dags["pretrain"].tasks} == {"train"}
    assert {t.task_id for t in dags["sft"].tasks} == {"tokenize_conversations", "finetune", "sample", "evaluate"}
    assert dags["sft"].get_task("evaluate").upstream_task_ids == {"finetune"}
    assert {t.task_id for t in dags["evaluate"].tasks} == {"run_tasks"}
    assert dags["sft"].get_task("finetune").upstream_task_ids == {"tokenize_conversations"}
    assert dags["corpus_build"].get_task("write_token_shards").upstream_task_ids == {"train_tokenizer"}


def test_every_job_task_is_a_deferrable_ray_job_and_no_two_runs_share_a_work_dir(dags):
    from orchestration.ray_job_operator import RayJobOperator

    for name in DAG_FILES:
        assert dags[name].max_active_runs == 1
        for task in dags[name].tasks:
            if task.task_id in ("claim_version", "publish_version"):  # the corpus version's bookends: file moves
                continue
            assert isinstance(task, RayJobOperator) and task.deferrable, (name, task.task_id)
    # the corpus jobs write the run's corpus version; pretraining reads a complete one
    assert {t.corpus for t in dags["corpus_build"].tasks if isinstance(t, RayJobOperator)} == {"write"}
    assert dags["pretrain"].get_task("train").corpus == "read"
    assert {t.corpus for t in dags["sft"].tasks} == {None}
    modules = {t.task_id: t.module for t in dags["sft"].tasks}
    assert modules == {"tokenize_conversations": "pipelines.sft_shards", "finetune": "trainer.sft", "sample": "trainer.sample",
                       "evaluate": "trainer.evaluate"}


@pytest.mark.parametrize("name", DAG_FILES)
def test_dag_file_imports_no_torch_or_ray(name, tmp_path):
    code = (
        "import runpy, sys, time, airflow.sdk; t = time.perf_counter(); "
        f"runpy.run_path({str(PROJECT_ROOT / 'dags' / (name + '.py'))!r}); "
        "print(json.dumps({'seconds': time.perf_counter() - t, "
        "'heavy': sorted(m for m in ('torch', 'ray', 'deepspeed', 'mlflow', 'pyarrow') if m in sys.modules)}))"
    )
    env = {"AIRFLOW_HOME": str(tmp_path), "AIRFLOW__CORE__LOAD_EXAMPLES": "False", "PATH": "/usr/bin:/bin"}
    result = subprocess.run([sys.executable, "-c", "import json; " + code], capture_output=True, text=True, env=env, cwd=PROJECT_ROOT)
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["heavy"] == []
    print(f"{name}: parsed in {report['seconds']:.3f}s (airflow itself already imported)")


def _check_params_build_configs(dag, jobs):
    defaults = {key: param.value for key, param in dag.params.items()}
    for prefix, config_cls in jobs:
        values = overrides_from(defaults, config_cls, prefix=prefix, exclude=CHAINED_FIELDS)
        assert set(values) == set(json_schema(config_cls)) - set(CHAINED_FIELDS)
        from_dict(config_cls, values)  # defaults from the form are a valid config


def test_params_are_typed_and_make_valid_configs(dags):
    _check_params_build_configs(dags["corpus_build"], [("corpus.", CorpusBuildConfig), ("fuzzy.", FuzzyDedupConfig), ("tokenizer.", TokenizerConfig), ("tokens.", TokenShardsConfig)])
    _check_params_build_configs(dags["pretrain"], [("", PretrainConfig)])
    _check_params_build_configs(dags["sft"], [("pairs.", SFTShardsConfig), ("", SFTConfig), ("sample.", SampleConfig), ("eval.", EvaluateConfig)])
    _check_params_build_configs(dags["evaluate"], [("", EvaluateConfig)])
    tasks = dags["evaluate"].params.get_param("tasks")
    assert tasks.value == ["demo_cloze"] and tasks.schema["type"] == "array"
    assert dags["evaluate"].params.get_param("limit").schema["type"] == ["integer", "null"]
    steps = dags["pretrain"].params.get_param("steps")
    assert steps.schema["type"] == "integer" and steps.description


def test_fixed_values_are_dropdowns(dags):
    params = dags["corpus_build"].params
    assert params.get_param("corpus.survivor").schema["enum"] == ["input_order", "longest", "source_rank"]
    assert params.get_param("fuzzy.preset").schema["enum"] == ["fineweb", "nemo", "custom"]
    assert params.get_param("fuzzy.shingle").schema["enum"] == ["word", "char", None]
    assert dags["pretrain"].params.get_param("zero_stage").schema["enum"] == [0, 1, 2, 3]
    assert dags["sft"].params.get_param("sample.cache").schema["enum"] == ["none", "prefix", "dual"]
    assert dags["evaluate"].params.get_param("stage").schema["enum"] == ["sft", "pretrain"]


def test_the_work_folder_says_what_each_dag_reads_and_writes(dags):
    version = "corpora/<corpus_name>/<version>/"
    assert (f"Writes {version}corpus/, {version}corpus_fuzzy/, {version}tokenizer/, {version}tokens/"
            in dags["corpus_build"].params.get_param("work_dir").description)
    assert dags["pretrain"].params.get_param("work_dir").description.startswith(f"Reads {version}tokens/; writes pretrain/")
    assert dags["sft"].params.get_param("work_dir").description.startswith("Reads pretrain/; writes sft_tokens/, sft/")
    assert dags["corpus_build"].params["corpus_version"] == "" and dags["pretrain"].params["corpus_version"] == "latest"
    assert dags["corpus_build"].params["corpus_name"] == dags["pretrain"].params["corpus_name"] == "main"


def test_stages_write_assets_and_schedules_come_from_the_settings(dags, tmp_path):
    """By default corpus_build is manual and nothing is chained; a settings file (or LLADA_* variables)
    schedules the build and chains pretrain on the tokens asset, sft on the pretrain checkpoint."""
    from orchestration.assets import CORPUS, PRETRAIN_CHECKPOINT, SFT_CHECKPOINT, TOKENS

    assert all(dags[name].schedule is None for name in DAG_FILES)
    # a corpus version's assets are recorded once it is sealed, so a pretraining they start finds it complete
    assert dags["corpus_build"].get_task("publish_version").outlets == [CORPUS, TOKENS]
    assert not dags["corpus_build"].get_task("write_token_shards").outlets
    assert dags["pretrain"].get_task("train").outlets == [PRETRAIN_CHECKPOINT]
    assert dags["sft"].get_task("finetune").outlets == [SFT_CHECKPOINT]

    settings = tmp_path / "settings.toml"
    settings.write_text('corpus_build_schedule = "0 2 * * 6"\nchain_on_assets = true\n')
    code = ("import json; from stack import airflow_home; airflow_home.configure(); dags = airflow_home.load_dags(); "
            "print(json.dumps({name: [dags[name].schedule if isinstance(dags[name].schedule, str) else None, "
            "type(dags[name].timetable).__name__, [a.name for a in getattr(getattr(dags[name].timetable, 'asset_condition', None), "
            "'objects', ())]] for name in ('corpus_build', 'pretrain', 'sft')}))")
    env = {**os.environ, "LLADA_SETTINGS": str(settings), "AIRFLOW_HOME": str(tmp_path / "airflow")}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=PROJECT_ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    timetables = json.loads(result.stdout.strip().splitlines()[-1])
    assert timetables["corpus_build"] == ["0 2 * * 6", "CronTriggerTimetable", []]
    assert timetables["pretrain"] == [None, "AssetTriggeredTimetable", [TOKENS.name]]
    assert timetables["sft"] == [None, "AssetTriggeredTimetable", [PRETRAIN_CHECKPOINT.name]]



def test_a_settings_variable_wins_over_the_file_and_unknown_settings_are_named(tmp_path, monkeypatch):
    from orchestration.settings import load_settings

    settings = tmp_path / "settings.toml"
    settings.write_text('corpus_build_schedule = "@daily"\nchain_on_assets = true\n')
    monkeypatch.setenv("LLADA_SETTINGS", str(settings))
    monkeypatch.setenv("LLADA_CHAIN_ON_ASSETS", "false")
    assert load_settings() == {"corpus_build_schedule": "@daily", "chain_on_assets": False}
    settings.write_text('chain_on_asset = true\n')
    with pytest.raises(ValueError, match=r"settings.toml: unknown settings \['chain_on_asset'\]"):
        load_settings()
