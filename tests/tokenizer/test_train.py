"""The tokenizer job: fixed special ids, files written, deterministic model, long documents split, bad inputs."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
import sentencepiece as spm

from common.cli import run_job
from common.config import ConfigError, load_config
from tests.tokenizer import real_documents, train_tokenizer, write_corpus
from tokenizer.config import TokenizerConfig
from tokenizer.specials import SPECIAL_IDS, SPECIAL_TOKENS
from tokenizer.train import main, sample_documents, split_text


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    return write_corpus(tmp_path_factory.mktemp("corpus"), real_documents(), shards=2)


@pytest.fixture(scope="module")
def trained(corpus, tmp_path_factory) -> tuple[Path, dict]:
    output = tmp_path_factory.mktemp("tokenizer")
    return output, train_tokenizer(corpus, output)


def test_writes_model_special_tokens_config_and_report(trained):
    output, report = trained
    model = (output / "tokenizer.model").read_bytes()
    processor = spm.SentencePieceProcessor(model_proto=model)
    assert processor.vocab_size() == 1024 == report["vocab_size"]
    assert report["tokenizer_sha256"] == hashlib.sha256(model).hexdigest()
    assert json.loads((output / "special_tokens.json").read_text()) == {**SPECIAL_IDS, "vocab_size": 1024}
    assert SPECIAL_IDS == {
        "unk": 0, "bos": 1, "eos": 2, "pad": 3, "mask": 4, "eot": 5, "start_header": 6, "end_header": 7
    }
    for name, piece in vars(SPECIAL_TOKENS).items():
        assert processor.id_to_piece(SPECIAL_IDS[name]) == piece
    assert [processor.is_control(i) for i in (1, 2, 3)] == [True, True, True] and processor.is_unknown(0)
    assert load_config(TokenizerConfig, output / "config.json").vocab_size == 1024
    assert json.loads((output / "stats.json").read_text()) == {k: v for k, v in report.items() if k not in ("output_dir", "mlflow_run_id")}
    assert report["documents_total"] == report["documents_sampled"] == 360
    assert not list(output.glob(".*tmp*"))


def test_training_is_deterministic(corpus, trained, tmp_path):
    output, report = trained
    again = train_tokenizer(corpus, tmp_path, num_threads=1)
    assert (tmp_path / "tokenizer.model").read_bytes() != b""
    # num_threads is recorded in the model's trainer spec, so compare the pieces and scores for it...
    first = spm.SentencePieceProcessor(model_file=str(output / "tokenizer.model"))
    second = spm.SentencePieceProcessor(model_file=str(tmp_path / "tokenizer.model"))
    assert [(first.id_to_piece(i), first.get_score(i)) for i in range(1024)] == [
        (second.id_to_piece(i), second.get_score(i)) for i in range(1024)
    ]
    # ...and the bytes for a rerun with the same config.
    same = train_tokenizer(corpus, tmp_path / "same")
    assert same["tokenizer_sha256"] == report["tokenizer_sha256"] != again["tokenizer_sha256"]


def test_long_documents_are_split_not_dropped(trained):
    _, report = trained
    assert report["documents_split"] > 0 and report["pieces"] > report["documents_sampled"]


@pytest.mark.parametrize(
    "text",
    [
        "short",
        "line one\nline two\n" * 40,
        "word " * 100,
        "x" * 300,
        "zażółć gęślą jaźń " * 20 + "漢字" * 50,
        "é" * 200,
    ],
)
def test_split_text_keeps_every_byte_within_the_limit(text):
    pieces = list(split_text(text, 64))
    assert "".join(pieces) == text
    assert all(0 < len(p.encode()) <= 64 for p in pieces)


def test_split_text_cuts_after_newline_else_before_space():
    assert list(split_text("aaaa\nbbbb cccc", 12)) == ["aaaa\n", "bbbb cccc"]
    assert list(split_text("aaaa bbbb cccc", 12)) == ["aaaa bbbb", " cccc"]


def test_document_sample_is_bounded_and_deterministic(corpus, tmp_path):
    chosen = sample_documents([100, 50], 30, seed=7)
    assert len(set(chosen)) == 30 and list(chosen) == sorted(chosen) and chosen.max() < 150
    assert list(chosen) == list(sample_documents([100, 50], 30, seed=7))
    assert list(chosen) != list(sample_documents([100, 50], 30, seed=8))
    assert sample_documents([100, 50], 0, seed=7) is None and sample_documents([10], 30, seed=7) is None
    report = train_tokenizer(corpus, tmp_path, max_documents=200, vocab_size=600)
    assert (report["documents_total"], report["documents_sampled"]) == (360, 200)


def test_missing_corpus_dir_is_a_config_error_naming_it(tmp_path):
    missing = tmp_path / "no-corpus"
    with pytest.raises(ConfigError, match=str(missing)):
        main(TokenizerConfig(corpus_dir=str(missing), output_dir=str(tmp_path / "out")))
    assert not (tmp_path / "out").exists()
    (missing / "documents").mkdir(parents=True)  # an unfinished build: no manifest yet
    with pytest.raises(ConfigError, match="no-corpus has no manifest.json: the job that writes it has not finished"):
        main(TokenizerConfig(corpus_dir=str(missing), output_dir=str(tmp_path / "out")))
    (missing / "manifest.json").write_text('{"shards": []}')
    with pytest.raises(ConfigError, match="lists no document shards"):
        main(TokenizerConfig(corpus_dir=str(missing), output_dir=str(tmp_path / "out")))


def test_corpus_without_text_is_a_config_error(tmp_path):
    write_corpus(tmp_path / "corpus", [{"id": str(i), "text": " \n", "source": "s"} for i in range(3)])
    with pytest.raises(ConfigError, match="no text to train on"):
        train_tokenizer(tmp_path / "corpus", tmp_path / "out")


def test_config_validation():
    with pytest.raises(ConfigError, match="vocab_size must be at least 265"):
        TokenizerConfig(vocab_size=100)
    assert TokenizerConfig(vocab_size=100, byte_fallback=False).vocab_size == 100
    with pytest.raises(ConfigError, match="model_type"):
        TokenizerConfig(model_type="wordpiece")
    with pytest.raises(ConfigError, match="character_coverage"):
        TokenizerConfig(character_coverage=1.5)


def test_cli_and_mlflow(corpus, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("LLADA_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_ARTIFACT_ROOT", raising=False)
    assert run_job(TokenizerConfig, main, ["--dry-run", "vocab_size=512"]) == 0
    assert json.loads(capsys.readouterr().out)["vocab_size"] == 512
    output = tmp_path / "tokenizer"
    assert run_job(TokenizerConfig, main, [f"corpus_dir={corpus}", f"output_dir={output}", "vocab_size=600"]) == 0
    assert (output / "tokenizer.model").is_file()

    import mlflow

    from common.tracking import setup_mlflow

    setup_mlflow("corpus_build")
    (run,) = mlflow.search_runs(experiment_names=["corpus_build"], output_format="list")
    assert run.info.run_name == "tokenizer vocab 600" and run.data.metrics["vocab_size"] == 600
    assert run.data.metrics["documents_split"] == json.loads((output / "stats.json").read_text())["documents_split"]
    artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(run.info.run_id)}
    assert artifacts == {"tokenizer.model", "special_tokens.json", "stats.json"}

    missing = tmp_path / "nowhere"
    result = subprocess.run(
        [sys.executable, "-m", "tokenizer.train", f"corpus_dir={missing}"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2 and str(missing) in result.stderr
