"""common.job_harness on a real MLflow store in files under tmp_path: the manifest comes last, a failure
leaves none and a FAILED run, metric keys are the stats' paths joined by dots, one table for every job."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from common.config import ConfigError
from common.files import write_json
from common.job_harness import MANIFEST, Built, run_folder_job


@dataclass(kw_only=True)
class JobConfig:
    output_dir: str
    """The job's folder."""
    mlflow_experiment: str
    """Its MLflow experiment."""
    log_to_mlflow: bool = True
    """Whether it logs to MLflow."""
    size: int = 1
    """A key setting of the job, for its run name."""


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    """An MLflow client of a store of this module's own: an SQLite file and an artifact folder."""
    from mlflow import MlflowClient

    root = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as env:
        env.setenv("MLFLOW_TRACKING_URI", uri)
        env.setenv("MLFLOW_ARTIFACT_ROOT", (root / "artifacts").as_uri())
        env.delenv("LLADA_DAG_CONTEXT", raising=False)
        yield MlflowClient(uri)


def only_run(client, experiment: str):
    (run,) = client.search_runs([client.get_experiment_by_name(experiment).experiment_id])
    return run


def stale_folder(tmp_path: Path) -> tuple[Path, Path]:
    """A folder an earlier run left finished, and work files of a run killed since."""
    output_dir, work = tmp_path / "out", tmp_path / "out" / "_work"
    work.mkdir(parents=True)
    write_json(output_dir / MANIFEST, {"from": "the earlier run"})
    return output_dir, work


def test_the_manifest_is_written_last_after_config_and_stats_then_the_work_is_removed(client, tmp_path):
    output_dir, work = stale_folder(tmp_path)
    seen = {}

    def build() -> Built:
        seen["manifest during the build"] = (output_dir / MANIFEST).exists()
        (output_dir / "data.txt").write_text("the job's output\n")
        return Built({"documents": 3, "seconds": {"read": 0.5}}, write_manifest)

    def write_manifest() -> None:
        seen["folder before the manifest"] = sorted(p.name for p in output_dir.iterdir())
        write_json(output_dir / MANIFEST, {"documents": 3})

    config = JobConfig(output_dir=str(output_dir), mlflow_experiment="harness_order", size=7)
    result = run_folder_job(config, "harness_job", build, settings=(f"size {config.size}",), artifacts=("data.txt",), work=work)

    assert seen == {"manifest during the build": False,
                    "folder before the manifest": ["_work", "config.json", "data.txt", "stats.json"]}
    assert sorted(p.name for p in output_dir.iterdir()) == ["config.json", "data.txt", "manifest.json", "stats.json"]
    stats = json.loads((output_dir / "stats.json").read_text())
    assert stats["documents"] == 3 and stats["seconds"]["read"] == 0.5 and stats["seconds"]["total"] >= 0
    assert json.loads((output_dir / "config.json").read_text()) == {"log_to_mlflow": True, "mlflow_experiment": "harness_order",
                                                                    "output_dir": str(output_dir), "size": 7}
    assert result == {**stats, "output_dir": str(output_dir), "mlflow_run_id": result["mlflow_run_id"]}
    run = client.get_run(result["mlflow_run_id"])
    assert (run.info.status, run.info.run_name, run.data.params["size"]) == ("FINISHED", "harness_job size 7", "7")
    assert {a.path for a in client.list_artifacts(run.info.run_id)} == {"data.txt", "manifest.json", "stats.json"}
    assert not list(output_dir.glob(".*tmp*"))  # every file went through a temporary name


def test_a_failure_inside_the_build_leaves_no_manifest_and_ends_the_run_failed(client, tmp_path):
    output_dir, work = stale_folder(tmp_path)

    def build() -> Built:
        raise RuntimeError("a task failed")

    with pytest.raises(RuntimeError, match="a task failed"):
        run_folder_job(JobConfig(output_dir=str(output_dir), mlflow_experiment="harness_failure"), "harness_job", build,
                       work=work)
    assert sorted(p.name for p in output_dir.iterdir()) == ["_work"]  # the work stays for a rerun
    assert only_run(client, "harness_failure").info.status == "FAILED"


def test_a_manifest_writer_that_refuses_the_folder_leaves_the_stats_and_no_manifest(client, tmp_path):
    output_dir, work = stale_folder(tmp_path)

    def refuse() -> None:
        raise ConfigError("kept nothing")

    with pytest.raises(ConfigError, match="kept nothing"):
        run_folder_job(JobConfig(output_dir=str(output_dir), mlflow_experiment="harness_refusal"), "harness_job",
                       lambda: Built({"documents": 0, "seconds": {}}, refuse), work=work)
    assert sorted(p.name for p in output_dir.iterdir()) == ["_work", "config.json", "stats.json"]  # why, and no manifest
    assert only_run(client, "harness_refusal").info.status == "FAILED"


def test_metric_keys_are_the_stats_paths_joined_by_dots(client, tmp_path):
    stats = {"documents": 3, "dropped": {"too_short": 2, "language": {"other": 1}}, "sha256": "ab", "resumed": True,
             "by_source": {"data/a b.jsonl": {"documents": 1}}, "seconds": {"read": 0.5}, "peak_rss_mb": {"read": 80.0}}
    result = run_folder_job(JobConfig(output_dir=str(tmp_path / "out"), mlflow_experiment="harness_metrics"), "harness_job",
                            lambda: Built(stats), not_metrics=("by_source",))
    run = client.get_run(result["mlflow_run_id"])
    assert set(run.data.metrics) == {"documents", "dropped.too_short", "dropped.language.other", "seconds.read", "seconds.total",
                                     "peak_rss_mb.read"}
    assert run.data.metrics["dropped.language.other"] == 1
    assert {a.path for a in client.list_artifacts(run.info.run_id)} == {"stats.json"}  # no manifest, none logged


def test_every_job_ends_with_the_same_table(tmp_path, capsys):
    stats = {"documents": 12345, "megabytes": 1.5, "sha256": "ab", "dropped": {"x": 1}, "seconds": {"read": 0.5},
             "peak_rss_mb": {"read": 80.4}}
    result = run_folder_job(JobConfig(output_dir=str(tmp_path), mlflow_experiment="unused", log_to_mlflow=False), "harness_job",
                            lambda: Built(stats), table=lambda stats: [f"the job's own line: {stats['dropped']}"])
    assert result["mlflow_run_id"] is None
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("[harness_job] done in ") and lines[0].endswith(f" s -> {tmp_path}")
    assert lines[1:] == [
        "  documents          12,345",
        "  megabytes             1.5",
        "  sha256     ab",
        "  the job's own line: {'x': 1}",
        f"  seconds: read 0.5, total {result['seconds']['total']:.1f}",
        "  peak RSS per worker: read 80 MB",
    ]
