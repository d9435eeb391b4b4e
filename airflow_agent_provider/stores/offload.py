"""
Run a blocking store operation off the event loop, on the stores' own small thread pool.

Why a pool of its own rather than ``asyncio.to_thread``: the loop's default executor has only
``min(32, cpus + 4)`` threads (6 on a 2-core triggerer) and is shared with everything else that
offloads work there (Airflow's connection lookups through ``sync_to_async``, DNS, SDK imports).
Hundreds of triggers each taking a rate-limit permit would otherwise queue behind one another and
behind unrelated work. SQLite serialises writers on its file lock anyway, so more threads than a
few would only wait on that lock; the pool is bounded and its threads keep their SQLite connection
(one per thread) for the life of the process.

``AIRFLOW__AGENT_PROVIDER__STORE_THREADS`` sets the pool size (default 8). The pool is rebuilt in a
forked child, whose inherited threads do not exist.
"""

from __future__ import annotations

import asyncio
import functools
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")

DEFAULT_STORE_THREADS = 8

_lock = threading.Lock()
_pool: tuple[int, ThreadPoolExecutor] | None = None


def store_threads() -> int:
    """The pool size: ``AIRFLOW__AGENT_PROVIDER__STORE_THREADS`` or 8 (at least 1)."""
    raw = os.environ.get("AIRFLOW__AGENT_PROVIDER__STORE_THREADS", "").strip()
    try:
        return max(1, int(raw)) if raw else DEFAULT_STORE_THREADS
    except ValueError:
        raise ValueError(
            f"AIRFLOW__AGENT_PROVIDER__STORE_THREADS must be a whole number, got {raw!r}"
        ) from None


def executor() -> ThreadPoolExecutor:
    """The process's store thread pool (created on first use, again after a fork)."""
    global _pool
    pid = os.getpid()
    current = _pool
    if current is not None and current[0] == pid:
        return current[1]
    with _lock:
        if _pool is None or _pool[0] != pid:
            _pool = (pid, ThreadPoolExecutor(max_workers=store_threads(), thread_name_prefix="aap-store"))
        return _pool[1]


async def run_blocking(fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """``fn(*args, **kwargs)`` on the store pool, awaited without blocking the loop."""
    loop = asyncio.get_running_loop()
    call = (
        functools.partial(fn, *args, **kwargs) if kwargs else (functools.partial(fn, *args) if args else fn)
    )
    return await loop.run_in_executor(executor(), call)
