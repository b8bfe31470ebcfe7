"""corpus_build: raw documents -> cleaned, exactly deduplicated -> near-duplicates removed -> tokenizer -> token shards.

Each run writes a new version of the corpus `corpus_name`, {work_dir}/corpora/{corpus_name}/{version}/
(formats/corpus_versions.py): `corpus_version`, or the run's logical date. Each job task submits one job
(the same `python -m ...` a user can run by hand) to Ray and follows it from the triggerer
(orchestration/ray_job_operator.py); the folders each job reads and writes are formats/layout.py's:

    claim_version       refuses a version already complete
    clean_and_dedup     pipelines.corpus_build   -> {version}/corpus
    fuzzy_dedup         pipelines.fuzzy_dedup    -> {version}/corpus_fuzzy
    train_tokenizer     tokenizer.train          -> {version}/tokenizer
    write_token_shards  pipelines.token_shards   -> {version}/tokens
    publish_version     seals the version (sealed.json: never written again), moves `latest` to it, then
                        records the corpus and tokens asset events (a pretraining they start finds it sealed)
"""

from __future__ import annotations

from datetime import datetime, timezone

from airflow.sdk import chain, dag, task

from orchestration.airflow_params import CHAINED_FIELDS, corpus_params, params_for, work_dir_param
from orchestration.assets import CORPUS, TOKENS
from orchestration.mlflow_lineage import dag_callbacks
from orchestration.ray_job_operator import ray_job
from orchestration.settings import corpus_build_schedule
from pipelines.config import CorpusBuildConfig
from pipelines.fuzzy_dedup_config import FuzzyDedupConfig
from pipelines.token_config import TokenShardsConfig
from tokenizer.config import TokenizerConfig

# task -> (its job, that job's config, the prefix of the config's fields in the trigger form), in run order
TASKS = {
    "clean_and_dedup": ("pipelines.corpus_build", CorpusBuildConfig, "corpus."),
    "fuzzy_dedup": ("pipelines.fuzzy_dedup", FuzzyDedupConfig, "fuzzy."),
    "train_tokenizer": ("tokenizer.train", TokenizerConfig, "tokenizer."),
    "write_token_shards": ("pipelines.token_shards", TokenShardsConfig, "tokens."),
}

ASSETS = {"fuzzy_dedup": CORPUS, "write_token_shards": TOKENS}
"""The assets of a version (orchestration/assets.py), by the task whose job writes each: their events are
recorded when the version is sealed, each from that job's result."""


@dag(
    dag_id="corpus_build",
    schedule=corpus_build_schedule(),  # manual unless a schedule is set (orchestration/settings.py)
    start_date=datetime(2026, 1, 1, tzinfo=timezone.utc),  # a schedule's first run is its next tick: catchup is off
    catchup=False,
    max_active_runs=1,  # its runs share work_dir's folders (each job also locks its output folder)
    tags=["corpus"],
    doc_md=__doc__,
    **dag_callbacks(),  # the DAG run's MLflow parent run ends with it
    params={
        "work_dir": work_dir_param([job for job, _, _ in TASKS.values()]),
        **corpus_params(building=True),
        **{k: v for _, cls, prefix in TASKS.values() for k, v in params_for(cls, prefix=prefix, exclude=CHAINED_FIELDS).items()},
    },
)
def corpus_build():
    @task
    def claim_version(params=None, dag_run=None) -> str:
        from orchestration.corpus_tasks import claim_version

        return claim_version(params, dag_run)

    @task(outlets=list(ASSETS.values()))
    def publish_version(params=None, dag_run=None, ti=None, outlet_events=None) -> dict:
        from orchestration.corpus_tasks import publish_version

        results = {asset: ti.xcom_pull(task_ids=task_id) for task_id, asset in ASSETS.items()}
        return publish_version(params, dag_run, results=results, outlet_events=outlet_events)

    jobs = [ray_job(job, config_cls, prefix=prefix, task_id=task_id, corpus="write")
            for task_id, (job, config_cls, prefix) in TASKS.items()]
    chain(claim_version(), *jobs, publish_version())


corpus_build()
