"""Test-session environment: every service's state in a temporary folder, nothing in $HOME or .state/."""

import os
import tempfile
from pathlib import Path

_SESSION_STATE = Path(tempfile.mkdtemp(prefix="llada-test-state-"))
_PROJECT_ROOT = Path(__file__).resolve().parent.parent

os.environ["LLADA_STATE_DIR"] = str(_SESSION_STATE)
os.environ["AIRFLOW_HOME"] = str(_SESSION_STATE / "airflow")
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("ONEDNN_MAX_CPU_ISA", "AVX512_CORE_BF16")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ["HF_DATASETS_CACHE"] = str(_SESSION_STATE / "hf_datasets")  # lm-eval's local tasks load through datasets
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
# DeepSpeed's one JIT-built op (30-100 s to compile) is kept between test runs.
os.environ.setdefault("TORCH_EXTENSIONS_DIR", str(_PROJECT_ROOT / ".state" / "torch_extensions"))
for variable in ("RAY_ADDRESS", "MLFLOW_TRACKING_URI"):
    os.environ.pop(variable, None)
