"""The fuzzy dedup job end to end on planted near duplicates of real documents, its tasks run in this process
(runner=local: the same bytes as on Ray); the SIGKILL test runs on a real local Ray."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import pipelines.fuzzy_dedup as fuzzy_dedup
from bench.near_duplicates import BOILERPLATE, choose_bases, edit, read_documents
from common.cli import run_job
from common.config import ConfigError, field_docs, load_config
from pipelines import minhash
from pipelines.fuzzy_dedup import main
from pipelines.fuzzy_dedup_config import FuzzyDedupConfig
from pipelines.minhash_presets import fineweb
from tests.formats import write_corpus_manifest
from formats.corpus import DOCUMENT_SCHEMA

DEMO_FILE = Path(__file__).resolve().parents[2] / "data" / "demo" / "corpus" / "part-00000.jsonl.zst"
OUTPUTS = ("documents/shard-00000.parquet", "documents/shard-00001.parquet", "documents/shard-00002.parquet", "duplicates.parquet")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """Three shards of real documents with planted near duplicates; returns (corpus_dir, texts by id).

    Clusters to find: b0 with an exact copy (other shard, source C) and a 1%-substituted copy; b1 with a
    1%-inserted (longer) copy; b2 with a copy wrapped in boilerplate. Two different punctuation-only
    documents have no shingles and must stay.
    """
    bases = choose_bases(read_documents([DEMO_FILE]), 6, min_words=300, max_words=3000, max_base_jaccard=0.2, seed=0)
    text = {f"b{i}": base[1] for i, base in enumerate(bases)}
    rng = np.random.default_rng(0)
    vocabulary = sorted({w for t in text.values() for w in t.split() if w.isalpha()})
    text |= {
        "b0-copy": text["b0"],
        "b0-edited": edit(text["b0"], "substitute", 0.01, vocabulary, rng),
        "b1-longer": edit(text["b1"], "insert", 0.01, vocabulary, rng),
        "b2-boilerplate": f"{BOILERPLATE[0][0]}\n\n{text['b2']}\n\n{BOILERPLATE[0][1]}",
        "punct-1": "--- *** --- !!! ---" * 5,
        "punct-2": "=== ??? === ... ===" * 5,
    }
    shards = [
        ("A", ["b0", "b1", "b1-longer", "b3", "punct-1"]),
        ("B", ["b4", "b0-edited", "punct-2"]),
        ("C", ["b2", "b0-copy", "b5", "b2-boilerplate"]),
    ]
    folder = tmp_path_factory.mktemp("corpus")
    (folder / "documents").mkdir()
    for index, (source, ids) in enumerate(shards):
        table = pa.table([ids, [text[i] for i in ids], [source] * len(ids)], schema=DOCUMENT_SCHEMA)
        pq.write_table(table, folder / "documents" / f"shard-{index:05d}.parquet")
    write_corpus_manifest(folder)
    return folder, text


def config(corpus_dir: Path, output_dir: Path, **overrides) -> FuzzyDedupConfig:
    # 12 documents over 3 partitions: every round has several tasks, and most routes cross partitions.
    values = {"corpus_dir": str(corpus_dir), "output_dir": str(output_dir), "documents_per_partition": 4, "batch_size": 2}
    return FuzzyDedupConfig(**(values | {"runner": "local", "log_to_mlflow": False} | overrides))


@pytest.fixture(scope="module")
def built(private_state, corpus, tmp_path_factory) -> tuple[dict, Path]:
    output_dir = tmp_path_factory.mktemp("out") / "fuzzy"
    return main(config(corpus[0], output_dir, log_to_mlflow=True)), output_dir


def kept_ids(output_dir: Path) -> list[list[str]]:
    return [pq.read_table(output_dir / name)["id"].to_pylist() for name in OUTPUTS[:3]]


def clusters(output_dir: Path) -> dict[str, tuple[int, str]]:
    rows = pq.read_table(output_dir / "duplicates.parquet").to_pylist()
    return {r["id"]: (r["cluster_id"], r["survivor_id"]) for r in rows}


def test_planted_near_duplicates_are_removed_and_the_first_copy_kept(built):
    _, output_dir = built
    assert kept_ids(output_dir) == [["b0", "b1", "b3", "punct-1"], ["b4", "punct-2"], ["b2", "b5"]]
    found = clusters(output_dir)
    assert {i: s for i, (_, s) in found.items()} == {
        "b0": "b0", "b0-copy": "b0", "b0-edited": "b0", "b1": "b1", "b1-longer": "b1", "b2": "b2", "b2-boilerplate": "b2"
    }
    assert found["b0"][0] == 0  # cluster_id: the node (shard << 32 | row) of the cluster's first document
    assert found["b2"][0] == found["b2-boilerplate"][0] == 2 << 32


def test_outputs_agree_with_manifest_and_stats(built, corpus):
    summary, output_dir = built
    manifest = json.loads((output_dir / "manifest.json").read_text())
    stats = json.loads((output_dir / "stats.json").read_text())
    assert sorted(p.name for p in output_dir.iterdir()) == ["config.json", "documents", "duplicates.parquet", "manifest.json", "stats.json"]
    assert [s["file"] for s in manifest["shards"]] == list(OUTPUTS[:3])
    for shard in manifest["shards"]:
        table = pq.read_table(output_dir / shard["file"])
        assert table.schema.remove_metadata() == DOCUMENT_SCHEMA
        assert (table.num_rows, sum(len(t.encode()) for t in table["text"].to_pylist())) == (shard["documents"], shard["bytes"])
        assert hashlib.sha256((output_dir / shard["file"]).read_bytes()).hexdigest() == shard["sha256"]
    texts = corpus[1]
    removed = ("b0-copy", "b0-edited", "b1-longer", "b2-boilerplate")
    assert (stats["documents_in"], stats["documents_kept"], stats["documents_removed"]) == (12, 8, 4)
    assert stats["bytes_removed"] == sum(len(texts[i].encode()) for i in removed)
    assert stats["bytes_in"] == stats["bytes_kept"] + stats["bytes_removed"] == sum(len(t.encode()) for t in texts.values())
    assert (stats["clusters"], stats["documents_in_clusters"], stats["documents_without_shingles"]) == (3, 7, 2)
    assert stats["by_source"]["C"] == {"documents_in": 4, "documents_kept": 2, "documents_removed": 2,
                                       "bytes_in": sum(len(texts[i].encode()) for i in ("b2", "b0-copy", "b5", "b2-boilerplate")),
                                       "bytes_removed": len(texts["b0-copy"].encode()) + len(texts["b2-boilerplate"].encode())}
    assert stats["partitions"] == 3 and stats["component_rounds"] >= 2 and stats["tasks_resumed"] == 0
    assert set(stats["seconds"]) == {"signatures", "buckets", "components", "clusters", "write", "finish", "total"}
    assert all(mb > 0 for mb in stats["peak_rss_mb"].values())
    assert summary["documents_kept"] == 8 and json.loads((output_dir / "config.json").read_text())["preset"] == "fineweb"


def test_counts_and_artifacts_reach_mlflow(built):
    summary, _ = built
    from common.tracking import setup_mlflow

    mlflow = setup_mlflow("fuzzy_dedup")
    run = mlflow.get_run(summary["mlflow_run_id"])
    assert run.data.metrics["documents_removed"] == 4 and run.data.metrics["clusters"] == 3
    assert run.data.params["preset"] == "fineweb"
    assert {a.path for a in mlflow.MlflowClient().list_artifacts(run.info.run_id)} >= {"manifest.json", "stats.json"}


def test_survivor_rules(corpus, built, tmp_path):
    texts = corpus[1]
    main(config(corpus[0], tmp_path / "longest", survivor="longest"))
    longest = clusters(tmp_path / "longest")
    assert {i: c for i, (c, _) in longest.items()} == {i: c for i, (c, _) in clusters(built[1]).items()}
    for document_id, (cluster_id, survivor_id) in longest.items():
        members = [i for i, (c, _) in longest.items() if c == cluster_id]
        assert survivor_id == max(members, key=lambda i: (len(texts[i].encode()), -members.index(i)))
    assert longest["b1"][1] == "b1-longer" and longest["b2"][1] == "b2-boilerplate"

    main(config(corpus[0], tmp_path / "ranked", survivor="source_rank", source_ranking=["C", "B"]))
    ranked = {i: s for i, (_, s) in clusters(tmp_path / "ranked").items()}
    assert (ranked["b0"], ranked["b1"], ranked["b2"]) == ("b0-copy", "b1", "b2")
    assert kept_ids(tmp_path / "ranked")[2] == ["b2", "b0-copy", "b5"]


@pytest.mark.parametrize("method", ["shingles", "signature"])
def test_verification_drops_candidates_below_the_threshold(corpus, tmp_path, method):
    stats = main(config(corpus[0], tmp_path / "out", verify_threshold=1.0, verify_method=method))
    # Only identical shingle sets (or signatures) pass: the exact copy; the edited copies are candidates but dropped.
    assert {i: s for i, (_, s) in clusters(tmp_path / "out").items()} == {"b0": "b0", "b0-copy": "b0"}
    assert stats["candidate_edges"] > stats["edges"] >= 1
    assert not (tmp_path / "out" / "_work").exists()  # the shingle sets go with the work files


def test_shingle_verification_uses_the_true_jaccard_of_the_pair(corpus, tmp_path):
    texts = corpus[1]
    params = fineweb()

    def shingles(document_id: str) -> set[int]:
        normalized = minhash.normalize(pa.array([texts[document_id]]))[0].as_py()
        return set(minhash.shingle_hashes(normalized, params).tolist())

    a, b = shingles("b1"), shingles("b1-longer")
    true = len(a & b) / len(a | b)
    assert 0.8 < true < 1.0
    # At exactly the pair's Jaccard it stays; a hair above it goes (an estimate would not hit this edge).
    main(config(corpus[0], tmp_path / "at", verify_threshold=true))
    assert clusters(tmp_path / "at")["b1-longer"][1] == "b1"
    main(config(corpus[0], tmp_path / "above", verify_threshold=min(1.0, true + 1e-9)))
    assert "b1-longer" not in clusters(tmp_path / "above")


def test_a_chain_of_near_duplicates_does_not_remove_a_document_unlike_its_survivor(tmp_path):
    """A~B and B~C (Jaccard 0.706 each, over 5-word shingles) but A and C share under half their shingles
    (0.487): the component is A-B-C, yet C must not go for A. B goes, C stays; with FineWeb's setting
    (no verification) the chain removes C too."""
    import itertools

    words = ["".join(letters) for letters in itertools.product("bcdfghjklm", repeat=3)]
    n, k = 300, 51  # B's distinct words; A and C replace k of them, at either end
    base, fresh = words[:n], iter(words[n:])
    texts = {
        "A": [next(fresh) for _ in range(k)] + base[k:],
        "B": base,
        "C": base[:-k] + [next(fresh) for _ in range(k)],
        "other": [next(fresh) for _ in range(n)],
    }
    shingles = {name: {tuple(t[i:i + 5]) for i in range(len(t) - 4)} for name, t in texts.items()}

    def jaccard(a: str, b: str) -> float:
        return len(shingles[a] & shingles[b]) / len(shingles[a] | shingles[b])

    assert jaccard("A", "B") >= 0.7 and jaccard("B", "C") >= 0.7 and jaccard("A", "C") < 0.5
    folder = tmp_path / "corpus"
    (folder / "documents").mkdir(parents=True)
    ids = list(texts)
    table = pa.table([ids, [" ".join(texts[i]) for i in ids], ["web"] * len(ids)], schema=DOCUMENT_SCHEMA)
    pq.write_table(table, folder / "documents" / "shard-00000.parquet")
    write_corpus_manifest(folder)
    # 20 bands of 2 rows: every pair above J = 0.4 is a candidate (A-C too, dropped by verification).
    lsh = {"preset": "custom", "shingle": "word", "ngram": 5, "bands": 20, "rows": 2}
    stats = main(config(folder, tmp_path / "verified", **lsh))  # the defaults: verify_threshold 0.7, survivor_threshold 0.5
    assert kept_ids_of(tmp_path / "verified") == ["A", "C", "other"]
    assert {i: s for i, (_, s) in clusters(tmp_path / "verified").items()} == {"A": "A", "B": "A"}  # C in no cluster
    assert stats["documents_unchained"] == 1 and stats["clusters"] == 1
    main(config(folder, tmp_path / "fineweb", verify_threshold=None, survivor_threshold=None, **lsh))
    assert kept_ids_of(tmp_path / "fineweb") == ["A", "other"]


@pytest.mark.parametrize("block_rows", [7, 1 << 20])
def test_band_rows_reach_their_partition_in_input_order_whatever_the_block(tmp_path, block_rows):
    """A signature task buffers its band rows and splits a block at a time: each partition's file holds
    exactly its rows, in the order they came, however the blocks fall."""
    from pipelines.components import partition_of
    from pipelines.fuzzy_tasks import BandRows
    from pipelines.fuzzy_work import BAND_SCHEMA

    rng = np.random.default_rng(0)
    keys = rng.integers(0, 2**63, size=1000, dtype=np.int64).astype(np.uint64)
    nodes = np.arange(1000, dtype=np.int64)
    paths = [tmp_path / f"part-{p}.parquet" for p in range(5)]
    writers = [pq.ParquetWriter(path, BAND_SCHEMA) for path in paths]
    with BandRows(writers, block_rows=block_rows) as band_rows:
        for start in range(0, 1000, 60):  # batches of 60 rows, as a signature task adds them
            band_rows.add(keys[start : start + 60], nodes[start : start + 60])
    for writer in writers:
        writer.close()
    partition = partition_of(keys, 5)
    for p, path in enumerate(paths):
        table = pq.read_table(path)
        assert table["key"].to_numpy().tolist() == keys[partition == p].tolist()
        assert table["node"].to_numpy().tolist() == nodes[partition == p].tolist()
    assert sum(pq.ParquetFile(path).num_row_groups for path in paths) == 5 * (17 if block_rows == 7 else 1)  # a row group per partition per block


def kept_ids_of(output_dir: Path) -> list[str]:
    return pq.read_table(output_dir / "documents" / "shard-00000.parquet")["id"].to_pylist()


def test_a_rerun_after_a_crash_redoes_only_unfinished_tasks(corpus, built, tmp_path, monkeypatch):
    output_dir = tmp_path / "crashed"
    run_round = fuzzy_dedup.run_round

    def crash_at_clusters(runner, work, stage, *args, **kwargs):
        if stage == "clusters":
            raise RuntimeError("killed")
        return run_round(runner, work, stage, *args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(fuzzy_dedup, "run_round", crash_at_clusters)
        with pytest.raises(RuntimeError, match="killed"):
            main(config(corpus[0], output_dir))
    done = output_dir / "_work" / "done"
    markers = list(done.rglob("*.json"))
    assert not (output_dir / "manifest.json").exists() and len(markers) > 10
    for lost in ("signatures/00001.json", "buckets/00002.json", "components-001/00000.json", "components-002/00002.json"):
        (done / lost).unlink()
    stats = main(config(corpus[0], output_dir))
    assert stats["tasks_resumed"] == len(markers) - 4
    for name in OUTPUTS:
        assert (output_dir / name).read_bytes() == (built[1] / name).read_bytes(), name
    manifest = json.loads((output_dir / "manifest.json").read_text())
    assert manifest["shards"] == json.loads((built[1] / "manifest.json").read_text())["shards"]
    assert not (output_dir / "_work").exists()


def test_work_of_another_config_is_not_reused(corpus, built, tmp_path):
    output_dir = tmp_path / "out"
    (output_dir / "_work" / "done" / "signatures").mkdir(parents=True)
    (output_dir / "_work" / "fingerprint.json").write_text("{}")
    (output_dir / "_work" / "done" / "signatures" / "00000.json").write_text('{"documents": 0}')
    stats = main(config(corpus[0], output_dir))
    assert stats["tasks_resumed"] == 0 and kept_ids(output_dir) == kept_ids(built[1])


@pytest.mark.integration
def test_sigkill_mid_run_then_rerun_gives_the_same_bytes(ray_session, corpus, built, tmp_path):
    """The driver killed with SIGKILL while components rounds run, on the same Ray cluster; rerun in-process
    (runner=local: the work the Ray tasks marked done is resumed)."""
    output_dir = tmp_path / "killed"
    overrides = [f"corpus_dir={corpus[0]}", f"output_dir={output_dir}", "documents_per_partition=4", "batch_size=2", "log_to_mlflow=false"]
    assert load_config(FuzzyDedupConfig, overrides=overrides) == config(corpus[0], output_dir, runner="ray")
    env = dict(os.environ, RAY_ADDRESS=ray_session.get_runtime_context().gcs_address)
    driver = subprocess.Popen([sys.executable, "-m", "pipelines.fuzzy_dedup", *overrides], env=env, stdout=subprocess.DEVNULL)
    first_round = output_dir / "_work" / "done" / "components-001"
    deadline = time.monotonic() + 120
    while not (first_round.is_dir() and any(first_round.iterdir())):
        assert driver.poll() is None and time.monotonic() < deadline, "the run ended before it could be killed"
        time.sleep(0.02)
    os.kill(driver.pid, signal.SIGKILL)
    driver.wait()
    assert not (output_dir / "manifest.json").exists()
    stats = main(config(corpus[0], output_dir))
    assert stats["tasks_resumed"] > 0
    for name in OUTPUTS:
        assert (output_dir / name).read_bytes() == (built[1] / name).read_bytes(), name


def test_config_errors_name_the_problem(corpus, tmp_path):
    assert set(field_docs(FuzzyDedupConfig)) == set(FuzzyDedupConfig.__dataclass_fields__)
    with pytest.raises(ConfigError, match="preset"):
        load_config(FuzzyDedupConfig, overrides=["preset=minhash"])
    with pytest.raises(ConfigError, match="source_ranking"):
        load_config(FuzzyDedupConfig, overrides=["survivor=source_rank"])
    with pytest.raises(ConfigError, match="verify_threshold"):
        load_config(FuzzyDedupConfig, overrides=["verify_threshold=1.5"])
    with pytest.raises(ConfigError, match="verify_method must be one of shingles, signature"):
        load_config(FuzzyDedupConfig, overrides=["verify_method=exact"])
    with pytest.raises(ConfigError, match="preset=custom"):
        main(config(corpus[0], tmp_path / "out", bands=20))
    with pytest.raises(ConfigError, match="input shards would be overwritten"):
        main(config(corpus[0], corpus[0]))
    missing = tmp_path / "no-corpus"
    with pytest.raises(ConfigError, match=str(missing)):
        main(config(missing, tmp_path / "out"))
    assert not (tmp_path / "out").exists()


def test_cli_dry_run_and_bad_key(capsys):
    assert run_job(FuzzyDedupConfig, main, ["--dry-run", "preset=nemo", "verify_threshold=0.7"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert (printed["preset"], printed["verify_threshold"], printed["bands"]) == ("nemo", 0.7, None)
    assert run_job(FuzzyDedupConfig, main, ["corpus_dir=x", "preset=custom", "shingle=word"]) == 2
    assert "preset=custom needs ngram, bands, rows" in capsys.readouterr().err
