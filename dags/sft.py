"""sft: conversations tokenized into SFT pairs, supervised fine-tuning from the pretrain checkpoint on them,
then a sample from the reverse process and an lm-eval evaluation of the fine-tuned checkpoint."""

from __future__ import annotations

from airflow.sdk import dag, task

from orchestration.airflow_params import CHAINED_FIELDS, job_overrides, params_for, work_dir_param
from pipelines.sft_shards_config import SFTShardsConfig
from trainer.config import EvaluateConfig, SampleConfig, SFTConfig


@dag(
    dag_id="sft",
    schedule=None,
    catchup=False,
    tags=["train"],
    doc_md=__doc__,
    params={
        "work_dir": work_dir_param(["pipelines.sft_shards", "trainer.sft", "trainer.sample", "trainer.evaluate"]),
        **params_for(SFTShardsConfig, prefix="pairs.", exclude=CHAINED_FIELDS),
        **params_for(SFTConfig, exclude=CHAINED_FIELDS),
        **params_for(SampleConfig, prefix="sample.", exclude=CHAINED_FIELDS),
        **params_for(EvaluateConfig, prefix="eval.", exclude=CHAINED_FIELDS),
    },
)
def sft():
    @task
    def tokenize_conversations(params=None) -> dict:
        from orchestration.ray_jobs import run_ray_job

        return run_ray_job("pipelines.sft_shards", job_overrides("pipelines.sft_shards", SFTShardsConfig, params, prefix="pairs."))

    @task
    def finetune(pairs: dict, params=None) -> dict:
        from orchestration.ray_jobs import run_ray_job

        return run_ray_job("trainer.sft", job_overrides("trainer.sft", SFTConfig, params))

    @task
    def sample(finetuned: dict, params=None) -> dict:
        from orchestration.ray_jobs import run_ray_job

        return run_ray_job("trainer.sample", job_overrides("trainer.sample", SampleConfig, params, prefix="sample."))

    @task
    def evaluate(finetuned: dict, params=None) -> dict:
        from orchestration.ray_jobs import run_ray_job

        return run_ray_job("trainer.evaluate", job_overrides("trainer.evaluate", EvaluateConfig, params, prefix="eval."))

    finetuned = finetune(tokenize_conversations())
    sample(finetuned)
    evaluate(finetuned)


sft()
