"""sft: conversations tokenized into SFT pairs, supervised fine-tuning from the pretrain checkpoint on them,
then a sample from the reverse process and an lm-eval evaluation of the fine-tuned checkpoint."""

from __future__ import annotations

from airflow.sdk import dag

from orchestration.airflow_params import CHAINED_FIELDS, params_for, work_dir_param
from orchestration.assets import PRETRAIN_CHECKPOINT, SFT_CHECKPOINT, schedule_on
from orchestration.mlflow_lineage import dag_callbacks
from orchestration.ray_job_operator import ray_job
from pipelines.sft_shards_config import SFTShardsConfig
from trainer.config import EvaluateConfig, SampleConfig, SFTConfig


@dag(
    dag_id="sft",
    schedule=schedule_on(PRETRAIN_CHECKPOINT),  # a finished pretraining, with the chain_on_assets setting
    catchup=False,
    max_active_runs=1,  # its runs share work_dir's folders (each job also locks its output folder)
    tags=["train"],
    doc_md=__doc__,
    **dag_callbacks(),  # the DAG run's MLflow parent run ends with it
    params={
        "work_dir": work_dir_param(["pipelines.sft_shards", "trainer.sft", "trainer.sample", "trainer.evaluate"]),
        **params_for(SFTShardsConfig, prefix="pairs.", exclude=CHAINED_FIELDS),
        **params_for(SFTConfig, exclude=CHAINED_FIELDS),
        **params_for(SampleConfig, prefix="sample.", exclude=CHAINED_FIELDS),
        **params_for(EvaluateConfig, prefix="eval.", exclude=CHAINED_FIELDS),
    },
)
def sft():
    pairs = ray_job("pipelines.sft_shards", SFTShardsConfig, prefix="pairs.", task_id="tokenize_conversations")
    finetune = ray_job("trainer.sft", SFTConfig, task_id="finetune", outlets=[SFT_CHECKPOINT])
    sample = ray_job("trainer.sample", SampleConfig, prefix="sample.", task_id="sample")
    evaluate = ray_job("trainer.evaluate", EvaluateConfig, prefix="eval.", task_id="evaluate")
    pairs >> finetune >> [sample, evaluate]


sft()
