"""sft: supervised fine-tuning from the pretrain checkpoint, then a sample from the reverse process."""

from __future__ import annotations

from airflow.sdk import dag, task

from orchestration.airflow_params import CHAINED_FIELDS, job_overrides, params_for, work_dir_param
from trainer.config import SampleConfig, SFTConfig


@dag(
    dag_id="sft",
    schedule=None,
    catchup=False,
    tags=["train"],
    doc_md=__doc__,
    params={
        "work_dir": work_dir_param(["trainer.sft", "trainer.sample"]),
        **params_for(SFTConfig, exclude=CHAINED_FIELDS),
        **params_for(SampleConfig, prefix="sample.", exclude=CHAINED_FIELDS),
    },
)
def sft():
    @task
    def finetune(params=None) -> dict:
        from orchestration.ray_jobs import run_ray_job

        return run_ray_job("trainer.sft", job_overrides("trainer.sft", SFTConfig, params))

    @task
    def sample(finetuned: dict, params=None) -> dict:
        from orchestration.ray_jobs import run_ray_job

        return run_ray_job("trainer.sample", job_overrides("trainer.sample", SampleConfig, params, prefix="sample."))

    sample(finetune())


sft()
