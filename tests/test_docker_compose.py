"""docker-compose.yml cannot run here (no Docker engine): check what it refers to exists in the project."""

from pathlib import Path

import yaml

from common.paths import PROJECT_ROOT

VENV_BIN = Path(__import__("sys").executable).parent


def load():
    return yaml.safe_load((PROJECT_ROOT / "docker-compose.yml").read_text())


def test_required_services_are_described():
    services = load()["services"]
    for name in ("postgres", "mlflow", "ray-head", "ray-gpu-worker", "airflow-apiserver", "airflow-scheduler",
                 "airflow-dag-processor", "airflow-triggerer", "minio"):
        assert name in services, name
    gpu = services["ray-gpu-worker"]["deploy"]["resources"]["reservations"]["devices"][0]
    assert gpu["capabilities"] == ["gpu"]
    assert "postgresql" in services["mlflow"]["command"][services["mlflow"]["command"].index("--backend-store-uri") + 1]


def test_every_project_command_and_mounted_path_exists():
    spec = load()
    for name, service in spec["services"].items():
        build = service.get("build")
        if build:
            assert (PROJECT_ROOT / build["context"] / build["dockerfile"]).is_file(), name
            command = service["command"]
            # The project image runs the same executables this virtualenv has.
            assert (VENV_BIN / command[0]).exists(), f"{name}: {command[0]} is not installed by the project"
            if command[:2] == ["airflow", "scheduler"] or command[0] == "airflow":
                assert service["environment"]["AIRFLOW__CORE__DAGS_FOLDER"] == "/opt/llada/dags"
        for volume in service.get("volumes", []):
            host = volume.split(":")[0]
            if host.startswith("./"):
                assert (PROJECT_ROOT / host).exists(), f"{name} mounts missing {host}"


def test_secrets_come_from_env_example():
    assert (PROJECT_ROOT / ".env.example").is_file()
    assert ".env" in (PROJECT_ROOT / ".gitignore").read_text().split()
    text = (PROJECT_ROOT / "docker-compose.yml").read_text()
    for variable in ("POSTGRES_PASSWORD", "MINIO_ROOT_PASSWORD"):
        assert f"${{{variable}}}" in text
        assert f"{variable}=" in (PROJECT_ROOT / ".env.example").read_text()
