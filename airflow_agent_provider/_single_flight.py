"""
One in-flight run per key on an event loop: concurrent awaiters share it (a "single flight").

Why: the triggerer starts hundreds of agent triggers at once, and each begins by loading what only
the first needs to load (the price data, the store, the SDK client of its connection). Without
this, all of them miss the cache together and each runs the load in a thread: a hundred copies of
the same work on the loop's default executor (six threads on a two-core triggerer), which Airflow
also uses for its own connection and variable lookups. With it, one runs and the rest await it.

Only the run in flight is shared; the callers cache what it produced. A failed run is not kept:
the next caller tries again. An awaiter that is cancelled does not cancel the run for the others.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, TypeVar

T = TypeVar("T")

_inflight: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[Hashable, asyncio.Future[Any]]] = (
    weakref.WeakKeyDictionary()
)


def _done(per_loop: dict[Hashable, asyncio.Future[Any]], key: Hashable, future: asyncio.Future[Any]) -> None:
    if per_loop.get(key) is future:
        del per_loop[key]
    if not future.cancelled():
        future.exception()  # retrieved: no "exception was never retrieved" when every awaiter left


async def single_flight(key: Hashable, run: Callable[[], Awaitable[T]]) -> T:
    """
    Await ``run()``, or the run of ``key`` already in flight on this loop.

    :param key: What identifies the work (e.g. ``("client", cache_key)``).
    :param run: Starts the work; called only when no run of ``key`` is in flight.
    """
    per_loop = _inflight.setdefault(asyncio.get_running_loop(), {})
    future = per_loop.get(key)
    if future is None:
        future = per_loop[key] = asyncio.ensure_future(run())
        future.add_done_callback(lambda f: _done(per_loop, key, f))
    result: T = await asyncio.shield(future)
    return result


__all__ = ["single_flight"]
