"""docker-compose.yml cannot run here (no Docker engine): check what it refers to exists in the project, and
the properties a security review looks for, on the parsed file: ports on loopback unless BIND_ADDRESS says
otherwise, MLflow behind its basic-auth app, Ray behind its token, secrets from .env only (no placeholder
default inline), each service given only the secrets it needs, init-secrets refusing placeholders before
anything starts, and healthchecks that the other services wait on. The init scripts run here with `sh`."""

import base64
import configparser
import json
import os
import re
import secrets
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from common.paths import PROJECT_ROOT
from formats.layout import DEFAULT_WORK_DIR

VENV_BIN = Path(sys.executable).parent
IMAGE_ROOT = "/opt/llada"  # where docker/Dockerfile puts the project (WORKDIR, LLADA_JOB_WORKDIR)
INIT_SECRETS = PROJECT_ROOT / "docker" / "init-secrets.sh"
REFERENCE = re.compile(r"\$\{(\w+)([:?+-][^}]*)?\}")  # compose's ${NAME}, ${NAME:-default}, ...


def load():
    return yaml.safe_load((PROJECT_ROOT / "docker-compose.yml").read_text())


def env_example() -> dict[str, str]:
    lines = (PROJECT_ROOT / ".env.example").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


def secret_names() -> list[str]:
    """The secrets: the variables .env.example leaves as a `change-me` placeholder."""
    return [name for name, value in env_example().items() if value.startswith("change-me")]


def real_value(name: str) -> str:
    if name == "AIRFLOW__CORE__FERNET_KEY":
        return base64.urlsafe_b64encode(os.urandom(32)).decode()
    return secrets.token_hex(16)  # 32 characters: within init-secrets' 16 and MinIO's 40


def referenced(value) -> set[str]:
    """The .env variables a piece of the compose file interpolates."""
    return {match.group(1) for match in REFERENCE.finditer(json.dumps(value))}


def one_shot(services) -> set[str]:
    """Services that run to completion: the ones another service waits for with service_completed_successfully."""
    return {name for service in services.values() for name, wait in (service.get("depends_on") or {}).items()
            if wait["condition"] == "service_completed_successfully"}


def mount(volume: str) -> tuple[str, str]:
    """A short-syntax volume's (source, target); a ${VAR:-default} source keeps its colon."""
    source, target = REFERENCE.sub(lambda m: m.group(0).replace(":", "\0"), volume).split(":")[:2]
    return source.replace("\0", ":"), target


def run_sh(script: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(["sh", str(script)], env=env, capture_output=True, text=True, timeout=30)


def test_required_services_are_described():
    services = load()["services"]
    for name in ("postgres", "mlflow", "ray-head", "ray-gpu-worker", "airflow-apiserver", "airflow-scheduler",
                 "airflow-dag-processor", "airflow-triggerer", "minio", "minio-init", "init-secrets"):
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
            if command[:2] == ["sh", "-c"]:  # a small script that ends by exec'ing the service's program
                program = re.search(r"\bexec (\S+)", command[2]).group(1)
            else:
                program = command[0]
            # The project image runs the same executables this virtualenv has (and the base image's sh).
            assert program == "sh" or (VENV_BIN / program).exists(), f"{name}: {program} is not installed by the project"
            for argument in command:  # a script of docker/ run from the image's copy of the project
                if argument.startswith(f"{IMAGE_ROOT}/docker/"):
                    assert (PROJECT_ROOT / argument.removeprefix(f"{IMAGE_ROOT}/")).is_file(), f"{name}: {argument}"
            if program == "airflow":
                assert service["environment"]["AIRFLOW__CORE__DAGS_FOLDER"] == "/opt/llada/dags"
        for volume in service.get("volumes", []):
            host, _ = mount(volume)
            if host.startswith("./"):
                assert (PROJECT_ROOT / host).exists(), f"{name} mounts missing {host}"


def test_secrets_come_from_env_example():
    assert (PROJECT_ROOT / ".env.example").is_file()
    assert ".env" in (PROJECT_ROOT / ".gitignore").read_text().split()
    # The image's build context leaves .env out, or `COPY . .` would put every secret in the image.
    assert ".env" in (PROJECT_ROOT / "docker" / "Dockerfile.dockerignore").read_text().split()
    spec = load()
    assert referenced(spec) <= set(env_example()) | {"MLFLOW_ALLOWED_HOSTS"}, "a ${VAR} that .env.example lacks"
    assert {"POSTGRES_PASSWORD", "MINIO_ROOT_PASSWORD", "RAY_AUTH_TOKEN", "AIRFLOW__CORE__FERNET_KEY"} <= set(secret_names())


def test_published_ports_listen_on_loopback_unless_bind_address_says_otherwise():
    published = 0
    for name, service in load()["services"].items():
        for port in service.get("ports", []):
            assert isinstance(port, str) and port.startswith("${BIND_ADDRESS:-127.0.0.1}:"), f"{name}: {port}"
            assert port.count(":") == 3, f"{name}: {port} names no host address"  # ${...:-127.0.0.1}:host:container
            published += 1
    assert published == 3  # Airflow, MLflow, Ray's dashboard; PostgreSQL and MinIO stay on the compose network
    assert env_example()["BIND_ADDRESS"] == "127.0.0.1"


def test_no_secret_has_a_default_inline():
    text = (PROJECT_ROOT / "docker-compose.yml").read_text()
    assert "change-me" not in text
    for match in REFERENCE.finditer(text):
        if match.group(1) in secret_names():
            assert match.group(2) is None, f"{match.group(0)}: a secret comes from .env, with no default"


def test_each_service_gets_only_the_secrets_it_needs():
    services = load()["services"]
    airflow = {"POSTGRES_PASSWORD", "AIRFLOW__CORE__FERNET_KEY"}
    ray_node = {"RAY_AUTH_TOKEN", "MLFLOW_PIPELINE_PASSWORD"}
    needs = {
        "init-secrets": set(secret_names()),  # it only compares them with the placeholders
        "postgres": {"POSTGRES_PASSWORD", "MLFLOW_DB_PASSWORD"},
        "minio": {"MINIO_ROOT_PASSWORD"},
        "minio-init": {"MINIO_ROOT_PASSWORD", "MLFLOW_S3_SECRET_KEY"},
        "mlflow": {"MLFLOW_DB_PASSWORD", "MLFLOW_ADMIN_PASSWORD", "MLFLOW_FLASK_SERVER_SECRET_KEY", "MLFLOW_S3_SECRET_KEY"},
        "mlflow-users": {"MLFLOW_ADMIN_PASSWORD", "MLFLOW_PIPELINE_PASSWORD"},
        "ray-head": ray_node,
        "ray-gpu-worker": ray_node,
        "airflow-init": airflow,
        "airflow-apiserver": airflow | {"AIRFLOW_ADMIN_PASSWORD", "AIRFLOW__API_AUTH__JWT_SECRET", "AIRFLOW__API__SECRET_KEY"},
        "airflow-scheduler": airflow | {"AIRFLOW__API_AUTH__JWT_SECRET", "AIRFLOW__API__SECRET_KEY", "RAY_AUTH_TOKEN",
                                        "MLFLOW_PIPELINE_PASSWORD"},
        "airflow-dag-processor": airflow | {"MLFLOW_PIPELINE_PASSWORD"},
        "airflow-triggerer": airflow | {"AIRFLOW__API__SECRET_KEY", "RAY_AUTH_TOKEN"},
    }
    assert set(services) == set(needs)
    for name, service in services.items():
        assert "env_file" not in service, f"{name} reads the whole .env"
        assert referenced(service) & set(secret_names()) == needs[name], name
    # The two a review asks first: MLflow cannot decrypt Airflow's connections, Airflow cannot open MinIO.
    assert "AIRFLOW__CORE__FERNET_KEY" not in referenced(services["mlflow"])
    for name in services:
        if name.startswith("airflow-"):
            assert not referenced(services[name]) & {"MINIO_ROOT_PASSWORD", "MLFLOW_S3_SECRET_KEY"}, name


def test_init_secrets_runs_first_and_refuses_every_placeholder():
    services = load()["services"]
    init = services["init-secrets"]
    assert init["command"] == ["sh", f"{IMAGE_ROOT}/docker/init-secrets.sh"]
    assert set(init["environment"]) == set(secret_names())
    for name, service in services.items():
        if name != "init-secrets":
            assert service["depends_on"]["init-secrets"] == {"condition": "service_completed_successfully"}, name

    base = {"PATH": os.environ["PATH"]}
    refused = run_sh(INIT_SECRETS, base | env_example())  # a .env copied from .env.example, not filled in
    assert refused.returncode != 0
    named = set(re.findall(r"^init-secrets: ([A-Z0-9_]+) ", refused.stderr, flags=re.M))
    assert named == set(secret_names())

    real = {name: real_value(name) for name in secret_names()}
    accepted = run_sh(INIT_SECRETS, base | real)
    assert accepted.returncode == 0, accepted.stderr

    for name in secret_names():  # each placeholder alone is enough to refuse, and is the one named
        one_left = run_sh(INIT_SECRETS, base | real | {name: env_example()[name]})
        assert one_left.returncode != 0 and f"{name} still has its .env.example placeholder" in one_left.stderr
        assert len(re.findall(r"^init-secrets: [A-Z0-9_]+ ", one_left.stderr, flags=re.M)) == 1
    missing = run_sh(INIT_SECRETS, base | {k: v for k, v in real.items() if k != "RAY_AUTH_TOKEN"})
    assert missing.returncode != 0 and "RAY_AUTH_TOKEN is not set" in missing.stderr
    weak = run_sh(INIT_SECRETS, base | real | {"AIRFLOW__CORE__FERNET_KEY": "x" * 44, "POSTGRES_PASSWORD": "short"})
    assert "AIRFLOW__CORE__FERNET_KEY is not a Fernet key" in weak.stderr
    assert "POSTGRES_PASSWORD is shorter than" in weak.stderr


def test_long_running_services_have_healthchecks_and_are_waited_for_healthy():
    services = load()["services"]
    assert one_shot(services) == {"init-secrets", "minio-init", "mlflow-users", "airflow-init"}
    for name, service in services.items():
        if name not in one_shot(services):
            assert service["healthcheck"]["test"][0] == "CMD", f"{name} has no healthcheck"
        for other, wait in service.get("depends_on", {}).items():
            expected = "service_completed_successfully" if other in one_shot(services) else "service_healthy"
            assert wait == {"condition": expected}, f"{name} waits for {other} with {wait}"
    assert "ray-head" in services["ray-gpu-worker"]["depends_on"]
    assert {"postgres", "minio-init"} <= set(services["mlflow"]["depends_on"])


def test_mlflow_runs_its_basic_auth_app_and_clients_sign_in():
    services = load()["services"]
    mlflow = services["mlflow"]
    command = mlflow["command"]
    assert command[command.index("--app-name") + 1] == "basic-auth"
    env = mlflow["environment"]
    assert env["MLFLOW_FLASK_SERVER_SECRET_KEY"] == "${MLFLOW_FLASK_SERVER_SECRET_KEY}"
    assert env["MLFLOW_AUTH_ADMIN_PASSWORD"] == "${MLFLOW_ADMIN_PASSWORD}"
    # The auth config MLflow reads: mounted from docker/, holding no secret (the passwords come from the env).
    (source,) = [s for s, target in map(mount, mlflow["volumes"]) if target == env["MLFLOW_AUTH_CONFIG_PATH"]]
    config = configparser.ConfigParser()
    config.read(PROJECT_ROOT / source)
    assert config["mlflow"]["default_permission"] == "READ"
    assert config["mlflow"]["database_uri"].startswith("postgresql+psycopg2://mlflow@postgres:")  # PGPASSWORD
    assert "admin_password" not in config["mlflow"]
    # No password on the command line either (`ps`, `docker inspect` show it): the user alone, then PGPASSWORD.
    assert command[command.index("--backend-store-uri") + 1] == "postgresql+psycopg2://mlflow@postgres:5432/mlflow"
    assert env["PGPASSWORD"] == "${MLFLOW_DB_PASSWORD}"

    users = services["mlflow-users"]["environment"]
    assert users["MLFLOW_TRACKING_USERNAME"] == config["mlflow"]["admin_username"]
    for name in ("airflow-scheduler", "airflow-dag-processor", "ray-head", "ray-gpu-worker"):
        client = services[name]["environment"]
        assert client["MLFLOW_TRACKING_URI"] == "http://mlflow:5000", name
        assert client["MLFLOW_TRACKING_USERNAME"] == users["MLFLOW_PIPELINE_USERNAME"], name
        assert client["MLFLOW_TRACKING_PASSWORD"] == "${MLFLOW_PIPELINE_PASSWORD}", name


def test_ray_keeps_token_auth():
    services = load()["services"]
    for name in ("ray-head", "ray-gpu-worker", "airflow-scheduler", "airflow-triggerer"):
        env = services[name]["environment"]
        assert env["RAY_AUTH_MODE"] == "token" and env["RAY_AUTH_TOKEN"] == "${RAY_AUTH_TOKEN}", name


def test_airflow_reads_its_admin_password_and_fernet_key(tmp_path):
    services = load()["services"]
    for name, service in services.items():
        if name.startswith("airflow-"):
            assert service["environment"]["AIRFLOW__CORE__FERNET_KEY"] == "${AIRFLOW__CORE__FERNET_KEY}", name
    apiserver = services["airflow-apiserver"]
    env = apiserver["environment"]
    assert env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"] == "admin:admin"
    assert os.path.dirname(env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"]) in apiserver["tmpfs"]
    # Run the api-server's start script as compose would ($$ is a literal $), with a stand-in `airflow`:
    # the simple auth manager's password file must be this JSON, readable by its owner only.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "airflow").write_text("#!/bin/sh\necho \"airflow $*\"\n")
    (bin_dir / "airflow").chmod(0o755)
    passwords = tmp_path / "passwords.json"
    password = 'a "quoted" \\ password'
    result = subprocess.run(
        ["sh", "-c", apiserver["command"][2].replace("$$", "$")], capture_output=True, text=True, timeout=30,
        env={"PATH": f"{bin_dir}:{VENV_BIN}:{os.environ['PATH']}", "AIRFLOW_ADMIN_PASSWORD": password,
             "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords)})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "airflow api-server --port 8080"
    assert json.loads(passwords.read_text()) == {"admin": password}
    assert stat.S_IMODE(passwords.stat().st_mode) == 0o600


def test_minio_init_creates_the_bucket_and_mlflows_own_user(tmp_path):
    services = load()["services"]
    init, mlflow = services["minio-init"], services["mlflow"]
    assert init["image"].startswith("minio/mc")
    ((source, target),) = map(mount, init["volumes"])
    script = PROJECT_ROOT / source
    assert init["entrypoint"] == ["sh", target]
    bucket = mlflow["command"][mlflow["command"].index("--artifacts-destination") + 1].removeprefix("s3://")
    assert mlflow["environment"]["AWS_ACCESS_KEY_ID"] == init["environment"]["MLFLOW_S3_ACCESS_KEY"]
    assert mlflow["environment"]["AWS_SECRET_ACCESS_KEY"] == "${MLFLOW_S3_SECRET_KEY}"
    # Run the script with a stand-in `mc` that records its calls.
    bin_dir, calls = tmp_path / "bin", tmp_path / "calls"
    bin_dir.mkdir()
    (bin_dir / "mc").write_text(f"#!/bin/sh\necho \"$*\" >> {calls}\n")
    (bin_dir / "mc").chmod(0o755)
    env = {"PATH": f"{bin_dir}:{os.environ['PATH']}", "MINIO_ROOT_USER": "root", "MINIO_ROOT_PASSWORD": "rootsecret",
           "MLFLOW_S3_ACCESS_KEY": "mlflow", "MLFLOW_S3_SECRET_KEY": "mlflowsecret"}
    result = run_sh(script, env)
    assert result.returncode == 0, result.stderr
    made = calls.read_text().splitlines()
    assert made[0] == "alias set local http://minio:9000 root rootsecret"
    assert f"mb --ignore-existing local/{bucket}" in made
    assert "admin user add local mlflow mlflowsecret" in made
    assert "admin policy attach local mlflow-artifacts --user mlflow" in made


def test_default_work_dir_is_on_the_shared_volume():
    services = load()["services"]
    assert f"LLADA_JOB_WORKDIR={IMAGE_ROOT}" in (PROJECT_ROOT / "docker" / "Dockerfile").read_text()
    for name in ("ray-head", "ray-gpu-worker", "airflow-scheduler"):
        mounts = {target: source for source, target in map(mount, services[name]["volumes"])}
        data_root = mounts["/srv/llada"]
        assert data_root.startswith("${LLADA_DATA"), name
        # A job runs in IMAGE_ROOT: its default work_dir (relative) is a folder of the shared data root.
        assert mounts[f"{IMAGE_ROOT}/{DEFAULT_WORK_DIR}"].startswith(data_root + "/"), name
        assert services[name]["environment"]["LLADA_STATE_DIR"].startswith("/srv/llada/"), name


def test_image_python_is_the_one_the_lock_was_compiled_for():
    lock_python = re.search(r"--python-version (\S+)", (PROJECT_ROOT / "requirements.lock").read_text()).group(1)
    dockerfile = (PROJECT_ROOT / "docker" / "Dockerfile").read_text()
    assert f"uv venv --python {lock_python} /opt/venv" in dockerfile
    requires = re.search(r'requires-python = ">=(\S+)"', (PROJECT_ROOT / "pyproject.toml").read_text()).group(1)
    assert tuple(map(int, lock_python.split("."))) >= tuple(map(int, requires.split(".")))


def docker_compose() -> list[str] | None:
    """The compose command this machine has: the docker plugin, else the standalone docker-compose."""
    if shutil.which("docker") and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ["docker", "compose"]
    return ["docker-compose"] if shutil.which("docker-compose") else None


@pytest.mark.skipif(docker_compose() is None, reason="neither `docker compose` nor `docker-compose` is available here")
def test_docker_compose_config_accepts_the_file(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("".join(f"{name}={real_value(name) if name in secret_names() else value}\n"
                                for name, value in env_example().items()))
    result = subprocess.run([*docker_compose(), "--env-file", str(env_file), "-f", "docker-compose.yml", "config"],
                            cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    resolved = yaml.safe_load(result.stdout)["services"]
    for name, service in resolved.items():  # docker compose writes ports long-form, docker-compose short
        for port in service.get("ports", []):
            host_ip = port["host_ip"] if isinstance(port, dict) else port.split(":")[0]
            assert host_ip == "127.0.0.1", f"{name}: {port}"
    assert "change-me" not in result.stdout
