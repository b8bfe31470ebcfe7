"""Evaluate a checkpoint on lm-evaluation-harness tasks: `python -m trainer.evaluate checkpoint=... tasks=...`.

    python -m trainer.evaluate checkpoint=out/sft tasks=demo_cloze,demo_whatis chat=true limit=50

Runs lm-eval's own `simple_evaluate` with our model (trainer/lm_eval_model.py) on the local tasks of
data/eval_tasks/ (offline) or, with a Hugging Face datasets cache, on lm-eval's (the benchmarks of LLaDA's
tables: docs/evaluation.md). Writes lm-eval's result JSON beside the checkpoint (eval_results.json; the
metrics, the baseline's and chance in eval_summary.json), and logs each task's metrics to MLflow in a
child run of the checkpoint's training run (its run.json).

With `baseline` (the default) the same tasks are scored on an untrained model of the same shape, and
the summary prints each metric beside it and beside chance (a task's `metadata.chance`), so a figure
can be judged: what did training add, and is it more than guessing?
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from common.cli import run_job
from common.config import to_dict
from common.files import write_json
from formats.checkpoint import EVAL_RESULTS, EVAL_SUMMARY, RUN
from trainer.config import EvaluateConfig


def model_arguments(config: EvaluateConfig) -> dict[str, Any]:
    """The lm-eval model arguments of `config` (what `--model_args` would say)."""
    return {"checkpoint": config.checkpoint, "tokenizer_dir": config.tokenizer_dir, "mc_num": config.mc_num,
            "mc_batch_size": config.mc_batch_size, "cfg_scale": config.cfg_scale, "check_greedy": config.check_greedy,
            "chat": config.chat, "gen_length": config.gen_length, "block_length": config.block_length,
            "steps": config.steps, "threshold": config.threshold, "cache": config.cache, "seed": config.seed}


def run_tasks(model, config: EvaluateConfig) -> dict[str, Any]:
    """lm-eval's simple_evaluate of `model` on config.tasks; its results dict (without per-sample logs)."""
    import lm_eval
    from lm_eval.tasks import TaskManager

    manager = TaskManager(include_path=config.include_path or None, include_defaults=not _all_local(config))
    return lm_eval.simple_evaluate(model=model, tasks=list(config.tasks), task_manager=manager, limit=config.limit,
                                   num_fewshot=config.num_fewshot, log_samples=False, random_seed=config.seed,
                                   numpy_random_seed=config.seed, torch_random_seed=config.seed, fewshot_random_seed=config.seed)


def _all_local(config: EvaluateConfig) -> bool:
    """Whether every task is a YAML of include_path: then lm-eval need not index its own ~16 s of tasks."""
    if not config.include_path:
        return False
    local = {path.stem for path in Path(config.include_path).glob("*.yaml")}
    return set(config.tasks) <= local


def metrics_of(results: dict[str, Any], stderr: bool = False) -> dict[str, float]:
    """{"task/metric": value} of lm-eval's results ("acc,none" -> "acc"), or (stderr) their standard errors."""
    flat = {}
    for task, values in results["results"].items():
        for key, value in values.items():
            metric, _, filter_name = key.partition(",")
            if isinstance(value, bool) or not isinstance(value, (int, float)) or metric.endswith("_stderr") != stderr or not filter_name:
                continue
            metric = metric.removesuffix("_stderr")
            name = metric if filter_name == "none" else f"{metric}_{filter_name}"
            flat[f"{task}/{name}"] = float(value)
    return flat


def chance_of(results: dict[str, Any]) -> dict[str, float]:
    """{task: chance} for the tasks whose YAML states it (`metadata: {chance: 0.25}`)."""
    return {task: float(cfg["metadata"]["chance"]) for task, cfg in results.get("configs", {}).items()
            if isinstance(cfg.get("metadata"), dict) and "chance" in cfg["metadata"]}


def training_run(checkpoint: str) -> dict[str, Any] | None:
    """The checkpoint's run.json (its MLflow run id and experiment), if a training job of ours wrote it."""
    path = Path(checkpoint) / RUN
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def main(config: EvaluateConfig) -> dict:
    from lm_eval.utils import handle_non_serializable

    from common.paths import require_paths
    from trainer.lm_eval_model import DiffusionLM

    config.tokenizer_dir = config.tokenizer_dir or config.checkpoint
    require_paths([config.checkpoint, config.tokenizer_dir] + ([config.include_path] if config.include_path else []))
    started = time.perf_counter()
    arguments = model_arguments(config)
    print(f"[evaluate] {config.checkpoint} on {', '.join(config.tasks)}"
          f"{f' (first {config.limit} documents each)' if config.limit else ''}", flush=True)
    results = run_tasks(DiffusionLM(**arguments), config)
    metrics, stderr = metrics_of(results), metrics_of(results, stderr=True)
    baseline = metrics_of(run_tasks(DiffusionLM(**arguments, untrained=True), config)) if config.baseline else {}
    chance = chance_of(results)
    results["llada_platform"] = {"baseline_untrained": baseline, "chance": chance, "config": to_dict(config)}
    output = Path(config.checkpoint) / EVAL_RESULTS
    output.write_text(json.dumps(results, indent=2, default=handle_non_serializable, ensure_ascii=False) + "\n", encoding="utf-8")
    seconds = time.perf_counter() - started
    for name, value in metrics.items():
        task = name.split("/")[0]
        beside = [f"untrained {baseline[name]:.3f}"] if name in baseline else []
        beside += [f"chance {chance[task]:.3f}"] if task in chance and "acc" in name else []
        error = f" ± {stderr[name]:.3f}" if name in stderr else ""
        print(f"[evaluate] {name} {value:.3f}{error}" + (f" ({', '.join(beside)})" if beside else ""), flush=True)
    summary = {"results": str(output), "metrics": metrics, "stderr": stderr, "baseline_untrained": baseline,
               "chance": chance, "seconds": round(seconds, 1)}
    if config.log_to_mlflow:
        summary["mlflow_run_id"] = log_to_mlflow(config, metrics, baseline, output)
    write_json(Path(config.checkpoint) / EVAL_SUMMARY, summary)
    return summary


def log_to_mlflow(config: EvaluateConfig, metrics: dict, baseline: dict, results_file: Path) -> str:
    """A child run of the checkpoint's training run (or a run of its own experiment if it has none)."""
    from common.tracking import mlflow_run, run_label

    parent = training_run(config.checkpoint)
    experiment = config.mlflow_experiment or (parent["experiment"] if parent else "evaluate")
    parent_id = parent["run_id"] if parent and experiment == parent["experiment"] else None
    with mlflow_run(experiment, run_label("evaluate", ",".join(config.tasks)), params=to_dict(config), parent_run_id=parent_id) as run:
        import mlflow

        mlflow.log_metrics({name.replace(",", "_"): value for name, value in metrics.items()})
        mlflow.log_metrics({f"untrained/{name}": value for name, value in baseline.items()})
        mlflow.set_tag("checkpoint", Path(config.checkpoint).resolve().as_uri())
        mlflow.log_artifact(str(results_file))
        return run.info.run_id


if __name__ == "__main__":
    raise SystemExit(run_job(EvaluateConfig, main, description=__doc__.splitlines()[0]))

