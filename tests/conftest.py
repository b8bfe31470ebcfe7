"""Test-session environment: every service's state in a temporary folder, nothing in $HOME or .state/."""

import os
import tempfile
from pathlib import Path

_SESSION_STATE = Path(tempfile.mkdtemp(prefix="llada-test-state-"))

os.environ["LLADA_STATE_DIR"] = str(_SESSION_STATE)
os.environ["AIRFLOW_HOME"] = str(_SESSION_STATE / "airflow")
# As stack.airflow_home.configure() sets it, before any test imports Airflow (which reads its config once).
os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(Path(__file__).resolve().parent.parent / "dags"))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("ONEDNN_MAX_CPU_ISA", "AVX512_CORE_BF16")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ["HF_DATASETS_CACHE"] = str(_SESSION_STATE / "hf_datasets")  # lm-eval's local tasks load through datasets
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
# DeepSpeed's one JIT-built op (30-100 s to compile) stays in torch's own cache (~/.cache/torch_extensions),
# built once per machine.
for variable in ("RAY_ADDRESS", "MLFLOW_TRACKING_URI"):
    os.environ.pop(variable, None)
