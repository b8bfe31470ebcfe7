"""The lm-eval adapter: its scores are the spec's estimator, its generations the sampler's, and lm-eval's own
simple_evaluate runs it on the local tasks; the evaluate job logs them beside the training run."""

from __future__ import annotations

import json

import pytest
import torch

from common.paths import PROJECT_ROOT
from tests.tokenizer import conversation_tokenizer
from tests.trainer.hf import random_model
from tokenizer.encode import Tokenizer
from trainer.checkpoint import save_model
from trainer.config import EvaluateConfig
from trainer.model_config import tiny

SMALL = {"mc_num": 4, "mc_batch_size": 2, "gen_length": 8, "block_length": 8}


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval")
    tokenizer_dir = conversation_tokenizer(root)
    save_model(random_model(tiny(vocab_size=Tokenizer.load(tokenizer_dir).vocab_size)), root / "model")
    return root / "model", tokenizer_dir


@pytest.fixture(scope="module")
def lm(checkpoint):
    from trainer.lm_eval_model import DiffusionLM

    return DiffusionLM(checkpoint=str(checkpoint[0]), tokenizer_dir=str(checkpoint[1]), check_greedy=True, **SMALL)


def request(*args):
    from lm_eval.api.instance import Instance

    kind = "generate_until" if isinstance(args[-1], dict) else "loglikelihood"
    return Instance(request_type=kind, doc={}, arguments=args, idx=0)


def test_the_model_is_in_lm_evals_registry_and_parses_its_model_args(checkpoint):
    from lm_eval.api.registry import get_model

    from trainer.lm_eval_model import DiffusionLM

    assert get_model("llada_platform") is DiffusionLM
    lm = DiffusionLM.create_from_arg_string(f"checkpoint={checkpoint[0]},tokenizer_dir={checkpoint[1]},mc_num=8,mc_batch_size=4,chat=true")
    assert (lm.settings["mc_num"], lm.settings["chat"], lm.settings["steps"]) == (8, True, 256)


def test_loglikelihood_is_the_estimator_called_directly_with_the_same_seed(lm):
    from trainer.likelihood import log_likelihood

    context, continuation = "What does the ls command", " do? It lists files."
    (value, greedy), again = lm.loglikelihood([request(context, continuation), request(context, continuation)])
    prompt, answer = lm.split_pair(context, continuation)
    assert prompt[0] == lm.tokenizer.bos_id and lm.tokenizer.decode(prompt[1:] + answer) == context + continuation
    with torch.no_grad():
        direct = log_likelihood(lm.model, prompt, answer, mc_num=4, batch_size=2, mask_id=lm.tokenizer.mask_id,
                                generator=torch.Generator().manual_seed(0))
    assert value == direct == again[0] and value < 0
    assert greedy == (lm.greedy_answer(prompt, len(answer)) == answer)
    rolling = lm.loglikelihood_rolling([request("It lists files.")])[0]
    assert rolling == lm.log_likelihood([lm.tokenizer.bos_id], lm.tokenizer.encode("It lists files."))


def test_generate_until_stops_at_the_first_stop_string(lm):
    full = lm.generate_until([request("What does ls do?", {})])[0]
    assert full and full == lm.complete("What does ls do?", {})
    stop = full[len(full) // 2 :][:2]
    assert lm.generate_until([request("What does ls do?", {"until": [stop]})])[0] == full[: full.index(stop)]
    short = lm.complete("What does ls do?", {"max_gen_toks": 2})
    assert full.startswith(short) and len(short) < len(full)


def test_the_evaluate_job_runs_lm_eval_on_the_local_tasks_and_logs_a_child_run(checkpoint):
    import mlflow

    from common.tracking import mlflow_run
    from formats.checkpoint import RUN
    from trainer.evaluate import main

    model_dir, tokenizer_dir = checkpoint
    with mlflow_run("sft", "sft") as parent:
        pass
    (model_dir / RUN).write_text(json.dumps({"run_id": parent.info.run_id, "experiment": "sft"}))
    summary = main(EvaluateConfig(checkpoint=str(model_dir), tokenizer_dir=str(tokenizer_dir), tasks=["demo_cloze", "demo_whatis"],
                                  limit=4, chat=True, **SMALL))
    results = json.loads((model_dir / "eval_results.json").read_text())
    assert results["results"]["demo_cloze"]["sample_len"] == 4 and "acc,none" in results["results"]["demo_cloze"]
    assert "exact_match,name" in results["results"]["demo_whatis"]
    assert set(summary["metrics"]) == {"demo_cloze/acc", "demo_cloze/acc_norm", "demo_whatis/exact_match_name"}
    assert set(summary["baseline_untrained"]) == set(summary["metrics"]) and summary["chance"]["demo_cloze"] == 0.25
    child = mlflow.get_run(summary["mlflow_run_id"])
    assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id
    assert child.data.metrics["demo_cloze/acc"] == summary["metrics"]["demo_cloze/acc"]
    assert (PROJECT_ROOT / "data" / "eval_tasks" / "demo_cloze.yaml").is_file()
