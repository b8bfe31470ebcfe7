"""`make demo`: the three DAGs end to end through Airflow, with a real local Ray and MLflow.

corpus_build (data/demo/corpus: clean, exact and fuzzy dedup, tokenizer, token shards) -> pretrain ->
sft pairs + sft + sample + evaluate (lm-eval on two local held-out tasks), each task a Ray job; then a
summary of what came out, the scores beside an untrained model's and chance. Everything it writes goes
under out/ and .state/.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from stack import airflow_home
from common.paths import PROJECT_ROOT, state_dir
from formats.checkpoint import CHECKPOINTS, EVAL_SUMMARY, RUN, SAMPLES
from formats.corpus_versions import DEFAULT_NAME, resolve
from formats.layout import CORPUS_FOLDERS, DEFAULT_WORK_DIR
from formats.token_shards import MANIFEST, VALIDATION_DIR

# Small enough for 2 CPU cores in a few minutes; the same knobs are the DAGs' Params. resume=never: a
# rerun of the demo trains afresh instead of continuing the previous demo's finished run.
# The demo corpus is documentation, not web text: Gopher's quality rules (50+ words, 80% alphabetic
# words) and C4's (5+ sentences ending in punctuation, no curly braces) keep under 3% of it, too little
# to train on. The demo turns those two off; every other stage runs with its published defaults.
DEMO_CORPUS = {"corpus.inputs": ["data/demo/corpus"], "corpus.gopher_quality": False, "corpus.c4": False}
# Two local lm-eval tasks (data/eval_tasks/) at a CPU demo's cost: 50 documents each, 8 Monte Carlo copies
# per answer in one model call (LLaDA uses 128).
DEMO_EVAL = {"eval.tasks": ["demo_cloze", "demo_order"], "eval.limit": 50, "eval.mc_num": 8, "eval.mc_batch_size": 8}
DEMO_CONF = {
    "corpus_build": {"work_dir": DEFAULT_WORK_DIR, **DEMO_CORPUS, "tokenizer.vocab_size": 4096, "tokens.seq_len": 128},
    "pretrain": {"work_dir": DEFAULT_WORK_DIR, "model": "tiny", "steps": 200, "micro_batch_size": 16, "lr": 2e-3, "warmup_steps": 20, "log_every": 20,
                 "checkpoint_every": 100, "eval_every": 100, "resume": "never"},
    "sft": {"work_dir": DEFAULT_WORK_DIR, "resume": "never", "steps": 200, "micro_batch_size": 16, "lr": 1e-3, "warmup_steps": 10, "log_every": 20,
            "sample.prompt": "What does the `chdir` function do?", **DEMO_EVAL},
}


def say(text: str = "") -> None:
    print(text, flush=True)


def main() -> int:
    started = time.monotonic()
    # Airflow's own bookkeeping at INFO would drown the job logs; dag.test prints task output as is.
    os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")
    # ... except the lines of the Ray jobs, which the tasks' trigger streams (orchestration/ray_job_operator.py)
    os.environ.setdefault("AIRFLOW__LOGGING__NAMESPACE_LEVELS", "ray_job=INFO airflow.task.operators.orchestration=INFO")
    airflow_home.configure()
    os.environ.setdefault("HF_DATASETS_CACHE", str(state_dir() / "hf_datasets"))  # lm-eval's local tasks load through datasets
    say("[demo] airflow: migrating the metadata DB (SQLite under .state/airflow)")
    airflow_home.migrate()
    dags = airflow_home.load_dags()

    from stack.local_ray import local_ray_cluster

    say("[demo] ray: starting a local head on 127.0.0.1")
    from common.tracking import describe_dag_run

    runs = {}
    with local_ray_cluster(num_cpus=os.cpu_count()) as head:
        say(f"[demo] ray: dashboard {head.dashboard_url}")
        for dag_id, conf in DEMO_CONF.items():
            say(f"\n[demo] ===== DAG {dag_id} =====")
            dag_started = time.monotonic()
            dag_run = dags[dag_id].test(run_conf=conf)
            state = str(dag_run.state)
            say(f"[demo] DAG {dag_id}: {state} in {time.monotonic() - dag_started:.0f}s")
            if state != "success":
                say(f"[demo] stopping: DAG {dag_id} did not succeed (its task log is above)")
                return 1
            runs[dag_id] = dag_run.run_id
    print_summary(PROJECT_ROOT / DEFAULT_WORK_DIR, time.monotonic() - started)
    say("\nMLflow: each DAG run is a parent run, each of its tasks' jobs a child run")
    for dag_id, run_id in runs.items():
        for line in describe_dag_run(dag_id, run_id):
            say(f"  {line}")
    return 0


def print_summary(work: Path, seconds: float) -> None:
    version, corpus = resolve(work, DEFAULT_NAME)  # the version the corpus build just sealed, and pretraining read

    def read(folder: str, name: str) -> dict:
        return json.loads(((corpus if folder in CORPUS_FOLDERS else work) / folder / name).read_text())

    stats, fuzzy, tokens = read("corpus", "stats.json"), read("corpus_fuzzy", "stats.json"), read("tokens", MANIFEST)
    tokens_validation = read("tokens", f"{VALIDATION_DIR}/{MANIFEST}")
    pretrain, sft, sft_pairs = read("pretrain", RUN), read("sft", RUN), read("sft_tokens", MANIFEST)
    sample = json.loads((work / "sft" / SAMPLES).read_text().splitlines()[-1])
    rows = [("corpus version", f"{DEFAULT_NAME}/{version} in {corpus}"),
            ("documents in", f"{stats['documents_in']:,}"), ("documents kept", f"{stats['documents_kept']:,}")]
    rows += [(f"  dropped: {reason}", f"{count:,}") for reason, count in sorted(stats["dropped"].items())]
    rows += [("near duplicates removed", f"{fuzzy['documents_removed']:,} ({fuzzy['clusters']:,} clusters); {fuzzy['documents_kept']:,} documents left")]
    rows += [
        ("tokens written", f"{tokens['tokens']:,} ({tokens['sequences']:,} sequences of {tokens['seq_len']})"),
        ("pretrain loss", f"{pretrain['first_loss']:.3f} -> {pretrain['final_loss']:.3f}   mlflow run {pretrain['run_id']}"),
        ("pretrain val_loss", f"{pretrain['val_loss']:.3f} on {tokens_validation['sequences']:,} held-out sequences"),
        ("pretrain checkpoints", ", ".join(p.name for p in sorted((work / "pretrain" / CHECKPOINTS).glob("step-*")))),
        ("sft pairs", f"{sft_pairs['sequences']:,} of at most {sft_pairs['seq_len']} tokens from {sft_pairs['counts']['conversations']:,} conversations"),
        ("sft loss", f"{sft['first_loss']:.3f} -> {sft['final_loss']:.3f}   mlflow run {sft['run_id']}"),
        ("sample prompt", sample["prompt"]),
        ("sample completion", repr(sample["completion"])),
        *evaluation_rows(work),
        ("mlflow store", str(state_dir() / "mlflow")),
        ("open the MLflow UI", f"make up, then {pretrain_runs_link()} (Airflow :8080, Ray :8265)"),
    ]
    say("\n================ demo summary ================")
    for label, value in rows:
        say(f"{label:<26} {value}")
    say(f"{'total':<26} {seconds:.0f}s")


def pretrain_runs_link() -> str:
    """The pretrain experiment's runs in the UI that `make up` serves over the demo's store."""
    from mlflow import MlflowClient

    from common.tracking import tracking_uri, ui_link
    from stack.services import PORTS

    experiment = MlflowClient(tracking_uri()).get_experiment_by_name("pretrain")
    return ui_link(f"http://127.0.0.1:{PORTS['mlflow']}", experiment.experiment_id if experiment else None)


def evaluation_rows(work: Path) -> list[tuple[str, str]]:
    """One row per accuracy of the SFT checkpoint's evaluation: its score, an untrained model's, chance."""
    summary = json.loads((work / "sft" / EVAL_SUMMARY).read_text())
    rows = []
    for name, value in summary["metrics"].items():
        task = name.split("/")[0]
        chance = summary["chance"].get(task)
        error = f" ± {summary['stderr'][name]:.3f}" if name in summary["stderr"] else ""
        rows.append((f"eval {name}", f"{value:.3f}{error}   untrained model {summary['baseline_untrained'][name]:.3f}"
                     + (f", chance {chance:.3f}" if chance is not None else "")))
    return rows + [("", "(a 2M-parameter model after minutes on a CPU; the tasks and LLaDA's benchmarks: docs/evaluation.md)")]


if __name__ == "__main__":
    sys.exit(main())
