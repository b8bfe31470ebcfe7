"""The project's import graph: every import goes down the layers, never up or sideways.

A stage may use the contracts (formats/) and the shared runtime (common/) below it, never a stage
beside or above it: the corpus folder, the token shards and the checkpoint folder are read through
formats/, not through the stage that wrote them. Imports inside functions count too.
"""

from __future__ import annotations

import ast
from pathlib import Path

from common.paths import PROJECT_ROOT

LAYERS: list[tuple[str, ...]] = [
    ("common",),  # config, CLI, files, tracking, runners: imports no other package of ours
    ("formats",),  # the contracts between stages: corpus folder, token shards, checkpoint folder, build layout
    ("tokenizer",),  # the tokenizer library and its training job
    ("pipelines", "trainer"),  # the data stages and the model stages: neither imports the other
    ("experiments", "stack"),  # studies built on the trainer; the local Ray/MLflow/Airflow stack and the demo
    ("orchestration",),  # what DAG tasks use: the Ray job operator (local head from stack/), MLflow lineage, Airflow Params
    ("dags",),
]
LAYER_OF = {package: level for level, packages in enumerate(LAYERS) for package in packages}


def imported_packages(path: Path, package: str) -> list[tuple[int, str]]:
    """(line, top-level package) of every import in one file, relative imports resolved inside `package`."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name.split(".")[0]) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            found.append((node.lineno, package if node.level else (node.module or "").split(".")[0]))
    return found


def violations(root: Path) -> list[str]:
    """Every import under `root` from a package to one of a higher or the same layer (other than itself)."""
    problems = []
    for package, level in LAYER_OF.items():
        for path in sorted((root / package).rglob("*.py")):
            for line, imported in imported_packages(path, package):
                if imported in LAYER_OF and imported != package and LAYER_OF[imported] >= level:
                    problems.append(
                        f"{path.relative_to(root)}:{line} imports {imported} (layer {LAYER_OF[imported]}) "
                        f"from {package} (layer {level})"
                    )
    return problems


def test_every_package_is_in_a_layer():
    folders = [p for p in PROJECT_ROOT.iterdir() if p.is_dir() and not p.name.startswith(".") and any(p.glob("*.py"))]
    packages = {p.name for p in folders} - {"tests", "bench", "data", "docker"}  # tests and benches may import anything; docker/ holds container scripts
    assert packages == set(LAYER_OF), "add the new package to LAYERS"


def test_no_import_climbs_a_layer():
    assert violations(PROJECT_ROOT) == []


def test_the_check_finds_a_climb_and_a_sideways_import(tmp_path):
    (tmp_path / "formats").mkdir()
    (tmp_path / "formats" / "corpus.py").write_text("def f():\n    from pipelines.readers import read_task\n")
    (tmp_path / "trainer").mkdir()
    (tmp_path / "trainer" / "pretrain.py").write_text("import pipelines.packing\nfrom . import model\n")
    assert violations(tmp_path) == [
        "formats/corpus.py:2 imports pipelines (layer 3) from formats (layer 1)",
        "trainer/pretrain.py:1 imports pipelines (layer 3) from trainer (layer 3)",
    ]
