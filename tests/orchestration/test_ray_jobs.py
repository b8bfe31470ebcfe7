"""The command a DAG task submits to Ray is the same one a user types; the ids a retry finds its job by."""

import re
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


def test_submission_ids_are_file_names_one_per_task_instance():
    from orchestration.ray_job_operator import submission_base
    from orchestration.ray_jobs import try_id

    base = submission_base("pretrain", "manual__2026-12-01T22:27:07.123+00:00", "train")
    assert re.fullmatch(r"llada-pretrain-manual__2026-12-01T22-27-07\.123-00-00-train-[0-9a-f]{8}", base)
    assert base == submission_base("pretrain", "manual__2026-12-01T22:27:07.123+00:00", "train")  # a retry finds it
    # ids that sanitize alike stay apart; a mapped task's index is part of it
    assert base != submission_base("pretrain", "manual__2026-12-01T22-27-07.123-00-00", "train")
    assert submission_base("d", "r", "t", 0) != submission_base("d", "r", "t", 1) != submission_base("d", "r", "t")
    assert [try_id(base, n) for n in (1, 2, 3)] == [base, f"{base}-try-2", f"{base}-try-3"]


def test_the_trigger_serializes_to_what_rebuilds_it():
    from orchestration.ray_job_operator import RayJobTrigger

    trigger = RayJobTrigger("http://127.0.0.1:8265", "llada-x", 1234.5, {"poll_seconds": 1.0})
    classpath, kwargs = trigger.serialize()
    assert classpath == "orchestration.ray_job_operator.RayJobTrigger"
    again = RayJobTrigger(**kwargs)
    assert (again.address, again.submission_id, again.deadline, again.settings) == ("http://127.0.0.1:8265", "llada-x", 1234.5,
                                                                                   {"poll_seconds": 1.0})


def test_a_failed_job_names_its_status_and_the_last_lines_of_its_log():
    import pytest

    from orchestration.ray_jobs import raise_for

    outcome = {"submission_id": "llada-x", "status": "FAILED", "message": "exit code 1", "result": {},
               "tail": ["step 1", "ValueError: no shards in /data/tokens"]}
    with pytest.raises(RuntimeError, match=r"(?s)ray job llada-x \(trainer.pretrain\) FAILED: exit code 1\n.*no shards in /data/tokens"):
        raise_for(outcome, "trainer.pretrain")
    with pytest.raises(RuntimeError, match="did not finish within its execution_timeout and was stopped"):
        raise_for({**outcome, "status": "TIMEOUT"}, "trainer.pretrain")
    assert raise_for({**outcome, "status": "SUCCEEDED", "result": {"a": 1}}, "m") == {"a": 1}
