"""common.tracking.MetricSender: metrics reach the run in order; an unreachable server is retried, never raised."""

from __future__ import annotations

from common.tracking import MetricSender


def test_metrics_reach_the_run_in_step_order(tmp_path):
    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    run_id = client.create_run(client.create_experiment("sender")).info.run_id
    sender = MetricSender(client, run_id)
    for step in range(1, 21):
        sender.send({"loss": 1.0 / step, "tokens": step * 100}, step)
    sender.flush()
    history = client.get_metric_history(run_id, "loss")
    assert [m.step for m in history] == list(range(1, 21)) and history[-1].value == 1.0 / 20
    assert sender.failed_batches == 0


def test_an_unreachable_server_is_retried_then_given_up_without_raising(monkeypatch):
    from mlflow import MlflowClient

    from stack.local_ray import free_port

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # MLflow's own per-request retries: ours are under test
    warnings: list[str] = []
    sender = MetricSender(MlflowClient(f"http://127.0.0.1:{free_port()}"), "0" * 32, give_up_after=3, max_delay=1,
                          warn=warnings.append)
    sender.send({"loss": 1.0}, 7)
    assert sender.failed_batches == 0  # queued: the caller goes on while the sender retries
    sender.flush()
    assert sender.failed_batches == 1
    assert warnings[0].startswith("mlflow: cannot log step 7") and "giving up on step 7" in warnings[-1]
