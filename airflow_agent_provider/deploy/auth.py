"""
Admin credentials of the simple auth manager, and API tokens.

Airflow 3.3's simple auth manager reads passwords from a JSON file and generates (and prints) any
that are missing. ``airflow-init`` writes that file from ``AIRFLOW_ADMIN_PASSWORD`` first, so the
password is the one chosen in ``.env`` rather than a random one buried in a container log.
"""

from __future__ import annotations

import json
import os
import sys
import urllib.request
from pathlib import Path

from airflow_agent_provider.deploy._private_files import write_private


def write_passwords(users_setting: str, password: str, path: str | Path) -> None:
    """Write ``{user: password}`` for every user of ``[core] simple_auth_manager_users``."""
    users = [item.split(":")[0].strip() for item in users_setting.split(",") if item.strip()]
    if not users:
        raise ValueError("simple_auth_manager_users names no user")
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    write_private(target, json.dumps({user: password for user in users}) + "\n")


def fetch_token(api_url: str, username: str, password: str, timeout: float = 10.0) -> str:
    """A JWT for the REST API (``POST /auth/token``)."""
    body = json.dumps({"username": username, "password": password}).encode()
    req = urllib.request.Request(
        api_url.rstrip("/") + "/auth/token",
        data=body,
        method="POST",
        headers={"content-type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        token: str = json.loads(resp.read())["access_token"]
    return token


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args != ["write-passwords"]:
        print("usage: python -m airflow_agent_provider.deploy.auth write-passwords", file=sys.stderr)
        return 2
    password = os.environ.get("AIRFLOW_ADMIN_PASSWORD", "")
    users = os.environ.get("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS", "")
    path = os.environ.get("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE", "")
    if not password or not path:
        print("AIRFLOW_ADMIN_PASSWORD and the passwords file setting are required", file=sys.stderr)
        return 2
    write_passwords(users, password, path)
    print(f"admin credentials written for {users.split(':')[0]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
