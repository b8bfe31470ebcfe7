"""The DAG files: they parse, import nothing heavy, and their Params make valid job configs."""

import json
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
    assert {t.task_id for t in dags["corpus_build"].tasks} == {"clean_and_dedup", "fuzzy_dedup", "train_tokenizer", "write_token_shards"}
    assert dags["corpus_build"].get_task("train_tokenizer").upstream_task_ids == {"fuzzy_dedup"}
    assert dags["corpus_build"].get_task("fuzzy_dedup").upstream_task_ids == {"clean_and_dedup"}
    assert {t.task_id for t in dags["pretrain"].tasks} == {"train"}
    assert {t.task_id for t in dags["sft"].tasks} == {"tokenize_conversations", "finetune", "sample", "evaluate"}
    assert dags["sft"].get_task("evaluate").upstream_task_ids == {"finetune"}
    assert {t.task_id for t in dags["evaluate"].tasks} == {"run_tasks"}
    assert dags["sft"].get_task("finetune").upstream_task_ids == {"tokenize_conversations"}
    assert dags["corpus_build"].get_task("write_token_shards").upstream_task_ids == {"train_tokenizer"}


def test_every_task_is_a_deferrable_ray_job_and_no_two_runs_share_a_work_dir(dags):
    from orchestration.ray_job_operator import RayJobOperator

    for name in DAG_FILES:
        assert dags[name].max_active_runs == 1
        for task in dags[name].tasks:
            assert isinstance(task, RayJobOperator) and task.deferrable, (name, task.task_id)
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
    assert "Writes corpus/, corpus_fuzzy/, tokenizer/, tokens/" in dags["corpus_build"].params.get_param("work_dir").description
    assert dags["sft"].params.get_param("work_dir").description.startswith("Reads tokenizer/, pretrain/; writes sft_tokens/, sft/")
