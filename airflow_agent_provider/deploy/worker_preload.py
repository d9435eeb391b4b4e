"""
What a Celery worker imports once, in its main process, before it forks its pool of task slots.

Why: Airflow 3 runs every task in a new process forked from a Celery pool process, and whatever
that task imports dies with it. An agent task imported, each time, the provider's factory (to
parse the DAG file), its engines, the vendor SDKs (``openai`` about 0.5 s, ``anthropic`` about
2.4 s on an idle 2-core machine) and genai-prices with its price data (about 0.3 s): a second or
more of a worker slot per task, on a path whose floor is a few seconds. A module imported here is
inherited by every pool process and every task process forked from it, so no task pays for it.

Celery imports this module through its ``imports`` setting
(:data:`airflow_agent_provider.deploy.celery_config.CELERY_CONFIG`), which only workers read. It
only imports and loads read-only data: no client, connection, socket, thread or open file is
created here, because everything created before a fork is shared by every process forked after it.
"""

from __future__ import annotations

import importlib
import pkgutil

import airflow_agent_provider

#: Subpackages a task never imports: the launcher, the CLI, the test server, the examples, and the
#: UI plugin (the api-server's, with its FastAPI app).
SKIPPED: frozenset[str] = frozenset({"cli", "deploy", "examples", "plugins", "testing"})


def provider_modules() -> list[str]:
    """Every module of the provider a task can import (all but :data:`SKIPPED`)."""
    prefix = airflow_agent_provider.__name__ + "."
    names = []
    for top in pkgutil.iter_modules(airflow_agent_provider.__path__, prefix):
        if top.name[len(prefix) :] in SKIPPED:
            continue  # not even its __init__: walk_packages would import it to look inside
        names.append(top.name)
        if top.ispkg:
            package = importlib.import_module(top.name)
            names.extend(info.name for info in pkgutil.walk_packages(package.__path__, top.name + "."))
    return sorted(names)


def preload() -> None:
    """Import the provider's modules, both SDKs and the price data."""
    from airflow_agent_provider.cost.pricing import warm_prices
    from airflow_agent_provider.hooks._client_cache import SDK_MODULES, warm_sdk

    for name in provider_modules():
        importlib.import_module(name)
    for provider in SDK_MODULES:
        warm_sdk(provider)
    warm_prices()


preload()
