"""Exception classes of the optional transports (SDKs, httpx, Airflow), found without importing them."""

from __future__ import annotations

import asyncio
import sys

# Never imported here: the SDKs take seconds to import, and this module is loaded at DAG parse time
# (every task start). An exception of an SDK class can only exist once that SDK has been imported,
# so looking the classes up in ``sys.modules`` at classification time finds all the ones that matter.
# The SDKs ship their own copy of httpx ("httpx2"); plain httpx is what other callers use.
_TIMEOUT_CLASS_NAMES = (
    ("openai", "APITimeoutError"),
    ("anthropic", "APITimeoutError"),
    ("httpx", "TimeoutException"),
    ("httpx2", "TimeoutException"),
)
_CONNECTION_CLASS_NAMES = (
    ("openai", "APIConnectionError"),
    ("anthropic", "APIConnectionError"),
    ("httpx", "TransportError"),
    ("httpx2", "TransportError"),
)


#: Airflow's task timeouts (only looked up: the engines never import Airflow).
AIRFLOW_TIMEOUT_CLASS_NAMES = (
    ("airflow.sdk.exceptions", "TaskDeferralTimeout"),
    ("airflow.sdk.exceptions", "AirflowTaskTimeout"),
)


def loaded_classes(specs: tuple[tuple[str, str], ...]) -> tuple[type[BaseException], ...]:
    """The classes named by ``(module, class)`` among the modules already imported; imports nothing."""
    found = []
    for module_name, name in specs:
        module = sys.modules.get(module_name)
        cls = getattr(module, name, None) if module is not None else None
        if isinstance(cls, type):
            found.append(cls)
    return tuple(found)


def timeout_classes() -> tuple[type[BaseException], ...]:
    return loaded_classes(_TIMEOUT_CLASS_NAMES) + (asyncio.TimeoutError, TimeoutError)


def connection_classes() -> tuple[type[BaseException], ...]:
    return loaded_classes(_CONNECTION_CLASS_NAMES) + (ConnectionError,)
