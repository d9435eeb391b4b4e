"""
What the provider's triggers run on, imported off the triggerer's event loop, once per process.

Why: Airflow imports a trigger's class, builds the trigger and runs it on the one event loop that
every trigger of a triggerer shares, so an import there stops all of them for as long as it takes.
Measured at N = 500 deferring agents on the native stack: the first wave of triggers blocked that
loop six times in 12 s (0.2-1.9 s each, Airflow's "async thread was blocked"), all before the first
model call ended, while the engines (guard, limits, ledger, agent loop), the prompt and condition
code (which pull in the definitions package) and the SDK's lazily loaded resources were imported on
it. So the trigger modules import only what defines their classes, the triggers keep their
arguments as given until they run, and the first ``run()`` of a process awaits
:func:`aload_runtime`: one thread imports :data:`RUNTIME_MODULES` while every other trigger that
starts meanwhile awaits the same import (``_single_flight``). The SDKs and the price data load the
same way, per provider, in ``hooks.llm.awarm``.

``tests/triggers/test_loop_imports.py`` runs a triggerer's first triggers in a fresh interpreter
and fails if anything of the provider is imported on the loop, so a new lazy import on the
trigger path is caught there rather than in a fleet.
"""

from __future__ import annotations

import asyncio
import importlib

from airflow_agent_provider._gc import collector_paused
from airflow_agent_provider._single_flight import single_flight

#: The modules a trigger's run imports, each with what it imports in turn: the agent loop and
#: its configuration, the guarded call (budgets, limits, breaker, fallbacks, settlement, ledger),
#: the hooks, error classification and redaction, and what a task started from the trigger uses
#: to read upstream results, check its condition and render its prompt.
RUNTIME_MODULES: tuple[str, ...] = (
    "airflow_agent_provider.agent_loop.config",
    "airflow_agent_provider.agent_loop.drive",
    "airflow_agent_provider.agent_loop.state",
    "airflow_agent_provider.cost.ledger",
    "airflow_agent_provider.definitions.expressions",
    "airflow_agent_provider.exceptions",
    "airflow_agent_provider.guard.config",
    "airflow_agent_provider.guard.pipeline",
    "airflow_agent_provider.hooks.llm",
    "airflow_agent_provider.hooks.store",
    "airflow_agent_provider.llm.adapters",
    "airflow_agent_provider.llm.prompt",
    "airflow_agent_provider.llm.types",
    "airflow_agent_provider.operators.agent_runtime",
    "airflow_agent_provider.operators.batch_io",
    "airflow_agent_provider.operators.control_flow",
    "airflow_agent_provider.operators.prompt_context",
    "airflow_agent_provider.resilience.classify",
    "airflow_agent_provider.security.redact",
    "airflow_agent_provider.stores.budget_api",
)

_loaded = False


def load_runtime() -> None:
    """
    Import :data:`RUNTIME_MODULES` (blocking: in a thread, never on the event loop).

    Without the cyclic collector's full passes (``airflow_agent_provider._gc``): a collection stops
    every thread of the process, the event loop's included, however far from it the import runs.
    """
    with collector_paused():
        for name in RUNTIME_MODULES:
            importlib.import_module(name)


async def aload_runtime() -> None:
    """
    Import what a trigger runs on, off the event loop; at no cost after the first time.

    A failed import is not remembered: the next trigger tries again, and the error (an
    ``ImportError`` naming the module) fails the trigger that awaited it.
    """
    global _loaded
    if _loaded:
        return
    await single_flight(("trigger-runtime",), lambda: asyncio.to_thread(load_runtime))
    _loaded = True


__all__ = ["RUNTIME_MODULES", "aload_runtime", "load_runtime"]
