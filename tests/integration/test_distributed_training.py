"""Two Ray Train workers driving DeepSpeed ZeRO-2 in bf16 over gloo, submitted as a Ray job like a DAG task."""

import json

import pytest

from stack.local_ray import local_ray_cluster
from common.paths import PROJECT_ROOT
from orchestration.ray_jobs import run_ray_job

pytestmark = pytest.mark.integration


def test_two_workers_zero2_bf16(tmp_path):
    work = tmp_path
    with local_ray_cluster(num_cpus=2):
        # Training data, not a cleaning test: every language, and the quality filters off.
        no_filters = {stage: False for stage in ("gopher_quality", "gopher_repetition", "c4", "fineweb")}
        run_ray_job("pipelines.corpus_build", {"inputs": [str(PROJECT_ROOT / "data/demo/corpus/part-00003.jsonl.gz")],
                                               "output_dir": str(work / "corpus"), "log_to_mlflow": False,
                                               "languages": [], "language_threshold": 0.0, **no_filters})
        run_ray_job("tokenizer.train", {"corpus_dir": str(work / "corpus"), "output_dir": str(work / "tokenizer"),
                                        "vocab_size": 512, "log_to_mlflow": False})
        run_ray_job("pipelines.token_shards", {"corpus_dir": str(work / "corpus"), "tokenizer_dir": str(work / "tokenizer"),
                                               "output_dir": str(work / "tokens"), "seq_len": 32, "validation_fraction": 0.1,
                                               "log_to_mlflow": False})
        result = run_ray_job("trainer.pretrain", {"tokens_dir": str(work / "tokens"), "output_dir": str(work / "pretrain"),
                                                  "num_workers": 2, "zero_stage": 2, "precision": "bf16", "steps": 6,
                                                  "micro_batch_size": 4, "log_every": 3})
    assert result["checkpoint"] == str(work / "pretrain")
    config = json.loads((work / "pretrain" / "config.json").read_text())
    assert (config["num_workers"], config["zero_stage"], config["precision"]) == (2, 2, "bf16")

    import torch

    state = torch.load(work / "pretrain" / "model.pt", map_location="cpu", weights_only=True)
    assert state["transformer.wte.weight"].dtype == torch.bfloat16
    from trainer.checkpoint import load_model

    model = load_model(work / "pretrain")
    assert torch.isfinite(model(torch.zeros(1, 8, dtype=torch.long))).all()
