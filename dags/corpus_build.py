"""corpus_build: raw JSON lines -> cleaned, deduplicated documents -> tokenizer -> packed token shards.

Each task submits one job (the same `python -m ...` a user can run by hand) to Ray and streams its log.
"""

from __future__ import annotations

from airflow.sdk import Param, dag, task

from common.airflow_params import CHAINED_FIELDS, overrides_from, params_for
from pipelines.config import CorpusBuildConfig
from pipelines.token_config import TokenShardsConfig
from tokenizer.config import TokenizerConfig

JOBS = {"corpus.": CorpusBuildConfig, "tokenizer.": TokenizerConfig, "tokens.": TokenShardsConfig}


@dag(
    dag_id="corpus_build",
    schedule=None,
    catchup=False,
    tags=["corpus"],
    doc_md=__doc__,
    params={
        "work_dir": Param("out", type="string", description="Folder for corpus/, tokenizer/ and tokens/ (relative to the project)."),
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
    def train_tokenizer(corpus: dict, params=None) -> dict:
        from common.ray_jobs import run_ray_job

        overrides = overrides_from(params, TokenizerConfig, prefix="tokenizer.", exclude=CHAINED_FIELDS)
        work = params["work_dir"]
        return run_ray_job("tokenizer.train", {**overrides, "corpus_dir": f"{work}/corpus", "output_dir": f"{work}/tokenizer"})

    @task
    def write_token_shards(tokenizer: dict, params=None) -> dict:
        from common.ray_jobs import run_ray_job

        overrides = overrides_from(params, TokenShardsConfig, prefix="tokens.", exclude=CHAINED_FIELDS)
        work = params["work_dir"]
        return run_ray_job(
            "pipelines.token_shards",
            {**overrides, "corpus_dir": f"{work}/corpus", "tokenizer_dir": f"{work}/tokenizer", "output_dir": f"{work}/tokens"},
        )

    write_token_shards(train_tokenizer(clean_and_dedup()))


corpus_build()
