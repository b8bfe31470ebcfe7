"""corpus_build: raw documents -> cleaned, exactly deduplicated -> near-duplicates removed -> tokenizer -> token shards.

Each task submits one job (the same `python -m ...` a user can run by hand) to Ray and streams its log:

    clean_and_dedup     pipelines.corpus_build   -> {work_dir}/corpus
    fuzzy_dedup         pipelines.fuzzy_dedup    -> {work_dir}/corpus_fuzzy
    train_tokenizer     tokenizer.train          -> {work_dir}/tokenizer
    write_token_shards  pipelines.token_shards   -> {work_dir}/tokens
"""

from __future__ import annotations

from airflow.sdk import Param, dag, task

from common.airflow_params import CHAINED_FIELDS, overrides_from, params_for
from pipelines.config import CorpusBuildConfig
from pipelines.fuzzy_dedup_config import FuzzyDedupConfig
from pipelines.token_config import TokenShardsConfig
from tokenizer.config import TokenizerConfig

JOBS = {"corpus.": CorpusBuildConfig, "fuzzy.": FuzzyDedupConfig, "tokenizer.": TokenizerConfig, "tokens.": TokenShardsConfig}


@dag(
    dag_id="corpus_build",
    schedule=None,
    catchup=False,
    tags=["corpus"],
    doc_md=__doc__,
    params={
        "work_dir": Param("out", type="string", description="Folder for corpus/, corpus_fuzzy/, tokenizer/ and tokens/ (relative to the project)."),
        **{k: v for prefix, cls in JOBS.items() for k, v in params_for(cls, prefix=prefix, exclude=CHAINED_FIELDS).items()},
    },
)
def corpus_build():
    @task
    def clean_and_dedup(params=None) -> dict:
        from common.ray_jobs import run_ray_job

        overrides = overrides_from(params, CorpusBuildConfig, prefix="corpus.", exclude=CHAINED_FIELDS)
        return run_ray_job("pipelines.corpus_build", {**overrides, "output_dir": f"{params['work_dir']}/corpus"})

    @task
    def fuzzy_dedup(corpus: dict, params=None) -> dict:
        from common.ray_jobs import run_ray_job

        overrides = overrides_from(params, FuzzyDedupConfig, prefix="fuzzy.", exclude=CHAINED_FIELDS)
        work = params["work_dir"]
        return run_ray_job("pipelines.fuzzy_dedup", {**overrides, "corpus_dir": f"{work}/corpus", "output_dir": f"{work}/corpus_fuzzy"})

    @task
    def train_tokenizer(corpus: dict, params=None) -> dict:
        from common.ray_jobs import run_ray_job

        overrides = overrides_from(params, TokenizerConfig, prefix="tokenizer.", exclude=CHAINED_FIELDS)
        work = params["work_dir"]
        return run_ray_job("tokenizer.train", {**overrides, "corpus_dir": f"{work}/corpus_fuzzy", "output_dir": f"{work}/tokenizer"})

    @task
    def write_token_shards(tokenizer: dict, params=None) -> dict:
        from common.ray_jobs import run_ray_job

        overrides = overrides_from(params, TokenShardsConfig, prefix="tokens.", exclude=CHAINED_FIELDS)
        work = params["work_dir"]
        return run_ray_job(
            "pipelines.token_shards",
            {**overrides, "corpus_dir": f"{work}/corpus_fuzzy", "tokenizer_dir": f"{work}/tokenizer", "output_dir": f"{work}/tokens"},
        )

    write_token_shards(train_tokenizer(fuzzy_dedup(clean_and_dedup())))


corpus_build()
