"""Versioned corpus builds: each build of a named corpus writes a version folder of its own, never written
again once complete, and a `latest` pointer that moves only when a build succeeds.

    {work_dir}/corpora/{name}/
        {version}/          corpus/, corpus_fuzzy/, tokenizer/, tokens/ (formats/layout.py's CORPUS_FOLDERS)
            sealed.json     written last, when the build succeeded: its name, version, DAG run and the sha256
                            of each folder's manifest (of each tokenizer file). From then on no job writes inside the folder
                            (common/locks.py refuses an output_dir under a sealed folder)
        latest -> {version} a relative symbolic link, replaced atomically (rename) after the seal

A version is a name of the user's, or the DAG run's logical date (`20261206T020000Z`). Readers name a
version or `latest`, and are given the concrete version, so a run records exactly what it read even
after `latest` has moved on (a scheduled rebuild never changes a folder a running pretraining reads).
"""

from __future__ import annotations

import json
import os
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from common.config import ConfigError
from common.files import sha256_of, write_json
from common.locks import SEALED

CORPORA = "corpora"
LATEST = "latest"
DEFAULT_NAME = "main"
"""The corpus the DAGs build and read unless their corpus_name Param names another."""
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
"""Corpus names and versions are one path component each: letters, digits, `_`, `.`, `-`."""


def check_name(value: str, what: str) -> str:
    if not NAME_PATTERN.match(value or "") or value == LATEST and what == "version":
        reserved = f"; {LATEST!r} is the pointer's name" if value == LATEST else ""
        raise ConfigError(f"corpus {what} {value!r} is not a folder name: use letters, digits, '_', '.', '-'{reserved}")
    return value


def corpus_root(work_dir: str | Path, name: str) -> Path:
    """The folder of every version of corpus `name`."""
    return Path(work_dir) / CORPORA / check_name(name, "name")


def version_dir(work_dir: str | Path, name: str, version: str) -> Path:
    return corpus_root(work_dir, name) / check_name(version, "version")


def version_from_date(moment: datetime) -> str:
    """The version a build takes from its DAG run's logical date: UTC, sortable, a folder name."""
    return moment.astimezone(timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def is_sealed(folder: str | Path) -> bool:
    return (Path(folder) / SEALED).is_file()


def require_unsealed(folder: str | Path) -> Path:
    """The version folder a build is about to write: refused if a build of that version already succeeded."""
    folder = Path(folder)
    if is_sealed(folder):
        record = json.loads((folder / SEALED).read_text())
        raise ConfigError(f"{folder} is a complete corpus version (sealed by DAG run {record.get('dag_run_id', '?')} at "
                          f"{record.get('sealed_at', '?')}) and is never written again: give another corpus_version, "
                          "or leave it empty to take the run's logical date")
    return folder


def seal(folder: str | Path, folders: list[str], *, name: str, version: str, dag_run_id: str = "") -> dict[str, Any]:
    """Mark a finished build complete (sealed.json: the sha256 of each folder's manifest, or of each file
    of a folder without one, the tokenizer's), then point `latest` at it. The DAG calls it once every job
    has succeeded; a folder missing or empty is refused all the same."""
    from formats.corpus import MANIFEST  # here: DAG files import this module, and formats.corpus imports pyarrow

    folder = Path(folder)
    digests: dict[str, Any] = {}
    for sub in folders:
        path = folder / sub
        files = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith(".")) if path.is_dir() else []
        if (path / MANIFEST).is_file():
            digests[sub] = sha256_of(path / MANIFEST)
        elif files:
            digests[sub] = {p.name: sha256_of(p) for p in files}
        else:
            raise ConfigError(f"{path} is missing or empty: the build of {name}/{version} did not finish, so it is not sealed")
    record = {"name": name, "version": version, "dag_run_id": dag_run_id, "sha256": digests,
              "sealed_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}
    write_json(folder / SEALED, record)
    point_latest(folder)
    return record


def point_latest(folder: str | Path) -> None:
    """`latest` -> this version, replaced by a rename so a reader sees the old or the new one, never none."""
    folder = Path(folder)
    link, temporary = folder.parent / LATEST, folder.parent / f".{LATEST}.{os.getpid()}"
    temporary.unlink(missing_ok=True)
    os.symlink(folder.name, temporary)
    os.replace(temporary, link)


def resolve(work_dir: str | Path, name: str, version: str = LATEST) -> tuple[str, Path]:
    """(the concrete version, its folder) of a complete version of corpus `name`; `latest` is followed."""
    root = corpus_root(work_dir, name)
    if version == LATEST:
        link = root / LATEST
        if not link.is_symlink():
            built = sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
            raise ConfigError(f"corpus {name!r} has no complete version under {root} ({LATEST} is missing; versions "
                              f"there: {', '.join(built) or 'none'}): run the corpus_build DAG with corpus_name={name} first")
        version = os.readlink(link)
    folder = version_dir(work_dir, name, version)
    if not is_sealed(folder):
        raise ConfigError(f"{folder} is not a complete corpus version (no {SEALED}): its build did not finish; "
                          f"name another version, or {LATEST}")
    return version, folder


def version_of(folder: str | Path) -> tuple[str, str] | None:
    """(corpus name, version) when `folder` is a stage's folder inside a complete corpus version, else None."""
    version = Path(folder).resolve().parent
    if is_sealed(version) and version.parent.parent.name == CORPORA:
        return version.parent.name, version.name
    return None
