"""SimpleAuthManager plus per-user denials: the auth manager of the real api-server test.

Why: Airflow 3.3's SimpleAuthManager grants DAG read to every role from Viewer up, for every DAG;
the only per-DAG denial it knows is multi-team mode (a DAG's bundle owned by a team the user is
not in). To check that the plugin asks the auth manager about *the DAG in the path*, this
subclass refuses, for the users named in ``AAP_TEST_AUTH_DENY`` (JSON ``{"user": {"dags": [...],
"configuration": true}}``), DAG access to the listed DAGs and configuration read. Everything else
(users, passwords, tokens, roles, cookie and bearer handling) is SimpleAuthManager's own.
"""

from __future__ import annotations

import json
import os
from typing import Any

from airflow.api_fastapi.auth.managers.simple.simple_auth_manager import SimpleAuthManager


def _denied(user: Any) -> dict[str, Any]:
    rules = json.loads(os.environ.get("AAP_TEST_AUTH_DENY", "{}"))
    return rules.get(getattr(user, "username", None), {})


class RestrictedSimpleAuthManager(SimpleAuthManager):
    """SimpleAuthManager that also refuses the DAGs and the configuration ``AAP_TEST_AUTH_DENY`` lists."""

    def is_authorized_dag(self, *, method, user, access_entity=None, details=None) -> bool:
        if details is not None and details.id in _denied(user).get("dags", ()):
            return False
        return super().is_authorized_dag(
            method=method, user=user, access_entity=access_entity, details=details
        )

    def is_authorized_configuration(self, *, method, user, details=None) -> bool:
        if _denied(user).get("configuration"):
            return False
        return super().is_authorized_configuration(method=method, user=user, details=details)
