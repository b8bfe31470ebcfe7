"""The corpus_build DAG's bookends and the corpus version each task resolves, on the DAG run's fields."""

from __future__ import annotations

from datetime import datetime, timezone
from types import SimpleNamespace

import pytest

from common.config import ConfigError
from orchestration.corpus_tasks import claim_version, corpus_place, publish_version
from tests.formats.test_corpus_versions import fake_build


def dag_run(logical_date=None, run_after=datetime(2026, 12, 6, 2, 0, tzinfo=timezone.utc)):
    return SimpleNamespace(logical_date=logical_date, run_after=run_after, run_id="scheduled__2026-12-06T02:00:00+00:00")


def test_a_build_claims_its_version_every_task_writes_it_and_publishing_moves_latest(tmp_path):
    params = {"work_dir": str(tmp_path), "corpus_name": "web", "corpus_version": ""}
    run = dag_run(logical_date=datetime(2026, 12, 5, 2, 0, tzinfo=timezone.utc))
    folder = claim_version(params, run)
    assert folder == str(tmp_path / "corpora" / "web" / "20261205T020000Z")
    assert corpus_place(params, run, writing=True) == {"corpus_dir": folder, "corpus": "web/20261205T020000Z"}
    with pytest.raises(ConfigError, match="corpus 'web' has no complete version"):
        corpus_place({**params, "corpus_version": "latest"}, run, writing=False)

    fake_build(tmp_path / "corpora" / "web" / "20261205T020000Z")
    assert publish_version(params, run)["dag_run_id"] == run.run_id
    read = corpus_place({**params, "corpus_version": "latest"}, dag_run(), writing=False)
    assert read == {"corpus_dir": folder, "corpus": "web/20261205T020000Z"}  # the concrete version, not "latest"
    with pytest.raises(ConfigError, match="is a complete corpus version"):
        claim_version(params, run)  # the same run cleared and rerun: refused
    # a manual run without a logical date takes the time it was triggered
    assert claim_version(params, dag_run()).endswith("/20261206T020000Z")
    assert claim_version({**params, "corpus_version": "v2"}, dag_run()).endswith("/web/v2")
