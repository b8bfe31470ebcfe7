"""corpus_build: raw documents -> cleaned, exactly deduplicated -> near-duplicates removed -> tokenizer -> token shards.

Each task submits one job (the same `python -m ...` a user can run by hand) to Ray and streams its log;
the folders under `work_dir` each job reads and writes are formats/layout.py's:

    clean_and_dedup     pipelines.corpus_build   -> {work_dir}/corpus
    fuzzy_dedup         pipelines.fuzzy_dedup    -> {work_dir}/corpus_fuzzy
    train_tokenizer     tokenizer.train          -> {work_dir}/tokenizer
    write_token_shards  pipelines.token_shards   -> {work_dir}/tokens
"""

from __future__ import annotations

from airflow.sdk import dag, task

from orchestration.airflow_params import CHAINED_FIELDS, job_overrides, params_for, work_dir_param
from pipelines.config import CorpusBuildConfig
from pipelines.fuzzy_dedup_config import FuzzyDedupConfig
from pipelines.token_config import TokenShardsConfig
from tokenizer.config import TokenizerConfig

# job module -> (its config, the prefix of its fields in the trigger form)
JOBS = {
    "pipelines.corpus_build": (CorpusBuildConfig, "corpus."),
    "pipelines.fuzzy_dedup": (FuzzyDedupConfig, "fuzzy."),
    "tokenizer.train": (TokenizerConfig, "tokenizer."),
    "pipelines.token_shards": (TokenShardsConfig, "tokens."),
}


def run(job: str, params) -> dict:
    from orchestration.ray_jobs import run_ray_job

    config_cls, prefix = JOBS[job]
    return run_ray_job(job, job_overrides(job, config_cls, params, prefix=prefix))


@dag(
    dag_id="corpus_build",
    schedule=None,
    catchup=False,
    tags=["corpus"],
    doc_md=__doc__,
    params={
        "work_dir": work_dir_param(list(JOBS)),
        **{k: v for cls, prefix in JOBS.values() for k, v in params_for(cls, prefix=prefix, exclude=CHAINED_FIELDS).items()},
    },
)
def corpus_build():
    @task
    def clean_and_dedup(params=None) -> dict:
        return run("pipelines.corpus_build", params)

    @task
    def fuzzy_dedup(corpus: dict, params=None) -> dict:
        return run("pipelines.fuzzy_dedup", params)

    @task
    def train_tokenizer(corpus: dict, params=None) -> dict:
        return run("tokenizer.train", params)

    @task
    def write_token_shards(tokenizer: dict, params=None) -> dict:
        return run("pipelines.token_shards", params)

    write_token_shards(train_tokenizer(fuzzy_dedup(clean_and_dedup())))


corpus_build()
