"""The token shards job end to end, its tasks run in this process (runner=local: the same bytes as on Ray), with
an MLflow store private to the module: counts add up, files match the manifest, sources are recorded, the
validation split is the documents whose id hashes low, reruns are identical."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pyarrow as pa
import pytest
import xxhash

from common.cli import run_job
from common.config import ConfigError
from formats.corpus import write_manifest
from formats.token_shards import held_out, read_token_shard, verify_token_folder
from pipelines.packing import pack_sequences
from pipelines.token_config import TokenShardsConfig
from pipelines.token_shards import main
from tests.tokenizer import real_documents, train_tokenizer, write_corpus
from tokenizer.encode import Tokenizer

SEQ_LEN = 64
SHARDS = 3
FRACTION = 0.1


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
    settings = {"seq_len": SEQ_LEN, "batch_size": 16, "runner": "local", "log_to_mlflow": False, "validation_fraction": FRACTION}
    return TokenShardsConfig(**{**values, **settings, **overrides})


@pytest.fixture(scope="module")
def run(private_state, inputs, tmp_path_factory) -> tuple[Path, dict]:
    output = tmp_path_factory.mktemp("tokens")
    return output, main(config(inputs, output))


def file_bytes(directory: Path) -> dict[str, bytes]:
    names = ["manifest.json", "validation/manifest.json"]
    names += [str(p.relative_to(directory)) for p in directory.rglob("tokens-*.arrow")]
    return {name: (directory / name).read_bytes() for name in sorted(names)}


def test_counts_match_files_and_an_independent_computation(run, inputs):
    output, report = run
    corpus, tokenizer_dir, documents = inputs
    manifests = {split: json.loads((folder / "manifest.json").read_text())
                 for split, folder in (("train", output), ("validation", output / "validation"))}
    tok = Tokenizer.load(tokenizer_dir)

    per_shard = -(-len(documents) // SHARDS)
    totals = {split: {"rows": 0, "dropped": 0, "documents": 0} for split in manifests}
    for i in range(SHARDS):
        for split, manifest in manifests.items():
            # Held out: xxhash64 of the id below FRACTION * 2^64. Each source is packed on its own, sources in name order.
            part = [d for d in documents[i * per_shard : (i + 1) * per_shard]
                    if (xxhash.xxh64_intdigest(d["id"].encode()) < FRACTION * 2**64) == (split == "validation")]
            rows, by_source, dropped = [], {}, 0
            for source in sorted({d["source"] for d in part}):
                packed, leftover = pack_sequences(tok.encode_batch([d["text"] for d in part if d["source"] == source]),
                                                  SEQ_LEN, tok.eos_id)
                rows += packed.tolist()
                by_source |= {source: len(packed)} if len(packed) else {}
                dropped += len(leftover)
            entry = manifest["shards"][i]
            path = (output if split == "train" else output / "validation") / f"tokens-{i:05d}.arrow"
            assert entry["file"] == f"tokens-{i:05d}.arrow"
            assert entry["source"] == f"shard-{i:05d}.parquet"
            assert entry["sequences"] == len(rows) and entry["documents"] == len(part)
            assert entry["tokens_dropped"] == dropped < SEQ_LEN * max(len(by_source), 1)
            assert entry["sequences_by_source"] == by_source
            assert read_token_shard(path).tolist() == rows
            assert pa.ipc.open_file(str(path)).read_all().column("source").to_pylist() == [
                name for name, count in by_source.items() for _ in range(count)]
            assert entry["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
            assert entry["bytes"] == path.stat().st_size
            totals[split]["rows"] += len(rows)
            totals[split]["dropped"] += dropped
            totals[split]["documents"] += len(part)

    manifest = manifests["train"]
    assert manifest == verify_token_folder(output, tokenizer_sha256=tok.sha256)
    assert manifest["sequences"] == totals["train"]["rows"]
    assert manifest["tokens"] == manifest["sequences"] * SEQ_LEN
    for split, counts in totals.items():
        assert manifests[split]["sequences"] == counts["rows"] and manifests[split]["tokens_dropped"] == counts["dropped"]
        assert manifests[split]["documents"] == counts["documents"]
    assert 0 < totals["validation"]["documents"] < totals["train"]["documents"]
    assert manifest["validation"] == {"dir": "validation", "fraction": FRACTION, "documents": totals["validation"]["documents"],
                                      "sequences": totals["validation"]["rows"]}
    assert manifest["documents"] + manifest["validation"]["documents"] == len(documents)
    total = sum(len(ids) + 1 for ids in tok.encode_batch([d["text"] for d in documents]))
    # every token is in a row or counted as dropped
    assert sum(m["tokens"] + m["tokens_dropped"] for m in manifests.values()) == total
    assert "dropped" in manifest["dropped"]
    assert report["sequences"] == manifest["sequences"] and report["shards_kept"] == 0
    assert report["validation_sequences"] == totals["validation"]["rows"]


def test_the_validation_split_is_a_function_of_the_id_alone():
    ids = [f"doc-{i}" for i in range(20_000)]
    small, large = ({i for i in ids if held_out(i, fraction)} for fraction in (0.01, 0.1))
    assert 150 < len(small) < 250 and 1800 < len(large) < 2200
    assert small < large  # raising the fraction only moves documents into validation
    assert not any(held_out(i, 0.0) for i in ids)


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
    (tmp_path / "validation").mkdir()
    for stale in ("tokens-00007.arrow", "validation/tokens-00007.arrow"):
        (tmp_path / stale).write_bytes(b"left over from a larger corpus")
    main(config(inputs, tmp_path))
    expected = [f"tokens-{i:05d}.arrow" for i in range(SHARDS)]
    assert sorted(p.name for p in tmp_path.glob("tokens-*.arrow")) == expected
    assert sorted(p.name for p in (tmp_path / "validation").glob("tokens-*.arrow")) == expected
    # Without a split every file is redone (its documents changed) and validation/ goes.
    report = main(config(inputs, tmp_path, validation_fraction=0.0))
    assert report["shards_kept"] == 0 and report["validation_sequences"] == 0 and not (tmp_path / "validation").exists()
    assert "validation" not in json.loads((tmp_path / "manifest.json").read_text())


def test_documents_without_id_or_source_are_an_error_naming_the_shard(inputs, tmp_path):
    import pyarrow.parquet as pq

    (tmp_path / "corpus" / "documents").mkdir(parents=True)
    pq.write_table(pa.table({"text": ["a document"]}), tmp_path / "corpus" / "documents" / "shard-00000.parquet")
    write_manifest(tmp_path / "corpus", [{"file": "documents/shard-00000.parquet", "documents": 1, "bytes": 10, "sha256": ""}], {})
    with pytest.raises(ConfigError, match=r"shard-00000.parquet has no id, source column"):
        main(config(inputs, tmp_path / "out", corpus_dir=str(tmp_path / "corpus")))


def test_a_corpus_that_disagrees_with_its_manifest_is_refused_naming_the_file(inputs, tmp_path):
    # An interrupted rerun of the fuzzy dedup leaves its folder without a manifest, or with other shards.
    import shutil

    corpus = tmp_path / "corpus"
    shutil.copytree(inputs[0], corpus)
    shard = corpus / "documents" / "shard-00001.parquet"
    (corpus / "manifest.json").rename(tmp_path / "manifest.json")
    with pytest.raises(ConfigError, match=r"corpus has no manifest.json: the job that writes it has not finished"):
        main(config(inputs, tmp_path / "out", corpus_dir=str(corpus)))
    (tmp_path / "manifest.json").rename(corpus / "manifest.json")
    original = shard.read_bytes()
    shard.write_bytes(original[:-100])
    with pytest.raises(ConfigError, match=rf"{shard} is {len(original) - 100} bytes, .*manifest.json says {len(original)} bytes"):
        main(config(inputs, tmp_path / "out", corpus_dir=str(corpus)))
    middle = len(original) // 2
    shard.write_bytes(original[:middle] + bytes([original[middle] ^ 1]) + original[middle + 1 :])  # same size, a bit flipped
    with pytest.raises(ConfigError, match=rf"{shard} has sha256 \w+, .*manifest.json says"):
        main(config(inputs, tmp_path / "out", corpus_dir=str(corpus)))
    shard.write_bytes(original)
    (corpus / "documents" / "shard-00099.parquet").write_bytes(original)
    with pytest.raises(ConfigError, match=r"shard-00099.parquet is not in .*manifest.json"):
        main(config(inputs, tmp_path / "out", corpus_dir=str(corpus)))


def test_missing_inputs_are_config_errors_naming_them(inputs, tmp_path):
    with pytest.raises(ConfigError, match=str(tmp_path / "no-corpus")):
        main(config(inputs, tmp_path / "out", corpus_dir=str(tmp_path / "no-corpus")))
    with pytest.raises(ConfigError, match=str(tmp_path / "no-tokenizer" / "tokenizer.model")):
        main(config(inputs, tmp_path / "out", tokenizer_dir=str(tmp_path / "no-tokenizer")))
    assert not (tmp_path / "out").exists()
    with pytest.raises(ConfigError, match="seq_len"):
        TokenShardsConfig(seq_len=1)
    with pytest.raises(ConfigError, match="validation_fraction"):
        TokenShardsConfig(validation_fraction=1.0)


def test_cli_and_mlflow(run, inputs, tmp_path, capsys):
    corpus, tokenizer_dir, _ = inputs
    argv = [f"corpus_dir={corpus}", f"tokenizer_dir={tokenizer_dir}", f"output_dir={tmp_path}"]
    argv += [f"seq_len={SEQ_LEN}", "batch_size=16", "runner=local", f"validation_fraction={FRACTION}"]
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
    assert artifacts == {"manifest.json", "stats.json"}


def test_a_hugging_face_tokenizer_folder_makes_token_shards_too(inputs, tmp_path):
    from tests.tokenizer import llada_style_tokenizer

    folder = llada_style_tokenizer(tmp_path / "llada-tokenizer")
    tokenizer = Tokenizer.load(folder)
    main(config(inputs, tmp_path / "tokens", tokenizer_dir=str(folder)))
    manifest = verify_token_folder(tmp_path / "tokens", tokenizer_sha256=tokenizer.sha256)
    assert manifest["special_tokens"] == {**tokenizer.special_tokens, "vocab_size": tokenizer.vocab_size}
    assert manifest["special_tokens"]["mask"] == 600 and "unk" not in manifest["special_tokens"]
    first = next((tmp_path / "tokens").glob("tokens-*.arrow"))
    rows = read_token_shard(first)
    assert rows.max() < tokenizer.vocab_size and (rows == tokenizer.eos_id).any()
