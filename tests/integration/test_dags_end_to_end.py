"""The three DAGs through Airflow itself (dag.test on SQLite), each task a real Ray job, MLflow real."""

import hashlib
import json
import re
from pathlib import Path

import pyarrow.ipc as ipc
import pyarrow.parquet as pq
import pytest

from stack import airflow_home
from stack.demo import DEMO_CORPUS
from stack.local_ray import local_ray_cluster
from common.paths import PROJECT_ROOT
from common.tracking import tracking_uri

pytestmark = pytest.mark.integration


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def asset_events() -> dict[str, dict]:
    """The newest asset event's extra per asset name, from Airflow's metadata DB."""
    from airflow.models.asset import AssetEvent
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        return {event.asset.name: dict(event.extra) for event in session.scalars(select(AssetEvent).order_by(AssetEvent.timestamp))}


@pytest.fixture(scope="module")
def dags():
    airflow_home.configure()
    airflow_home.migrate()
    with local_ray_cluster(num_cpus=2):
        yield airflow_home.load_dags()


def test_missing_input_fails_the_task_with_the_path(dags, tmp_path, capsys):
    missing = tmp_path / "no-such-corpus"
    state = airflow_home.run_dag(dags["corpus_build"], {"work_dir": str(tmp_path), "corpus.inputs": [str(missing)]})
    assert state == "failed"
    out = capsys.readouterr().out
    # the task's error names the Ray job, its status and its log's last lines, where the job said why
    assert re.search(r"ray job llada-corpus_build-\S+-clean_and_dedup-\w+ \(pipelines.corpus_build\) FAILED", out), out[-3000:]
    assert f"input path does not exist: {missing}" in out[out.index("last lines of its log"):]
    # the version it claimed is neither sealed nor latest
    [version] = (tmp_path / "corpora" / "main").iterdir()
    assert not (version / "sealed.json").exists() and not (version / "corpus" / "manifest.json").exists()
    assert not (tmp_path / "corpora" / "main" / "latest").exists()


def test_corpus_pretrain_sft_end_to_end(dags, tmp_path):
    work = tmp_path / "work"
    conf = {"work_dir": str(work), **DEMO_CORPUS, "corpus.inputs": [str(PROJECT_ROOT / "data" / "demo" / "corpus")],
            "tokenizer.vocab_size": 2048, "tokens.seq_len": 64}
    assert airflow_home.run_dag(dags["corpus_build"], conf) == "success"

    # The build wrote a new version of corpus "main" (named by the run's logical date), sealed it and
    # pointed latest at it; a second build of that version is refused before any job runs.
    from formats.corpus_versions import resolve

    version, folder = resolve(work, "main")
    assert re.fullmatch(r"\d{8}T\d{6}Z", version) and json.loads((folder / "sealed.json").read_text())["version"] == version
    assert airflow_home.run_dag(dags["corpus_build"], {**conf, "corpus_version": version}) == "failed"
    assert resolve(work, "main") == (version, folder)
    corpus_work, work_root = folder, work
    work = corpus_work  # the corpus folders below are the version's

    # Cleaned documents: readable shards whose counts agree with the manifest and the stats.
    manifest = json.loads((work / "corpus" / "manifest.json").read_text())
    stats = json.loads((work / "corpus" / "stats.json").read_text())
    rows = 0
    for shard in manifest["shards"]:
        path = work / "corpus" / shard["file"]
        assert sha256(path) == shard["sha256"]
        table = pq.read_table(path)
        assert table.column_names == ["id", "text", "source", "language", "language_score"]
        assert table.num_rows == shard["documents"] and set(table["language"].to_pylist()) == {"en"}
        rows += table.num_rows
    assert rows == manifest["documents"] == stats["documents_kept"]
    assert stats["documents_in"] == stats["documents_kept"] + sum(stats["dropped"].values())
    assert stats["dropped"]["duplicate"] > 0  # the demo sample holds real duplicates
    assert stats["dropped"]["language.other"] > 0  # and five languages
    assert "gopher_repetition" in stats["stages"] and "c4" not in stats["stages"]

    # Near duplicates removed: the tokenizer and token shards read corpus_fuzzy, a subset of corpus.
    fuzzy = json.loads((work / "corpus_fuzzy" / "manifest.json").read_text())
    fuzzy_stats = json.loads((work / "corpus_fuzzy" / "stats.json").read_text())
    assert fuzzy_stats["documents_in"] == manifest["documents"]
    assert fuzzy["documents"] == fuzzy_stats["documents_kept"] == manifest["documents"] - fuzzy_stats["documents_removed"]

    # Token shards: rows of uint32 of seq_len, counts as the manifest says, made by this tokenizer.
    tokens = json.loads((work / "tokens" / "manifest.json").read_text())
    assert tokens["tokenizer_sha256"] == sha256(work / "tokenizer" / "tokenizer.model")
    sequences = 0
    for shard in tokens["shards"]:
        table = ipc.open_file(work / "tokens" / shard["file"]).read_all()
        assert table.schema.field("tokens").type.list_size == 64
        sequences += table.num_rows
    assert sequences == tokens["sequences"] and tokens["tokens"] == sequences * 64

    # The assets written: each event says where, what (the manifest's sha256, counts) and which MLflow run.
    events = asset_events()
    assert events["llada_tokens"]["work_dir"] == str(work_root) and events["llada_tokens"]["path"] == str(work / "tokens")
    assert (events["llada_tokens"]["corpus_name"], events["llada_tokens"]["corpus_version"]) == ("main", version)
    assert events["llada_tokens"]["manifest_sha256"] == sha256(work / "tokens" / "manifest.json")
    assert events["llada_tokens"]["sequences"] == sequences and events["llada_tokens"]["mlflow_run_id"]
    assert events["llada_corpus"]["documents_kept"] == fuzzy["documents"]

    # Two Ray Train workers driving DeepSpeed ZeRO-2 in bf16 over gloo, on the latest corpus version.
    tokens_dir, work = work / "tokens", work_root
    pretrain = {"work_dir": str(work), "steps": 20, "micro_batch_size": 8, "lr": 2e-3, "warmup_steps": 5, "log_every": 10,
                "num_workers": 2, "zero_stage": 2, "precision": "bf16"}
    assert airflow_home.run_dag(dags["pretrain"], pretrain) == "success"
    run = json.loads((work / "pretrain" / "run.json").read_text())
    config = json.loads((work / "pretrain" / "config.json").read_text())
    assert (config["num_workers"], config["zero_stage"], config["precision"]) == (2, 2, "bf16")
    assert (config["corpus"], config["tokens_dir"]) == (f"main/{version}", str(tokens_dir))  # the version read, not "latest"
    # the export carries its tokenizer: SFT pairs, SFT, sampling and evaluation below take it from there
    assert sha256(work / "pretrain" / "tokenizer.model") == sha256(corpus_work / "tokenizer" / "tokenizer.model")
    import torch

    from trainer.checkpoint import load_model

    state = torch.load(work / "pretrain" / "model.pt", map_location="cpu", weights_only=True)
    assert state["transformer.wte.weight"].dtype == torch.bfloat16
    assert torch.isfinite(load_model(work / "pretrain")(torch.zeros(1, 8, dtype=torch.long))).all()
    assert run["final_loss"] < run["first_loss"]
    checkpoint_event = asset_events()["llada_pretrain_checkpoint"]
    assert (checkpoint_event["mlflow_run_id"], checkpoint_event["path"]) == (run["run_id"], str(work / "pretrain"))
    assert 0 < run["val_loss"] < run["first_loss"]  # on tokens/validation/, held out of training

    sft = {"work_dir": str(work), "steps": 10, "micro_batch_size": 8, "log_every": 5,
           "sample.gen_length": 16, "sample.block_length": 8, "sample.steps": 16,
           "eval.tasks": ["demo_cloze", "demo_whatis"], "eval.limit": 4, "eval.mc_num": 4, "eval.mc_batch_size": 4,
           "eval.chat": True, "eval.gen_length": 8, "eval.block_length": 8, "eval.baseline": False}
    assert airflow_home.run_dag(dags["sft"], sft) == "success"
    evaluation = json.loads((work / "sft" / "eval_summary.json").read_text())
    assert set(evaluation["metrics"]) == {"demo_cloze/acc", "demo_cloze/acc_norm", "demo_whatis/exact_match_name"}
    assert json.loads((work / "sft" / "eval_results.json").read_text())["results"]["demo_cloze"]["sample_len"] == 4
    sft_run = json.loads((work / "sft" / "run.json").read_text())
    sample = json.loads((work / "sft" / "samples.jsonl").read_text().splitlines()[-1])
    assert isinstance(sample["completion"], str) and sample["prompt"]

    # MLflow holds both runs' metrics, the checkpoint link and the checkpoint's config.
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri())
    for summary, experiment, steps, every in ((run, "pretrain", 20, 10), (sft_run, "sft", 10, 5)):
        logged = client.get_run(summary["run_id"])
        assert client.get_experiment(logged.info.experiment_id).name == experiment
        assert {"loss", "lr", "tokens_per_s", "final_loss"} <= set(logged.data.metrics)
        assert "system/cpu_utilization_percentage" in logged.data.metrics  # MLflow's system metrics
        assert ("val_loss" in logged.data.metrics) == (experiment == "pretrain")
        assert logged.data.tags["checkpoint"] == Path(summary["checkpoint"]).as_uri()
        assert logged.data.params["steps"] == str(steps)
        history = client.get_metric_history(summary["run_id"], "loss")
        assert [m.step for m in history] == list(range(every, steps + 1, every))
        assert history[-1].value == pytest.approx(summary["final_loss"])
        artifacts = {a.path for a in client.list_artifacts(summary["run_id"], "checkpoint")}
        assert artifacts == {"checkpoint/config.json", "checkpoint/model_config.json", "checkpoint/tokenizer"}
        assert "checkpoint/tokenizer/tokenizer.model" in {a.path for a in client.list_artifacts(summary["run_id"], "checkpoint/tokenizer")}
        # the checkpoint, registered: the newest version of llada-<stage> (models:/llada-<stage>/latest), aliased best
        versions = client.search_model_versions(f"name = 'llada-{experiment}'")
        newest = max(versions, key=lambda v: int(v.version))
        assert (newest.run_id, newest.version, newest.tags["checkpoint"]) == (summary["run_id"], summary["model_version"], summary["checkpoint"])
        best, scored = client.get_model_version_by_alias(f"llada-{experiment}", "best"), [float(v.tags["val_loss"]) for v in versions if "val_loss" in v.tags]
        assert float(best.tags["val_loss"]) == min(scored) if scored else best.version == newest.version
    assert (work / "pretrain" / "model.pt").is_file() and (work / "sft" / "model.pt").is_file()
    child = client.get_run(evaluation["mlflow_run_id"])  # the evaluation, a child of the SFT run
    assert child.data.tags["mlflow.parentRunId"] == sft_run["run_id"]
    assert child.data.metrics["demo_cloze/acc"] == evaluation["metrics"]["demo_cloze/acc"]

    # Lineage: each DAG run is a parent run (ended with the DAG run) whose children are its tasks' jobs,
    # named so that runs can be told apart; pretraining records its dataset, SFT the run it started from.
    logged = {name: client.get_run(summary["run_id"]) for name, summary in (("pretrain", run), ("sft", sft_run))}
    for name, child in logged.items():
        parent = client.get_run(child.data.tags["mlflow.parentRunId"])
        assert parent.data.tags["airflow.dag_id"] == child.data.tags["airflow.dag_id"] == name
        assert parent.data.tags["airflow.run_id"] == child.data.tags["airflow.run_id"]
        assert parent.info.status == "FINISHED" and parent.info.run_name.startswith(f"{name} · manual ")
        assert client.get_experiment(parent.info.experiment_id).tags["mlflow.experimentKind"] == "custom_model_development"
    assert logged["pretrain"].info.run_name.startswith("pretrain tiny 2x zero2 bf16 20 steps lr 0.002 · manual ")
    assert logged["pretrain"].data.tags["airflow.task_id"] == "train" and logged["pretrain"].data.tags["airflow.try_number"] == "1"
    [dataset] = logged["pretrain"].inputs.dataset_inputs
    assert dataset.dataset.name == "main/tokens" and dataset.dataset.digest == sha256(tokens_dir / "manifest.json")[:36]
    assert {t.key: t.value for t in dataset.tags}["version"] == version and logged["pretrain"].data.tags["llada.corpus"] == f"main/{version}"
    assert logged["sft"].data.tags["llada.init_run_id"] == run["run_id"]
    corpus_children = client.search_runs([client.get_experiment_by_name("corpus_build").experiment_id],
                                         filter_string="tags.`airflow.dag_id` = 'corpus_build'")
    assert {r.data.tags["airflow.task_id"] for r in corpus_children if "airflow.task_id" in r.data.tags} == {
        "clean_and_dedup", "fuzzy_dedup", "train_tokenizer", "write_token_shards"}
