"""A private state folder (MLflow store) per test module, and one real local Ray per module for the jobs run on it."""

import pytest


@pytest.fixture(scope="module")
def private_state(tmp_path_factory):
    """LLADA_STATE_DIR in a temporary folder for the module: its MLflow store is its own."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv("LLADA_STATE_DIR", str(tmp_path_factory.mktemp("state")))
        env.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
        env.delenv("RAY_ADDRESS", raising=False)
        # mlflow.set_tracking_uri() exports MLFLOW_TRACKING_URI, which common.tracking then prefers over
        # LLADA_STATE_DIR. setenv-then-delenv makes the undo after the module remove the value mlflow
        # exports meanwhile, so no other module inherits this module's store (nor this one another's).
        env.setenv("MLFLOW_TRACKING_URI", "")
        env.delenv("MLFLOW_TRACKING_URI")
        yield


@pytest.fixture(scope="module")
def ray_session(private_state):
    from common.ray_runtime import init_ray

    ray = init_ray(num_cpus=2)
    yield ray
    ray.shutdown()
