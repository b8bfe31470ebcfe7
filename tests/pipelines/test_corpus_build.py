"""The corpus build end to end on a real local Ray (one per module) and a real MLflow store."""

from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import zstandard

from common.cli import run_job
from common.config import ConfigError, field_docs, load_config
from pipelines.config import CorpusBuildConfig
from pipelines.corpus_build import DROP_REASONS, main
from pipelines.readers import DOCUMENT_SCHEMA

REAL_CORPUS_FILE = Path("/work/shared/corpora/debian-docs/docs-00006.jsonl.zst")


def long_text(topic: str) -> str:
    return f"A paragraph about {topic}, long enough to pass the minimum length filter of the build."


@pytest.fixture(scope="module")
def ray_session(tmp_path_factory):
    with pytest.MonkeyPatch.context() as env:
        env.setenv("LLADA_STATE_DIR", str(tmp_path_factory.mktemp("state")))
        env.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
        env.delenv("RAY_ADDRESS", raising=False)
        # mlflow.set_tracking_uri() exports MLFLOW_TRACKING_URI, which common.tracking then prefers over
        # LLADA_STATE_DIR. setenv-then-delenv makes the undo after this module remove the value mlflow
        # exports meanwhile, so no other module inherits this module's store (nor this one another's).
        env.setenv("MLFLOW_TRACKING_URI", "")
        env.delenv("MLFLOW_TRACKING_URI")
        from common.ray_runtime import init_ray

        ray = init_ray(num_cpus=2)
        yield ray
        ray.shutdown()


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    """Files of every format, with duplicates within and across files and one of each bad line.

    b0.jsonl keeps nothing (a copy of p1 and a short text), so no shard is written for it.
    """
    folder = tmp_path_factory.mktemp("inputs")
    plain = [
        {"id": "p1", "text": long_text("apples")},
        {"id": "p2", "text": long_text("pears")},
        {"id": "p3", "text": long_text("apples")},  # duplicate within the file
        {"id": "p4", "text": "too short"},
        {"id": "p5", "text": " \n\t "},  # empty after normalization
    ]
    (folder / "a.jsonl").write_bytes(
        b"".join(json.dumps(r).encode() + b"\n" for r in plain) + b"\n" + b"{broken json\n"
    )
    gz = [
        {"id": "g1", "text": long_text("pears").replace(" ", "  ")},  # duplicate of p2 after normalization
        {"id": "g2", "text": long_text("plums")},
        {"text": long_text("cherries")},  # no id: named by its location
        {"id": "g4", "body": "missing text"},
    ]
    (folder / "b0.jsonl").write_text(json.dumps({"text": long_text("apples")}) + "\n" + json.dumps({"text": "tiny"}) + "\n")
    (folder / "b.jsonl.gz").write_bytes(gzip.compress(b"".join(json.dumps(r).encode() + b"\n" for r in gz), mtime=0))
    zst = [
        json.dumps({"id": "z1", "text": long_text("plums") + "\n\n\n"}).encode(),  # duplicate of g2
        json.dumps({"id": "z2", "text": 42}).encode(),
        b'{"id": "z3", "text": "caf\xe9 latin-1 byte"}',
        json.dumps({"id": "z4", "text": long_text("figs")}).encode(),
    ]
    (folder / "c.jsonl.zst").write_bytes(zstandard.ZstdCompressor().compress(b"\n".join(zst) + b"\n"))
    return folder


@pytest.fixture(scope="module")
def built(ray_session, inputs, tmp_path_factory) -> tuple[dict, Path]:
    output_dir = tmp_path_factory.mktemp("build") / "corpus"
    summary = main(CorpusBuildConfig(inputs=[str(inputs)], output_dir=str(output_dir), num_partitions=3, log_to_mlflow=True))
    return summary, output_dir


def read_shards(output_dir: Path) -> list:
    manifest = json.loads((output_dir / "manifest.json").read_text())
    return [pq.read_table(output_dir / shard["file"]) for shard in manifest["shards"]]


def test_shards_agree_with_manifest_and_stats(built):
    summary, output_dir = built
    manifest = json.loads((output_dir / "manifest.json").read_text())
    stats = json.loads((output_dir / "stats.json").read_text())
    assert sorted(p.name for p in output_dir.iterdir()) == ["config.json", "documents", "manifest.json", "stats.json"]
    assert [s["file"] for s in manifest["shards"]] == [f"documents/shard-{i:05d}.parquet" for i in range(3)]
    tables = read_shards(output_dir)
    for shard, table in zip(manifest["shards"], tables):
        path = output_dir / shard["file"]
        assert table.schema.remove_metadata() == DOCUMENT_SCHEMA
        assert table.num_rows == shard["documents"]
        assert sum(len(t.encode()) for t in table["text"].to_pylist()) == shard["bytes"]
        assert hashlib.sha256(path.read_bytes()).hexdigest() == shard["sha256"]
    assert manifest["documents"] == stats["documents_kept"] == sum(t.num_rows for t in tables) == 5
    assert manifest["bytes"] == stats["bytes_kept"]
    assert stats["documents_in"] == stats["documents_kept"] + sum(stats["dropped"].values()) == 16
    assert (stats["files"], stats["shards"]) == (4, 3)
    assert stats["dropped"] == {
        "empty": 1,
        "too_short": 2,
        "duplicate": 4,
        "malformed_json": 1,
        "invalid_utf8": 1,
        "missing_text": 1,
        "non_string_text": 1,
    }
    assert set(stats["dropped"]) == set(DROP_REASONS)
    assert stats["blank_lines"] == 1
    assert summary["documents_kept"] == 5
    assert json.loads((output_dir / "config.json").read_text())["num_partitions"] == 3


def test_first_copy_in_input_order_is_kept(built, inputs):
    _, output_dir = built
    rows = [row for table in read_shards(output_dir) for row in table.to_pylist()]
    source_gz = str(inputs / "b.jsonl.gz")
    assert [r["id"] for r in rows] == ["p1", "p2", "g2", f"{source_gz}:3", "z4"]
    assert [r["source"] for r in rows] == [str(inputs / "a.jsonl")] * 2 + [source_gz] * 2 + [str(inputs / "c.jsonl.zst")]
    assert all(r["text"] == " ".join(r["text"].split()) for r in rows)  # normalized


def test_bad_records_are_reported_with_their_location(built, inputs):
    _, output_dir = built
    examples = json.loads((output_dir / "stats.json").read_text())["examples"]
    assert [(Path(e["file"]).name, e["line"], e["reason"]) for e in examples] == [
        ("a.jsonl", 7, "malformed_json"),
        ("b.jsonl.gz", 4, "missing_text"),
        ("c.jsonl.zst", 2, "non_string_text"),
        ("c.jsonl.zst", 3, "invalid_utf8"),
    ]


def test_counts_and_artifacts_reach_mlflow(built):
    summary, _ = built
    from common.tracking import setup_mlflow

    mlflow = setup_mlflow("corpus_build")
    run = mlflow.get_run(summary["mlflow_run_id"])
    assert run.data.metrics["documents_kept"] == 5
    assert run.data.metrics["dropped_duplicate"] == 4
    assert run.data.params["min_chars"] == "50"
    artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(run.info.run_id)}
    assert {"manifest.json", "stats.json"} <= artifacts


def test_rerun_gives_byte_identical_shards_and_removes_stale_ones(built, inputs):
    _, output_dir = built
    before = {p.name: p.read_bytes() for p in (output_dir / "documents").iterdir()}
    manifest_before = (output_dir / "manifest.json").read_text()
    (output_dir / "documents" / "shard-00099.parquet").write_bytes(b"left by a larger run")
    # Another partitioning too: which copy survives depends on input order only.
    main(CorpusBuildConfig(inputs=[str(inputs)], output_dir=str(output_dir), num_partitions=1, log_to_mlflow=False))
    after = {p.name: p.read_bytes() for p in (output_dir / "documents").iterdir()}
    assert after == before
    assert json.loads((output_dir / "manifest.json").read_text())["shards"] == json.loads(manifest_before)["shards"]


def test_missing_input_fails_before_anything_is_written(ray_session, inputs, tmp_path):
    missing = tmp_path / "no-such-corpus"
    output_dir = tmp_path / "out"
    with pytest.raises(ConfigError, match=str(missing)):
        main(CorpusBuildConfig(inputs=[str(inputs), str(missing)], output_dir=str(output_dir), log_to_mlflow=False))
    assert not output_dir.exists()


def test_corrupt_file_fails_naming_it_and_leaves_no_manifest(ray_session, tmp_path):
    data = zstandard.ZstdCompressor().compress(b"".join(json.dumps({"text": long_text(str(i))}).encode() + b"\n" for i in range(500)))
    (tmp_path / "cut.jsonl.zst").write_bytes(data[: len(data) // 2])
    output_dir = tmp_path / "out"
    with pytest.raises(ValueError, match="cut.jsonl.zst: cannot read past line"):
        main(CorpusBuildConfig(inputs=[str(tmp_path / "cut.jsonl.zst")], output_dir=str(output_dir), log_to_mlflow=False))
    assert not (output_dir / "manifest.json").exists()


def test_unknown_or_invalid_config_is_a_config_error():
    with pytest.raises(ConfigError, match="min_char'"):
        load_config(CorpusBuildConfig, overrides=["min_char=10"])
    with pytest.raises(ConfigError, match="num_partitions"):
        load_config(CorpusBuildConfig, overrides=["num_partitions=0"])
    config = load_config(CorpusBuildConfig, overrides=["inputs=a.jsonl,b/", "min_chars=7"])
    assert (config.inputs, config.min_chars) == (["a.jsonl", "b/"], 7)
    assert set(field_docs(CorpusBuildConfig)) == {f for f in CorpusBuildConfig.__dataclass_fields__}


def test_cli_dry_run_and_bad_key(capsys):
    assert run_job(CorpusBuildConfig, main, ["--dry-run", "min_chars=7"]) == 0
    assert json.loads(capsys.readouterr().out)["min_chars"] == 7
    assert run_job(CorpusBuildConfig, main, ["colour=blue"]) == 2
    assert "colour" in capsys.readouterr().err


@pytest.mark.skipif(not REAL_CORPUS_FILE.exists(), reason=f"{REAL_CORPUS_FILE} is not on this machine")
def test_real_corpus_file_has_exact_duplicates(ray_session, tmp_path):
    stats = main(CorpusBuildConfig(inputs=[str(REAL_CORPUS_FILE)], output_dir=str(tmp_path / "out"), log_to_mlflow=False))
    assert stats["dropped"]["duplicate"] > 0
    assert stats["documents_in"] == stats["documents_kept"] + sum(stats["dropped"].values())
    assert stats["documents_kept"] == sum(t.num_rows for t in read_shards(tmp_path / "out"))
