"""
Refuse to start a deployment whose secrets are missing, placeholders, short or malformed.

``python -m airflow_agent_provider.deploy.secrets_check`` is the first step of ``airflow-init`` and
the ``secrets-check`` service that Postgres and Redis wait for in ``docker-compose.yml``; the
native launcher runs it too (on the secrets it generated). It reads the settings the components
really use, not the ``.env`` file: the JWT secret, the API secret key, the Fernet key, the admin
password, and the passwords inside the Postgres and Redis URLs. On any problem it prints one line
per problem, each naming the ``.env`` variable and the command that generates a good value, and
exits 1, so ``docker compose up`` stops before anything runs with a guessable secret.

Why each rule:

* A placeholder copied from ``.env.example`` (``change-me``) or a well-known default (``airflow``,
  ``admin``) is public: with the JWT secret anyone can forge an admin token for the API.
* Short values can be guessed offline (a JWT is an HMAC of a known header): keys need 32
  characters, passwords 16.
* An empty Fernet key stores connection passwords unencrypted; a malformed one fails at first use.
* Postgres and Redis passwords are part of connection URLs, so they must be URL-safe (letters,
  digits, ``-_.~``); anything else would silently change the URL's meaning.

``--generate`` prints a ``.env`` fragment with fresh values for every secret.
"""

from __future__ import annotations

import os
import re
import secrets
import sys
from collections.abc import Mapping
from dataclasses import dataclass

TOKEN_COMMAND = 'python -c "import secrets; print(secrets.token_urlsafe(48))"'
FERNET_COMMAND = 'python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"'

MIN_KEY_CHARS = 32
MIN_PASSWORD_CHARS = 16
#: A value with fewer distinct characters is a pattern (``aaaa...``, ``abab...``), not a secret.
MIN_DISTINCT_CHARS = 8

#: Lower-case values (after removing ``-_. ``) that are never secrets.
_WELL_KNOWN = frozenset(
    {
        "admin",
        "airflow",
        "changeme",
        "changeit",
        "default",
        "example",
        "fernet",
        "jwt",
        "password",
        "passwd",
        "postgres",
        "redis",
        "root",
        "secret",
        "secretkey",
        "test",
        "token",
        "toor",
        "xxx",
    }
)
#: Substrings that mark a value as a placeholder someone meant to replace.
_PLACEHOLDER_MARKS = (
    "changeme",
    "change-me",
    "change_me",
    "replace-me",
    "replaceme",
    "placeholder",
    "your-",
    "your_",
    "<",
    ">",
    "example",
    "generate",
)
_URL_SAFE = re.compile(r"[A-Za-z0-9._~-]+")


@dataclass(frozen=True)
class Secret:
    """One secret of the deployment: where the components read it, and its ``.env`` variable."""

    label: str
    dotenv: str
    kind: str  # "key", "password", "fernet" or "url-password"
    sources: tuple[str, ...]

    @property
    def command(self) -> str:
        return FERNET_COMMAND if self.kind == "fernet" else TOKEN_COMMAND


SECRETS: tuple[Secret, ...] = (
    Secret("JWT secret", "AIRFLOW_JWT_SECRET", "key", ("AIRFLOW__API_AUTH__JWT_SECRET",)),
    Secret("API secret key", "AIRFLOW_API_SECRET_KEY", "key", ("AIRFLOW__API__SECRET_KEY",)),
    Secret("Fernet key", "AIRFLOW_FERNET_KEY", "fernet", ("AIRFLOW__CORE__FERNET_KEY",)),
    Secret("admin password", "AIRFLOW_ADMIN_PASSWORD", "password", ("AIRFLOW_ADMIN_PASSWORD",)),
    Secret(
        "Postgres password",
        "POSTGRES_PASSWORD",
        "url-password",
        ("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "AIRFLOW__CELERY__RESULT_BACKEND"),
    ),
    Secret(
        "Redis password",
        "REDIS_PASSWORD",
        "url-password",
        ("AIRFLOW__CELERY__BROKER_URL", "AIRFLOW__AGENT_PROVIDER__STORE_URL"),
    ),
)


def _weakness(value: str, min_chars: int) -> str | None:
    """Why ``value`` is not a secret, or None."""
    lowered = value.strip().lower()
    if not lowered:
        return "is empty"
    if any(mark in lowered for mark in _PLACEHOLDER_MARKS):
        return "is a placeholder"
    if re.sub(r"[-_. ]", "", lowered) in _WELL_KNOWN:
        return "is a well-known default"
    if len(value) < min_chars:
        return f"is too short ({len(value)} characters, at least {min_chars})"
    if len(set(value)) < MIN_DISTINCT_CHARS:
        return "is a repeated pattern, not a random value"
    return None


def _fernet_problem(value: str) -> str | None:
    """Airflow's Fernet setting: one key, or several comma-separated (rotation); each must be valid."""
    keys = [k.strip() for k in value.split(",")]
    if not value.strip():
        return "is empty (connection passwords would be stored unencrypted)"
    for key in keys:
        weak = _weakness(key, 1)
        if weak and weak != "is a repeated pattern, not a random value":
            return weak
        try:
            from cryptography.fernet import Fernet

            Fernet(key.encode())
        except ImportError:  # pragma: no cover - every Airflow install has cryptography
            return None
        except (ValueError, TypeError):
            return "is not a Fernet key (32 url-safe base64-encoded bytes)"
    return None


def _url_password(url: str) -> str | None:
    """
    The password of ``scheme://user:password@host...`` as written, even when it breaks the URL.

    ``urlsplit`` would stop at a ``/`` or ``#`` inside the password and report something else; the
    host follows the last ``@``, so everything between the first ``:`` of the user part and that
    ``@`` is what the user wrote.
    """
    _, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return None
    userinfo = rest.rpartition("@")[0]
    _, colon, password = userinfo.partition(":")
    return password if colon else None


def _check(secret: Secret, env: Mapping[str, str]) -> str | None:
    if secret.kind == "url-password":
        for source in secret.sources:
            url = env.get(source)
            if url is None:
                continue
            password = _url_password(url)
            if not password:
                return f"is missing from {source} (the server would accept anyone)"
            if not _URL_SAFE.fullmatch(password):
                return "contains characters that are not URL-safe (use letters, digits, '-', '_', '.', '~')"
            if password.startswith("-"):
                return "starts with '-' (redis-server would read it as an option)"
            weak = _weakness(password, MIN_PASSWORD_CHARS)
            if weak:
                return weak
        return None
    value = next((env[s] for s in secret.sources if s in env), None)
    if value is None:
        return "is not set"
    if secret.kind == "fernet":
        return _fernet_problem(value)
    return _weakness(value, MIN_KEY_CHARS if secret.kind == "key" else MIN_PASSWORD_CHARS)


def problems(env: Mapping[str, str] | None = None) -> list[str]:
    """One line per bad secret: the ``.env`` variable, what is wrong, and how to generate a good value."""
    env = os.environ if env is None else env
    lines = []
    for secret in SECRETS:
        why = _check(secret, env)
        if why:
            lines.append(f"{secret.dotenv} ({secret.label}) {why}; generate one with: {secret.command}")
    return lines


def token(nbytes: int) -> str:
    """``secrets.token_urlsafe(nbytes)`` that passes every rule here (none starts with ``-``)."""
    while True:
        value = secrets.token_urlsafe(nbytes)
        if not value.startswith("-") and _weakness(value, MIN_PASSWORD_CHARS) is None:
            return value


def generate() -> dict[str, str]:
    """Fresh values for every secret, as ``.env`` lines would hold them."""
    from cryptography.fernet import Fernet

    values = {s.dotenv: token(48) for s in SECRETS if s.kind == "key"}
    values.update({s.dotenv: token(24) for s in SECRETS if s.kind in ("password", "url-password")})
    values["AIRFLOW_FERNET_KEY"] = Fernet.generate_key().decode()
    return values


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args == ["--generate"]:
        for name, value in generate().items():
            print(f"{name}={value}")
        return 0
    if args:
        print("usage: python -m airflow_agent_provider.deploy.secrets_check [--generate]", file=sys.stderr)
        return 2
    found = problems()
    if not found:
        print("secrets check: ok")
        return 0
    print(
        f"refusing to start: {len(found)} secret(s) in .env must be replaced "
        "(python -m airflow_agent_provider.deploy.secrets_check --generate prints a fresh set):",
        file=sys.stderr,
    )
    for line in found:
        print(f"  {line}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    raise SystemExit(main())
