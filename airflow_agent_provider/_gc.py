"""
Python's cyclic garbage collector paused while the provider loads or builds long-lived objects.

Why: importing the provider (its pydantic models, operators and engines) and building a 500-agent
DAG allocate tens of thousands of objects and free almost none, so the collections those
allocations set off find nothing; but a full (generation 2) collection walks every object of the
process, Airflow's own included. In a process forked from Airflow's dag-processor, which is how
Airflow parses a DAG file (also for a failure callback of a task that ended in the triggerer;
success callbacks need no factory, see ``factory/callback_parse.py``), the collections during the
provider's import took about 0.3 s of a 0.75 s parse; paused, the same parse took about 0.5 s. In
a parse of a 500-agent workflow the build itself set off one full collection, a third of the
one-DAG parse (``bench/bench_parse.py``).

Reference counting still frees everything as usual; only cycle detection waits until the block
ends. A process that had the collector off keeps it off. The switch is process-wide: the provider
uses it only around imports and DAG building, where nothing else of its own runs concurrently.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """The cyclic collector off inside the block, back on afterwards if it was on."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


__all__ = ["collector_paused"]
