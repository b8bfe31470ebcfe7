"""The command a DAG task submits to Ray is the same one a user types."""

import shlex

from common.config import load_config, parse_overrides
from orchestration.ray_jobs import job_command, parse_result
from pipelines.config import CorpusBuildConfig


def test_job_command_round_trips_through_the_cli_parser():
    overrides = {"inputs": ["data/a b.jsonl", "x.zst"], "min_chars": 10, "log_to_mlflow": False, "output_dir": "out/c"}
    command = job_command("pipelines.corpus_build", overrides)
    cd, _, rest = command.partition(" && ")
    assert cd.startswith("cd ")
    argv = shlex.split(rest)
    assert argv[:3] == ["python", "-m", "pipelines.corpus_build"]
    config = load_config(CorpusBuildConfig, None, argv[3:])
    assert config.inputs == ["data/a b.jsonl", "x.zst"] and config.min_chars == 10 and config.log_to_mlflow is False
    assert parse_overrides(argv[3:])["output_dir"] == "out/c"


def test_parse_result_takes_the_last_marker_line():
    logs = 'noise\nJOB_RESULT {"a": 1}\nmore\nJOB_RESULT {"a": 2}\ntrailing log line\n'
    assert parse_result(logs) == {"a": 2}
    assert parse_result("no result here") is None
