"""Versioned corpus folders: a version is sealed once complete and never written again; `latest` moves
only when a build is sealed; readers get the concrete version."""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone

import pytest

from common.config import ConfigError
from common.locks import OutputLocked, output_lock
from formats.corpus_versions import LATEST, require_unsealed, resolve, seal, version_dir, version_from_date, version_of
from formats.layout import CORPUS_FOLDERS


def fake_build(folder):
    """The four folders a finished build leaves: three stages' manifests and the tokenizer's files."""
    for name in CORPUS_FOLDERS:
        (folder / name).mkdir(parents=True)
        if name == "tokenizer":
            (folder / name / "tokenizer.model").write_bytes(b"model")
        else:
            (folder / name / "manifest.json").write_text(json.dumps({"folder": name}))
    return folder


def test_a_sealed_version_becomes_latest_and_is_never_written_again(tmp_path):
    first = fake_build(version_dir(tmp_path, "web", "v1"))
    with pytest.raises(ConfigError, match="corpus 'web' has no complete version .* run the corpus_build DAG"):
        resolve(tmp_path, "web")
    record = seal(first, list(CORPUS_FOLDERS), name="web", version="v1", dag_run_id="manual__1")
    assert set(record["sha256"]) == set(CORPUS_FOLDERS) and set(record["sha256"]["tokenizer"]) == {"tokenizer.model"}
    assert resolve(tmp_path, "web") == ("v1", first) == resolve(tmp_path, "web", "v1")
    assert os.readlink(first.parent / LATEST) == "v1"  # relative: the tree can move
    assert version_of(first / "tokens") == ("web", "v1") and version_of(tmp_path) is None

    # once sealed: the DAG's claim refuses the version, and so does every job's output lock, naming the seal
    with pytest.raises(ConfigError, match=r"v1 is a complete corpus version \(sealed by DAG run manual__1"):
        require_unsealed(first)
    with pytest.raises(OutputLocked, match=r"tokens is inside .*v1, which is sealed"):
        with output_lock(first / "tokens"):
            pass
    assert not (first / "tokens" / ".lock").exists()

    # a second build: latest stays on v1 until v2 is sealed, then moves; v1 is still there, still readable
    second = fake_build(version_dir(tmp_path, "web", "v2"))
    assert resolve(tmp_path, "web") == ("v1", first)
    with pytest.raises(ConfigError, match="v2 is not a complete corpus version"):
        resolve(tmp_path, "web", "v2")
    seal(second, list(CORPUS_FOLDERS), name="web", version="v2")
    assert resolve(tmp_path, "web") == ("v2", second) and resolve(tmp_path, "web", "v1") == ("v1", first)


def test_an_unfinished_build_is_not_sealed(tmp_path):
    folder = fake_build(version_dir(tmp_path, "web", "v1"))
    for path in (folder / "tokens").iterdir():
        path.unlink()
    with pytest.raises(ConfigError, match="tokens is missing or empty: the build of web/v1 did not finish"):
        seal(folder, list(CORPUS_FOLDERS), name="web", version="v1")
    assert not (folder.parent / LATEST).exists()


def test_names_are_single_folder_names_and_dates_make_sortable_versions():
    with pytest.raises(ConfigError, match=r"corpus name '\.\./x' is not a folder name"):
        version_dir("w", "../x", "v1")
    with pytest.raises(ConfigError, match="'latest' is the pointer's name"):
        version_dir("w", "web", "latest")
    assert version_from_date(datetime(2026, 12, 6, 2, 0, tzinfo=timezone.utc)) == "20261206T020000Z"
