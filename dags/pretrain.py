"""pretrain: masked diffusion pretraining (Ray Train + DeepSpeed) on the token shards of a complete version of
a corpus that corpus_build wrote: `corpus_version` (default latest, resolved when the task starts and
recorded as the job's `corpus` key, in config.json and MLflow) of `corpus_name`, under work_dir/corpora/."""

from __future__ import annotations

from airflow.sdk import dag

from orchestration.airflow_params import CHAINED_FIELDS, corpus_params, params_for, work_dir_param
from orchestration.assets import PRETRAIN_CHECKPOINT, TOKENS, schedule_on
from orchestration.mlflow_lineage import dag_callbacks
from orchestration.ray_job_operator import ray_job
from trainer.config import PretrainConfig


@dag(
    dag_id="pretrain",
    schedule=schedule_on(TOKENS),  # a corpus build's token shards, with the chain_on_assets setting
    catchup=False,
    max_active_runs=1,  # its runs share work_dir's folders (each job also locks its output folder)
    tags=["train"],
    doc_md=__doc__,
    **dag_callbacks(),  # the DAG run's MLflow parent run ends with it
    params={"work_dir": work_dir_param(["trainer.pretrain"]), **corpus_params(building=False),
            **params_for(PretrainConfig, exclude=CHAINED_FIELDS)},
)
def pretrain():
    ray_job("trainer.pretrain", PretrainConfig, task_id="train", corpus="read", outlets=[PRETRAIN_CHECKPOINT])


pretrain()
