"""The Airflow Assets the stages write: a corpus version's documents and tokens, then the two checkpoints.
Each asset event's `extra` says what was written: the work_dir and folder, the corpus version, the
manifest's sha256, the documents or tokens in it, and the job's MLflow run id. A checkpoint's event comes
from its training task (its operator's `outlets`); a corpus version's two come from corpus_build's
publish_version task once the version is sealed, so whatever they start finds it complete.
With the chain_on_assets setting, pretrain is scheduled on the tokens asset and sft on the pretrain
checkpoint (orchestration/settings.py), so one corpus build runs the whole chain; a run started by an
asset event reads the work_dir and corpus version that event names.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from airflow.sdk import Asset

CORPUS = Asset(name="llada_corpus", uri="x-llada://corpus_build/corpus_fuzzy")
TOKENS = Asset(name="llada_tokens", uri="x-llada://corpus_build/tokens")
PRETRAIN_CHECKPOINT = Asset(name="llada_pretrain_checkpoint", uri="x-llada://pretrain/checkpoint")
SFT_CHECKPOINT = Asset(name="llada_sft_checkpoint", uri="x-llada://sft/checkpoint")


def event_extra(result: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """An asset event's `extra` from a job's result (the JOB_RESULT line) and its task's params: the
    work_dir, and the corpus version (corpus_name, corpus_version) it wrote or read."""
    from common.files import sha256_of

    folder = result.get("output_dir") or result.get("checkpoint") or ""
    manifest = Path(folder) / "manifest.json" if folder else None
    extra: dict[str, Any] = {"work_dir": params.get("work_dir", ""), "path": folder,
                             "mlflow_run_id": result.get("mlflow_run_id") or result.get("run_id") or ""}
    corpus = result.get("corpus") or params.get("corpus")  # the version the job read, as it recorded it
    if corpus:
        extra["corpus_name"], extra["corpus_version"] = corpus.split("/", 1)
    if manifest is not None and manifest.is_file():  # a checkpoint has none: its run id and path identify it
        extra["manifest_sha256"] = sha256_of(manifest)
    for key in ("documents_kept", "sequences", "tokens", "steps", "final_loss", "val_loss"):
        if isinstance(result.get(key), (int, float)):
            extra[key] = result[key]
    return extra


def triggering_params(context) -> dict[str, str]:
    """The work_dir and corpus version named by the newest asset event that started this DAG run, if an
    asset event did (a pretraining started by a corpus build reads the version that build wrote)."""
    events = context.get("triggering_asset_events") or {}
    newest = [event for found in events.values() for event in found]
    newest.sort(key=lambda event: event.timestamp)
    extra = (newest[-1].extra or {}) if newest else {}
    return {key: extra[key] for key in ("work_dir", "corpus_name", "corpus_version") if extra.get(key)}


def schedule_on(asset: Asset):
    """The DAG's schedule: the asset when the chain_on_assets setting is on, else manual runs only."""
    from orchestration.settings import chain_on_assets

    return [asset] if chain_on_assets() else None
