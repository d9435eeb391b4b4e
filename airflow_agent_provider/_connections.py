"""
The provider's default connection ids: the one place they are defined.

Airflow-free, so the definitions (which fill in a workflow's default ``llm_conn_id``), the hooks
(``default_conn_name``), the operators and the triggers all read the same names.
"""

from __future__ import annotations

from typing import Final

OPENAI_DEFAULT_CONN_ID: Final = "agent_openai_default"
ANTHROPIC_DEFAULT_CONN_ID: Final = "agent_anthropic_default"

#: The default connection id per provider name.
DEFAULT_CONN_IDS: Final[dict[str, str]] = {
    "openai": OPENAI_DEFAULT_CONN_ID,
    "anthropic": ANTHROPIC_DEFAULT_CONN_ID,
}


def default_conn_id(provider: str | None) -> str:
    """
    Return the default connection id for ``provider`` (OpenAI's for unknown or unset providers).

    Unknown provider names are OpenAI-compatible endpoints, which is what the OpenAI default
    connection points at.
    """
    return DEFAULT_CONN_IDS.get(provider or "openai", OPENAI_DEFAULT_CONN_ID)
