"""The token shards job end to end, its tasks run in this process (runner=local: the same bytes as on Ray), with
an MLflow store private to the module: counts add up, files match the manifest, reruns are identical."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from common.cli import run_job
from common.config import ConfigError
from formats.token_shards import load_token_shards, read_token_shard
from pipelines.packing import pack_sequences
from pipelines.token_config import TokenShardsConfig
from pipelines.token_shards import main
from tests.tokenizer import real_documents, train_tokenizer, write_corpus
from tokenizer.encode import Tokenizer

SEQ_LEN = 64
SHARDS = 3


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> tuple[Path, Path, list[dict]]:
    documents = real_documents(english=150, polish=30)
    corpus = write_corpus(tmp_path_factory.mktemp("corpus"), documents, shards=SHARDS)
    tokenizer_dir = tmp_path_factory.mktemp("tokenizer")
    train_tokenizer(corpus, tokenizer_dir, vocab_size=800)
    return corpus, tokenizer_dir, documents


def config(inputs, output: Path, **overrides) -> TokenShardsConfig:
    corpus, tokenizer_dir, _ = inputs
    values = {"corpus_dir": str(corpus), "tokenizer_dir": str(tokenizer_dir), "output_dir": str(output)}
    settings = {"seq_len": SEQ_LEN, "batch_size": 16, "runner": "local", "log_to_mlflow": False}
    return TokenShardsConfig(**{**values, **settings, **overrides})


@pytest.fixture(scope="module")
def run(private_state, inputs, tmp_path_factory) -> tuple[Path, dict]:
    output = tmp_path_factory.mktemp("tokens")
    return output, main(config(inputs, output))


def file_bytes(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.glob("tokens-*.arrow"))} | {
        "manifest.json": (directory / "manifest.json").read_bytes()
    }


def test_counts_match_files_and_an_independent_computation(run, inputs):
    output, report = run
    corpus, tokenizer_dir, documents = inputs
    manifest = json.loads((output / "manifest.json").read_text())
    tok = Tokenizer.load(tokenizer_dir)

    per_shard = -(-len(documents) // SHARDS)
    expected_rows, expected_dropped = [], 0
    for i in range(SHARDS):
        texts = [d["text"] for d in documents[i * per_shard : (i + 1) * per_shard]]
        rows, leftover = pack_sequences(tok.encode_batch(texts), SEQ_LEN, tok.eos_id)
        expected_rows.append(rows)
        expected_dropped += len(leftover)
        assert manifest["shards"][i]["file"] == f"tokens-{i:05d}.arrow"
        assert manifest["shards"][i]["source"] == f"shard-{i:05d}.parquet"
        assert manifest["shards"][i]["sequences"] == len(rows)
        assert manifest["shards"][i]["tokens_dropped"] == len(leftover) < SEQ_LEN
        assert read_token_shard(output / f"tokens-{i:05d}.arrow").tolist() == rows.tolist()
        file_bytes_i = (output / f"tokens-{i:05d}.arrow").read_bytes()
        assert manifest["shards"][i]["sha256"] == hashlib.sha256(file_bytes_i).hexdigest()

    tokens, loaded_manifest = load_token_shards(output)
    assert loaded_manifest == manifest
    assert tokens.shape == (manifest["sequences"], SEQ_LEN) == (sum(len(r) for r in expected_rows), SEQ_LEN)
    assert manifest["tokens"] == tokens.size
    assert manifest["tokens_dropped"] == expected_dropped
    assert manifest["documents"] == len(documents)
    total = sum(len(ids) + 1 for ids in tok.encode_batch([d["text"] for d in documents]))
    assert manifest["tokens"] + manifest["tokens_dropped"] == total  # every token is in a row or counted as dropped
    assert "dropped" in manifest["dropped"]
    assert report["sequences"] == manifest["sequences"] and report["shards_kept"] == 0


def test_tokenizer_is_recorded(run, inputs):
    output, _ = run
    manifest = json.loads((output / "manifest.json").read_text())
    tokenizer_dir = inputs[1]
    assert manifest["tokenizer_sha256"] == hashlib.sha256((tokenizer_dir / "tokenizer.model").read_bytes()).hexdigest()
    assert manifest["special_tokens"] == json.loads((tokenizer_dir / "special_tokens.json").read_text())
    assert json.loads((output / "config.json").read_text())["seq_len"] == SEQ_LEN


def test_rerun_is_byte_identical(run, inputs, tmp_path, capsys):
    output, _ = run
    before = file_bytes(output)
    # A fresh run elsewhere, with different encode batches, makes the same bytes...
    fresh = main(config(inputs, tmp_path, batch_size=7))
    assert file_bytes(tmp_path) == before and fresh["shards_kept"] == 0
    # ...and a rerun in place keeps every file, and redoes one whose tokenizer no longer matches.
    stale = before["tokens-00001.arrow"].replace(b"tokenizer_sha256", b"tokenizer_sha257")
    (output / "tokens-00001.arrow").write_bytes(stale)
    capsys.readouterr()
    again = main(config(inputs, output))
    assert again["shards_kept"] == SHARDS - 1
    assert file_bytes(output) == before
    assert "up to date, kept" in capsys.readouterr().out
    assert not [p for p in output.iterdir() if p.name.startswith(".")]


def test_stale_token_files_are_removed(inputs, tmp_path):
    (tmp_path / "tokens-00007.arrow").write_bytes(b"left over from a larger corpus")
    main(config(inputs, tmp_path))
    assert sorted(p.name for p in tmp_path.glob("tokens-*.arrow")) == [f"tokens-{i:05d}.arrow" for i in range(SHARDS)]


def test_missing_inputs_are_config_errors_naming_them(inputs, tmp_path):
    with pytest.raises(ConfigError, match=str(tmp_path / "no-corpus")):
        main(config(inputs, tmp_path / "out", corpus_dir=str(tmp_path / "no-corpus")))
    with pytest.raises(ConfigError, match=str(tmp_path / "no-tokenizer" / "tokenizer.model")):
        main(config(inputs, tmp_path / "out", tokenizer_dir=str(tmp_path / "no-tokenizer")))
    assert not (tmp_path / "out").exists()
    with pytest.raises(ConfigError, match="seq_len"):
        TokenShardsConfig(seq_len=1)


def test_cli_and_mlflow(run, inputs, tmp_path, capsys):
    corpus, tokenizer_dir, _ = inputs
    argv = [f"corpus_dir={corpus}", f"tokenizer_dir={tokenizer_dir}", f"output_dir={tmp_path}"]
    argv += [f"seq_len={SEQ_LEN}", "batch_size=16", "runner=local"]
    assert run_job(TokenShardsConfig, main, argv) == 0
    assert file_bytes(tmp_path) == file_bytes(run[0])

    import mlflow

    from common.tracking import setup_mlflow

    setup_mlflow("corpus_build")
    (found,) = mlflow.search_runs(experiment_names=["corpus_build"], output_format="list")
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert found.data.metrics["sequences"] == manifest["sequences"]
    assert found.data.metrics["tokens_dropped"] == manifest["tokens_dropped"]
    assert found.data.params["seq_len"] == str(SEQ_LEN)
    assert f"mlflow run: {found.info.run_id}" in capsys.readouterr().out
    artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(found.info.run_id)}
    assert artifacts == {"manifest.json", "report.json"}
