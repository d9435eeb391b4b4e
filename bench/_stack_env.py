"""
What the stack benchmarks check about their environment before they start a stack.

Airflow loads every ``airflow.plugins`` entry point in every task process (for the plugins'
listeners), so a plugin installed beside the provider is paid by every task the stack runs: the
floors would measure it too, and they are meant to be Airflow alone. dag-factory, the peer of the
parse benchmark, registers one and costs each task process about 1 s here; it lives in its own
environment (``make bench``).
"""

from __future__ import annotations

from importlib.metadata import entry_points

#: This provider's own plugin: the one a deployment of it has.
OWN_PLUGIN_MODULE = "airflow_agent_provider.plugins.plugin"


def foreign_plugins() -> list[str]:
    """``name = module`` of every installed Airflow plugin entry point that is not this provider's."""
    return sorted(
        f"{ep.name} = {ep.value}"
        for ep in entry_points(group="airflow.plugins")
        if ep.module != OWN_PLUGIN_MODULE
    )


def refuse_foreign_plugins(allow: bool) -> str | None:
    """The error to stop on when other plugins are installed and not allowed, else ``None``."""
    found = foreign_plugins()
    if not found or allow:
        return None
    return (
        "other Airflow plugins are installed in this environment: "
        + "; ".join(found)
        + ". Airflow loads them in every task process, so every task of the stack (the floors"
        " included) would pay for them. Run this benchmark in an environment without them"
        " (make bench does: pip install -e '.[test]'), or pass --allow-plugins to measure with them."
    )
