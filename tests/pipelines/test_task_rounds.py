"""Task rounds: markers written last, a rerun skips marked tasks, and both runners give the same results."""

from __future__ import annotations

import json

import pytest

from common.config import ConfigError
from common.runners import WORKER_MEMORY_ENV, LocalRunner, RayRunner, make_runner
from pipelines.task_rounds import marker_path, run_round


def square(value: int, folder: str) -> dict:
    """A task that leaves a file and returns a count (module level, so Ray can ship it)."""
    from pathlib import Path

    Path(folder, f"{value}.txt").write_text(str(value * value))
    return {"square": value * value}


def run_squares(runner, work, values) -> list[dict]:
    work.mkdir(exist_ok=True)
    calls = [(value, str(work)) for value in values]
    return run_round(runner, work, "squares", square, calls, log="[test]", things="tasks", count="square", unit="summed")


def test_local_runner_runs_every_call_in_order():
    assert list(LocalRunner().map_unordered(pow, [(2, 3), (3, 2), (5, 0)])) == [(0, 8), (1, 9), (2, 1)]


def test_a_rerun_skips_the_tasks_whose_marker_exists(tmp_path, capsys):
    first = run_squares(LocalRunner(), tmp_path, [1, 2, 3])
    assert [r["square"] for r in first] == [1, 4, 9] and not any(r["resumed"] for r in first)
    assert json.loads(marker_path(tmp_path, "squares", 2).read_text())["square"] == 9
    marker_path(tmp_path, "squares", 1).unlink()  # as if the run was killed before task 1's marker
    (tmp_path / "2.txt").unlink()
    again = run_squares(LocalRunner(), tmp_path, [1, 2, 3])
    assert [r["square"] for r in again] == [1, 4, 9]
    assert [r["resumed"] for r in again] == [True, False, True]
    assert (tmp_path / "2.txt").read_text() == "4"  # only the unmarked task ran again
    assert "squares 3/3 tasks, 14 summed (2 done before)" in capsys.readouterr().out


def test_ray_and_local_runners_agree(ray_session, tmp_path):
    def without_rss(results: list[dict]) -> list[dict]:
        return [{k: v for k, v in r.items() if k != "peak_rss_mb"} for r in results]

    local = without_rss(run_squares(LocalRunner(), tmp_path / "local", [4, 5]))
    remote = without_rss(run_squares(RayRunner(ray_session), tmp_path / "ray", [4, 5]))
    assert local == remote == [{"square": 16, "resumed": False}, {"square": 25, "resumed": False}]
    assert (tmp_path / "ray" / "5.txt").read_text() == "25"


def allocator_settings() -> tuple[str | None, str]:
    import os

    import pyarrow as pa

    return os.environ.get("MALLOC_MMAP_THRESHOLD_"), pa.default_memory_pool().backend_name


def test_ray_tasks_run_with_the_allocator_settings_that_keep_a_reused_worker_flat(ray_session):
    [(_, settings)] = list(RayRunner(ray_session).map_unordered(allocator_settings, [()]))
    assert settings == (WORKER_MEMORY_ENV["MALLOC_MMAP_THRESHOLD_"], "system")


def test_an_unknown_runner_is_a_config_error():
    with pytest.raises(ConfigError, match="runner must be one of ray, local"):
        make_runner("slurm")
