"""pretrain: masked diffusion pretraining on the token shards of corpus_build (Ray Train + DeepSpeed)."""

from __future__ import annotations

from airflow.sdk import dag, task

from orchestration.airflow_params import CHAINED_FIELDS, job_overrides, params_for, work_dir_param
from trainer.config import PretrainConfig


@dag(
    dag_id="pretrain",
    schedule=None,
    catchup=False,
    tags=["train"],
    doc_md=__doc__,
    params={"work_dir": work_dir_param(["trainer.pretrain"]), **params_for(PretrainConfig, exclude=CHAINED_FIELDS)},
)
def pretrain():
    @task
    def train(params=None) -> dict:
        from orchestration.ray_jobs import run_ray_job

        return run_ray_job("trainer.pretrain", job_overrides("trainer.pretrain", PretrainConfig, params))

    train()


pretrain()
