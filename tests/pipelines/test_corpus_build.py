"""The corpus build end to end, its tasks run in this process (runner=local: the same bytes as on Ray, which
tests/integration runs), with a real MLflow store private to the module."""

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
from formats.corpus import CORPUS_SCHEMA
from pipelines.config import FILTER_STAGES, CorpusBuildConfig
from pipelines.corpus_build import main
from tests.shared_data import DEBIAN_DOCS

REAL_CORPUS_FILE = DEBIAN_DOCS / "docs-00006.jsonl.zst"

pytestmark = pytest.mark.usefixtures("private_state")


NO_FILTERS = {
    "languages": [],
    "language_threshold": 0.0,
    **{stage: False for stage in FILTER_STAGES},
}
"""The runner's mechanics, on texts too small for the quality filters (tested in tests/pipelines/filters)."""


def build_config(**values) -> CorpusBuildConfig:
    return CorpusBuildConfig(**{"runner": "local", "log_to_mlflow": False, **NO_FILTERS, **values})


def long_text(topic: str) -> str:
    return f"A paragraph about {topic}, long enough to pass the minimum length filter of the build."


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
def built(private_state, inputs, tmp_path_factory) -> tuple[dict, Path]:
    output_dir = tmp_path_factory.mktemp("build") / "corpus"
    summary = main(build_config(inputs=[str(inputs)], output_dir=str(output_dir), num_partitions=3, log_to_mlflow=True))
    return summary, output_dir


def read_shards(output_dir: Path) -> list:
    manifest = json.loads((output_dir / "manifest.json").read_text())
    return [pq.read_table(output_dir / shard["file"]) for shard in manifest["shards"]]


def test_shards_agree_with_manifest_and_stats(built):
    summary, output_dir = built
    manifest = json.loads((output_dir / "manifest.json").read_text())
    stats = json.loads((output_dir / "stats.json").read_text())
    assert sorted(p.name for p in output_dir.iterdir()) == [
        "config.json", "documents", "dropped_samples.jsonl", "manifest.json", "quarantine.jsonl", "stats.json"
    ]
    assert [s["file"] for s in manifest["shards"]] == [f"documents/shard-{i:05d}.parquet" for i in range(3)]
    tables = read_shards(output_dir)
    for shard, table in zip(manifest["shards"], tables):
        path = output_dir / shard["file"]
        assert table.schema.remove_metadata() == CORPUS_SCHEMA
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
    assert stats["quarantined"] == 4
    assert [name for name in stats["stages"]] == ["read", "normalize", "repair", "language", "dedup"]
    assert stats["stages"]["dedup"]["dropped"] == {"duplicate": 4}
    for stage in stats["stages"].values():
        assert stage["documents_in"] == stage["documents_kept"] + sum(stage["dropped"].values())
    assert stats["blank_lines"] == 1
    assert summary["documents_kept"] == 5
    assert json.loads((output_dir / "config.json").read_text())["num_partitions"] == 3


def test_first_copy_in_input_order_is_kept(built, inputs):
    _, output_dir = built
    rows = [row for table in read_shards(output_dir) for row in table.to_pylist()]
    source_gz = str(inputs / "b.jsonl.gz")
    offset_cherries = len(json.dumps({"id": "g1", "text": long_text("pears").replace(" ", "  ")})) + len(json.dumps({"id": "g2", "text": long_text("plums")})) + 2
    assert [r["id"] for r in rows] == ["p1", "p2", "g2", f"{source_gz}:{offset_cherries}", "z4"]
    assert [r["source"] for r in rows] == [str(inputs / "a.jsonl")] * 2 + [source_gz] * 2 + [str(inputs / "c.jsonl.zst")]
    assert all(r["text"] == " ".join(r["text"].split()) for r in rows)  # normalized


def test_bad_records_are_quarantined_with_their_location(built, inputs):
    _, output_dir = built
    entries = [json.loads(line) for line in (output_dir / "quarantine.jsonl").read_text().splitlines()]
    assert [(Path(e["file"]).name, e["reason"]) for e in entries] == [
        ("a.jsonl", "malformed_json"),
        ("b.jsonl.gz", "missing_text"),
        ("c.jsonl.zst", "non_string_text"),
        ("c.jsonl.zst", "invalid_utf8"),
    ]
    raw = (inputs / "a.jsonl").read_bytes()
    assert raw[entries[0]["offset"]:].startswith(b"{broken json")
    assert entries[0]["preview"] == "{broken json\n"


def test_a_sample_of_dropped_documents_is_written_per_reason(built):
    _, output_dir = built
    samples = [json.loads(line) for line in (output_dir / "dropped_samples.jsonl").read_text().splitlines()]
    assert sorted(s["reason"] for s in samples) == ["empty", "too_short", "too_short"]
    assert {s["id"] for s in samples if s["reason"] == "too_short"} == {"p4", f"{Path(samples[0]['source']).parent}/b0.jsonl:{len(json.dumps({'text': long_text('apples')})) + 1}"}


def test_counts_and_artifacts_reach_mlflow(built):
    summary, _ = built
    from common.tracking import setup_mlflow

    mlflow = setup_mlflow("corpus_build")
    run = mlflow.get_run(summary["mlflow_run_id"])
    assert run.data.metrics["documents_kept"] == 5
    assert run.data.metrics["dropped.duplicate"] == 4
    assert run.data.metrics["stages.normalize.documents_kept"] == 9
    assert run.data.params["min_chars"] == "50"
    artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(run.info.run_id)}
    assert {"manifest.json", "stats.json"} <= artifacts


def test_rerun_gives_byte_identical_shards_and_removes_stale_ones(built, inputs):
    _, output_dir = built
    before = {p.name: p.read_bytes() for p in (output_dir / "documents").iterdir()}
    manifest_before = (output_dir / "manifest.json").read_text()
    (output_dir / "documents" / "shard-00099.parquet").write_bytes(b"left by a larger run")
    # Another partitioning too: which copy survives depends on input order only.
    main(build_config(inputs=[str(inputs)], output_dir=str(output_dir), num_partitions=1))
    after = {p.name: p.read_bytes() for p in (output_dir / "documents").iterdir()}
    assert after == before
    assert json.loads((output_dir / "manifest.json").read_text())["shards"] == json.loads(manifest_before)["shards"]


def test_dedup_partitions_follow_the_input_size_unless_given(built, inputs, tmp_path):
    import math

    from pipelines.readers.inputs import expand_inputs

    _, reference = built
    size = sum(f.stat().st_size for f in expand_inputs([str(inputs)]))
    per_partition = size // 5 + 1
    output_dir = tmp_path / "sized"
    main(build_config(inputs=[str(inputs)], output_dir=str(output_dir), bytes_per_partition=per_partition))
    assert json.loads((output_dir / "config.json").read_text())["num_partitions"] == math.ceil(size / per_partition) == 5
    assert json.loads((output_dir / "manifest.json").read_text())["shards"] == json.loads((reference / "manifest.json").read_text())["shards"]
    assert load_config(CorpusBuildConfig, overrides=["inputs=a.jsonl"]).num_partitions is None  # the default: sized from the input


def test_missing_input_fails_before_anything_is_written(inputs, tmp_path):
    missing = tmp_path / "no-such-corpus"
    output_dir = tmp_path / "out"
    with pytest.raises(ConfigError, match=str(missing)):
        main(build_config(inputs=[str(inputs), str(missing)], output_dir=str(output_dir)))
    assert not output_dir.exists()


def test_truncated_and_empty_files_are_quarantined_not_fatal(tmp_path):
    lines = b"".join(json.dumps({"text": long_text(str(i))}).encode() + b"\n" for i in range(500))
    data = zstandard.ZstdCompressor().compress(lines)
    (tmp_path / "cut.jsonl.zst").write_bytes(data[: len(data) // 2])
    gz = gzip.compress(lines, mtime=0)
    (tmp_path / "cut.jsonl.gz").write_bytes(gz[: len(gz) // 2])
    (tmp_path / "empty.jsonl").write_bytes(b"")
    output_dir = tmp_path / "out"
    stats = main(build_config(inputs=[str(tmp_path)], output_dir=str(output_dir)))
    entries = [json.loads(line) for line in (output_dir / "quarantine.jsonl").read_text().splitlines()]
    assert sorted((Path(e["file"]).name, e["reason"]) for e in entries) == [
        ("cut.jsonl.gz", "truncated_file"), ("cut.jsonl.zst", "truncated_file"), ("empty.jsonl", "empty_file")
    ]
    assert 0 < stats["documents_kept"] < 1000  # what was readable before each cut is kept


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
def test_real_corpus_file_has_exact_duplicates(tmp_path):
    stats = main(build_config(inputs=[str(REAL_CORPUS_FILE)], output_dir=str(tmp_path / "out")))
    assert stats["dropped"]["duplicate"] > 0
    assert stats["documents_in"] == stats["documents_kept"] + sum(stats["dropped"].values())
    assert stats["documents_kept"] == sum(t.num_rows for t in read_shards(tmp_path / "out"))


SHARED_WARC = DEBIAN_DOCS / "web-00000.warc.gz"


@pytest.mark.skipif(not SHARED_WARC.exists(), reason=f"{SHARED_WARC} is not on this machine")
def test_real_warc_goes_through_extraction_and_every_stage(tmp_path):
    """The first 400 records of the shared crawl (a .warc.gz can be cut between gzip members)."""
    from warcio.archiveiterator import ArchiveIterator

    with open(SHARED_WARC, "rb") as source:
        records = ArchiveIterator(source)
        for count, _ in enumerate(records):
            if count == 400:
                end = records.get_record_offset()
                break
        source.seek(0)
        (tmp_path / "crawl.warc.gz").write_bytes(source.read(end))
    stats = main(CorpusBuildConfig(inputs=[str(tmp_path / "crawl.warc.gz")], output_dir=str(tmp_path / "out"), log_to_mlflow=False, runner="local"))
    assert stats["documents_in"] == 400
    assert list(stats["stages"]) == [
        "read", "normalize", "gopher_quality", "gopher_repetition", "repair", "language", "c4", "fineweb", "pii", "dedup"
    ]
    # Every record is accounted for: kept, dropped with a reason, or quarantined.
    assert stats["documents_in"] == stats["documents_kept"] + sum(stats["dropped"].values())
    assert 0 < stats["documents_kept"] < 400
    rows = [row for table in read_shards(tmp_path / "out") for row in table.to_pylist()]
    assert all(row["id"].startswith("<urn:uuid:") and "<html" not in row["text"].lower() for row in rows)
    assert {row["language"] for row in rows} == {"en"}


def test_a_build_that_keeps_no_document_fails_naming_what_dropped_the_most(inputs, tmp_path):
    output_dir = tmp_path / "out"
    with pytest.raises(ConfigError, match=r"corpus_build kept no document of [\d,]+; too_short dropped the most"):
        main(build_config(inputs=[str(inputs)], output_dir=str(output_dir), min_chars=10**9))
    assert (output_dir / "stats.json").is_file() and not (output_dir / "manifest.json").exists()  # nothing downstream takes it


def test_sigterm_ends_the_jobs_mlflow_run_as_killed(tmp_path):
    # Ray's stop_job sends SIGTERM; the job must unwind (exit 143) and its run must not stay RUNNING.
    import os
    import signal
    import subprocess
    import sys

    from mlflow import MlflowClient

    from common.paths import PROJECT_ROOT

    lines = b"".join(json.dumps({"text": long_text(str(i))}).encode() + b"\n" for i in range(200_000))
    (tmp_path / "big.jsonl").write_bytes(lines)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    command = [sys.executable, "-m", "pipelines.corpus_build", f"inputs={tmp_path / 'big.jsonl'}", f"output_dir={tmp_path / 'out'}",
               "runner=local", *[f"{stage}=false" for stage in FILTER_STAGES]]
    process = subprocess.Popen(command, cwd=PROJECT_ROOT, env=dict(os.environ, MLFLOW_TRACKING_URI=uri), stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    for line in process.stdout:
        if line.startswith("mlflow run: "):
            run_id = line.split()[2]
            break
    process.send_signal(signal.SIGTERM)
    output = process.communicate(timeout=120)[0]
    assert process.returncode == 143 and "terminated by SIGTERM" in output, output[-2000:]
    assert not (tmp_path / "out" / "manifest.json").exists()  # it was mid-run: no finished output
    assert MlflowClient(uri).get_run(run_id).info.status == "KILLED"
