"""Kill a pretraining run mid-way (its driver, or one Ray Train worker), and an SFT run started from a Hugging
Face LLaDA folder; the resumed run must end exactly where an uninterrupted one does: the same metrics.jsonl,
and weights that are torch.equal.
Stop the MLflow server for a few seconds while a run trains: it must train on and log every step once.

Two CPU workers over gloo, fp32, ZeRO 0 and ZeRO 2, on token shards of one demo file. The runs are
`python -m trainer.pretrain` subprocesses joined to one local Ray head, as a DAG task's Ray job is, and
log to a real MLflow tracking server (`mlflow server` over SQLite).
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from common.paths import PROJECT_ROOT
from tests.integration import tiny_token_shards

pytestmark = pytest.mark.integration

STEPS = 32
# A step takes a fraction of a second here and a worker's line reaches the driver's log about a second
# later; a SIGTERM reaches the driver's handler only when its main thread next runs Python (it waits on Ray
# Train), seen 14 steps later: enough steps that a kill or a stop aimed at step k lands well before the end.
TRAIN = ["num_workers=2", f"steps={STEPS}", "micro_batch_size=4", "log_every=1", "checkpoint_every=4", "eval_every=8",
         "val_sequences=16", "precision=fp32"]


TRACKING_URI = [""]  # the module's MLflow server, set by the ray_head fixture


@pytest.fixture(scope="module")
def ray_head(tracking):
    from stack.local_ray import start_head

    head = start_head(num_cpus=2)
    TRACKING_URI[0] = tracking.url
    yield head
    head.stop()


class TrackingServer:
    """A real `mlflow server` on a free loopback port; stop() and start() again keep its store."""

    def __init__(self, root: Path):
        from stack.local_ray import free_port

        self.port, self.root = free_port(), root
        self.url = f"http://127.0.0.1:{self.port}"
        self.start()

    def start(self) -> None:
        from stack.services import start_mlflow_server

        self.process = start_mlflow_server(self.port, f"sqlite:///{self.root / 'mlflow.db'}", (self.root / "artifacts").as_uri(),
                                           name=f"mlflow-{self.port}")

    def stop(self, *, abruptly: bool = False) -> None:
        """Stop it (SIGTERM); `abruptly`: SIGKILL at once, as a crash or a network cut looks to clients."""
        from stack.services import stop_process_group

        if abruptly:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        else:
            stop_process_group(self.process)


@pytest.fixture(scope="module")
def tracking(tmp_path_factory) -> TrackingServer:
    server = TrackingServer(tmp_path_factory.mktemp("mlflow"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def tokens(tmp_path_factory) -> Path:
    return tiny_token_shards(tmp_path_factory.mktemp("data"))


def start(ray_head, tokens: Path, output_dir: Path, zero_stage: int, *extra: str, job: str = "trainer.pretrain") -> subprocess.Popen:
    data = [f"tokens_dir={tokens}"] if job == "trainer.pretrain" else []
    command = [sys.executable, "-m", job, *data, f"output_dir={output_dir}", f"zero_stage={zero_stage}", *TRAIN, *extra]
    env = dict(os.environ, RAY_ADDRESS=ray_head.gcs_address, MLFLOW_TRACKING_URI=TRACKING_URI[0])
    return subprocess.Popen(command, cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)


def finish(process: subprocess.Popen) -> str:
    output = process.communicate(timeout=600)[0].decode(errors="replace")
    assert process.returncode == 0, output[-4000:]
    return output


def wait_for(process: subprocess.Popen, pattern: str) -> list[str]:
    """Read the run's output up to the first line matching `pattern`; the lines read."""
    lines = []
    deadline = time.monotonic() + 400
    while time.monotonic() < deadline:
        line = process.stdout.readline().decode(errors="replace")
        if not line:
            break
        lines.append(line)
        if re.search(pattern, line):
            return lines
    raise AssertionError(f"the run ended before {pattern!r}:\n" + "".join(lines[-40:]))


def wait_for_step(process: subprocess.Popen, output_dir: Path, step: int) -> None:
    """Wait until rank 0 has logged `step` in metrics.jsonl (written at once, unlike the log lines Ray
    forwards to the driver a second or more later, by when a fast run is many steps further)."""
    deadline = time.monotonic() + 400
    path = output_dir / "metrics.jsonl"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the run ended (status {process.returncode}) before step {step}")
        lines = path.read_text().splitlines() if path.is_file() else []
        if any(json.loads(line)["step"] >= step for line in lines if line.strip()):
            return
        time.sleep(0.05)
    raise AssertionError(f"no step {step} in {path} within 400 s")


def train_processes() -> list[psutil.Process]:
    return [p for p in psutil.process_iter(["cmdline"]) if re.search(r"RayTrainWorker|TrainController", " ".join(p.info["cmdline"] or []))]


def wait_until_workers_are_gone() -> None:
    """Ray ends a killed driver's actors soon after; a rerun must not share output_dir with them."""
    deadline = time.monotonic() + 60
    while train_processes() and time.monotonic() < deadline:
        time.sleep(1)


def weights(output_dir: Path) -> dict:
    import torch

    return torch.load(output_dir / "model.pt", map_location="cpu", weights_only=True)


def assert_same_run(output_dir: Path, reference: Path, *, evaluated: bool = True) -> None:
    import torch

    assert (output_dir / "metrics.jsonl").read_text() == (reference / "metrics.jsonl").read_text()
    lines = [json.loads(line) for line in (reference / "metrics.jsonl").read_text().splitlines()]
    assert [line["step"] for line in lines] == list(range(1, STEPS + 1))
    if evaluated:  # fixed noise: equal after a resume too
        assert [line["step"] for line in lines if "val_loss" in line] == [8, 16, 24, 32]
    ours, theirs = weights(output_dir), weights(reference)
    assert ours.keys() == theirs.keys()
    assert all(torch.equal(ours[name], theirs[name]) for name in ours)


def assert_killed_mid_run(output_dir: Path) -> None:
    """The kill came after a checkpoint and before the end: work was in flight."""
    steps = [json.loads(line)["step"] for line in (output_dir / "metrics.jsonl").read_text().splitlines()]
    assert list((output_dir / "checkpoints").glob("step-*"))
    assert not (output_dir / "complete.json").exists() and max(steps) < STEPS


OUTAGE_SECONDS = 6


@pytest.fixture(scope="module")
def references(ray_head, tokens, tracking, tmp_path_factory) -> dict:
    """An uninterrupted run per ZeRO stage. The MLflow server is stopped for a few seconds while the ZeRO-0
    one trains (its facts under "outage"): training goes on, so its weights and metrics must still be the
    ones every resumed ZeRO-0 run ends with."""
    root = tmp_path_factory.mktemp("reference")
    process = start(ray_head, tokens, root / "zero0", 0)
    wait_for_step(process, root / "zero0", 2)
    tracking.stop(abruptly=True)
    started = logged_steps(root / "zero0")[-1]
    time.sleep(OUTAGE_SECONDS)
    during = logged_steps(root / "zero0")[-1]
    alive = process.poll() is None
    tracking.start()
    output = finish(process)
    finish(start(ray_head, tokens, root / "zero2", 2))
    return {0: root / "zero0", 2: root / "zero2",
            "outage": {"started": started, "during": during, "alive": alive, "output": output}}


def kill_mid_run(process: subprocess.Popen, output_dir: Path, at_step: int) -> None:
    wait_for_step(process, output_dir, at_step)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    wait_until_workers_are_gone()
    assert_killed_mid_run(output_dir)


def mlflow_client():
    from mlflow import MlflowClient

    return MlflowClient(TRACKING_URI[0])


def mlflow_run(run_id: str):
    return mlflow_client().get_run(run_id)


def test_sigterm_checkpoints_then_the_rerun_resumes_exactly(ray_head, tokens, references, tmp_path):
    output_dir = tmp_path / "run"
    # SIGTERM (Ray's stop_job, a preemption): the workers checkpoint at the next step and the run ends KILLED.
    process = start(ray_head, tokens, output_dir, 0)
    wait_for_step(process, output_dir, 3)
    process.send_signal(signal.SIGTERM)
    output = process.communicate(timeout=300)[0].decode(errors="replace")
    assert process.returncode != 0 and "stopped on request" in output, output[-3000:]
    stopped_at = int(re.search(r"stopped on request at step (\d+)", output).group(1))
    assert 3 <= stopped_at <= STEPS - 8 and (output_dir / "checkpoints" / f"step-{stopped_at:08d}").is_dir()
    run_id = re.search(r"mlflow run: (\w+)", output).group(1)
    assert mlflow_run(run_id).info.status == "KILLED"
    wait_until_workers_are_gone()

    # The same command again resumes from that checkpoint (a SIGKILLed driver, with no chance to save, is
    # the next tests' case).
    output = finish(start(ray_head, tokens, output_dir, 0))
    assert f"resuming from {output_dir / 'checkpoints' / f'step-{stopped_at:08d}'}" in output
    assert_same_run(output_dir, references[0])
    assert json.loads((output_dir / "run.json").read_text())["run_id"] == run_id  # one MLflow run throughout
    run = mlflow_run(run_id)
    assert run.info.status == "FINISHED"
    steps = [m.step for m in mlflow_client().get_metric_history(run_id, "loss")]
    assert sorted(steps) == list(range(1, STEPS + 1))  # each step logged once


def test_a_killed_worker_then_a_killed_driver_and_a_truncated_checkpoint(ray_head, tokens, references, tmp_path):
    output_dir = tmp_path / "run"
    # One Ray Train worker dies: with max_failures=1 the job restarts its workers from the newest checkpoint.
    process = start(ray_head, tokens, output_dir, 2, "max_failures=1")
    wait_for_step(process, output_dir, 5)
    workers = [p for p in train_processes() if "RayTrainWorker" in " ".join(p.info["cmdline"])]
    assert workers, "no Ray Train worker process found to kill"
    assert list((output_dir / "checkpoints").glob("step-*")) and not (output_dir / "complete.json").exists()
    workers[-1].kill()
    wait_for(process, r"resuming at step \d+")
    # Then the driver is SIGKILLed, and its newest checkpoint truncated (as by a full disk): the rerun skips
    # that one, with a warning, for the one before it.
    wait_for_step(process, output_dir, 13)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    wait_until_workers_are_gone()
    assert_killed_mid_run(output_dir)
    older, newest = sorted((output_dir / "checkpoints").glob("step-*"))[-2:]
    victim = max(newest.rglob("*.pt"), key=lambda p: p.stat().st_size)
    victim.write_bytes(victim.read_bytes()[: victim.stat().st_size // 2])
    output = finish(start(ray_head, tokens, output_dir, 2))
    assert f"warning: skipping checkpoint {newest}" in output and f"resuming from {older}" in output
    assert_same_run(output_dir, references[2])


def test_sft_from_a_hugging_face_llada_folder_killed_mid_run_resumes_exactly_then_exports(ray_head, tokens, tmp_path):
    """Start from released LLaDA: a tiny LLaDA-layout Hugging Face folder (weights, a LLaDA-style tokenizer
    and chat template) is fine-tuned by the real SFT job. SFT streams its pairs through the same loader and
    loop: a driver SIGKILLed after a checkpoint, then rerun, ends with the uninterrupted run's metrics.jsonl
    and weights. The result is sampled, exported, and read back by transformers (tokenizer) and by our
    loader (weights)."""
    import torch
    from transformers import AutoTokenizer

    from tests.trainer.hf import tiny_llada_folder
    from tokenizer.encode import Tokenizer
    from trainer.checkpoint import load_model
    from trainer.config import SampleConfig
    from trainer.convert import ConvertConfig
    from trainer.convert import main as convert
    from trainer.hf.load import load_hf_checkpoint
    from trainer.sample import main as sample

    llada = tiny_llada_folder(tmp_path / "LLaDA-tiny")
    subprocess.run([sys.executable, "-m", "pipelines.sft_shards", f"tokenizer_dir={llada}", f"output_dir={tmp_path / 'pairs'}",
                    "max_seq_len=64", "pairs_per_file=200", "turns=sampled", "runner=local", "log_to_mlflow=false"],
                   cwd=PROJECT_ROOT, check=True, capture_output=True)
    sft = ["val_sequences=0", f"sft_tokens_dir={tmp_path / 'pairs'}", f"init_checkpoint={llada}", "tokenizer_dir="]
    finish(start(ray_head, tokens, tmp_path / "reference", 0, *sft, job="trainer.sft"))
    output_dir = tmp_path / "run"
    kill_mid_run(start(ray_head, tokens, output_dir, 0, *sft, job="trainer.sft"), output_dir, random.Random(1).randint(5, 20))
    assert "resuming from" in finish(start(ray_head, tokens, output_dir, 0, *sft, job="trainer.sft"))
    assert_same_run(output_dir, tmp_path / "reference", evaluated=False)

    tokenizer = Tokenizer.load(llada)
    tuned, imported = load_model(output_dir), load_model(llada)
    assert not torch.equal(tuned.transformer.wte.weight, imported.transformer.wte.weight)  # it trained
    assert tuned.config.vocab_size == imported.config.vocab_size == 640
    result = sample(SampleConfig(checkpoint=str(output_dir), tokenizer_dir=str(llada), prompt="What does `ls` do?",
                                 gen_length=8, block_length=8, steps=8))
    assert isinstance(result["completion"], str)
    exported = tmp_path / "sft-hf"
    convert(ConvertConfig(direction="to_hf", input=str(output_dir), output=str(exported), tokenizer_dir=str(llada)))
    reference = AutoTokenizer.from_pretrained(exported, trust_remote_code=False)
    messages = [{"role": "user", "content": "What does the `ls` command do?"}]
    assert reference.apply_chat_template(messages, add_generation_prompt=True, return_dict=False) == tokenizer.chat_prompt(messages)
    text = "`ls`: list directory contents."
    assert reference.encode(text, add_special_tokens=False) == tokenizer.encode(text)
    config = json.loads((exported / "config.json").read_text())
    assert (config["mask_token_id"], config["vocab_size"], config["embedding_size"]) == (tokenizer.mask_id, 601, 640)
    ids = torch.randint(0, tokenizer.vocab_size, (2, 12), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(load_hf_checkpoint(exported, dtype=torch.float32)(ids), tuned(ids))


def test_a_tracking_server_outage_is_retried_while_training_goes_on(references):
    """The MLflow server was stopped while the ZeRO-0 reference trained (see `references`): the workers
    trained on, the metrics of those steps reached the server once it was back, and each step is in the
    run's history exactly once. (That run's weights are the ones the resume tests compare against.)"""
    outage = references["outage"]
    started, during, output = outage["started"], outage["during"], outage["output"]
    assert outage["alive"] and during > started, "the run stopped training while the server was down"
    # the outage met a log call: MLflow's HTTP client retried it (urllib3's "Retrying"), or, past its
    # retries, our sender did (common.tracking.MetricSender)
    assert re.search(r"Retrying \(Retry\(.*log-batch|mlflow: cannot log step", output), output[-3000:]
    run_id = re.search(r"mlflow run: (\w+)", output).group(1)
    history = sorted(m.step for m in mlflow_client().get_metric_history(run_id, "loss"))
    assert history == logged_steps(references[0]) == list(range(1, STEPS + 1))
    assert any(started < step <= during for step in history)  # the outage's steps too, once
    assert mlflow_run(run_id).info.status == "FINISHED"


def logged_steps(output_dir: Path) -> list[int]:
    return [json.loads(line)["step"] for line in (output_dir / "metrics.jsonl").read_text().splitlines()]
