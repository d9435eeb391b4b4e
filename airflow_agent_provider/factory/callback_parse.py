"""
Which workflows a dag-processor parse that only runs callbacks needs, so that the others are not built.

**Why.** In Airflow 3.3 every task that ends in the triggerer (a triggerer-only agent, or a deferred
agent whose last round ends there) makes the triggerer send a task callback request, whether or not
the task has callbacks (``airflow.models.trigger.handle_event_submit`` for ``BaseTaskEndEvent``).
The dag-processor then parses the task's whole DAG file in a fresh process for each batch of such
requests (``airflow.dag_processing.processor._parse_file``). That parse serializes nothing: it only
runs the callbacks, and a *success* task callback request runs nothing at all
(``_execute_task_callbacks`` returns at once for a request that is not a failure one). Building
every workflow for it took 1.24 s for a folder of four 500-agent workflows (``bench/bench_parse.py``),
once per batch of tasks that ended; the full re-parse Airflow 3.3 sets off after each such parse is
:mod:`airflow_agent_provider.deploy.dag_processor`'s to stop (README, *Run in production*).

**How.** Airflow sets no parsing context for these parses, so the DAG file cannot ask which DAG is
wanted the way a task start does. The request is still there: the DAG file is imported from inside
``_parse_file(msg, log)``, whose ``msg`` is the ``DagFileParseRequest`` being handled. This module
reads it from the import's stack (read-only) and answers with the DAG ids whose callbacks need their
DAG: failure and retry task callbacks, DAG callbacks and e-mail requests. An empty answer means the
parse only carries success task callbacks, for which Airflow reads no DAG.

**When in doubt, build everything.** Anything else — a parse that is not Airflow's dag-processor, a
regular parse (no callback requests), a request type this module does not know, or another Airflow
whose internals differ — answers ``None``, and the DAG file builds as it always did. So a change in
Airflow can only cost the parse it costs today, never a DAG that a callback needs.

Only the standard library is imported here: a callback-only parse must not pay for the factory.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from types import FrameType

#: Where Airflow 3.3's dag-processor parses a file: ``_parse_file(msg, log)`` in this module.
PARSE_FUNCTION = "_parse_file"
PARSE_MODULE = "airflow.dag_processing.processor"
PARSE_REQUEST_TYPE = "DagFileParseRequest"

#: Frames looked through above the caller; the DAG file's import is about 15 below ``_parse_file``.
MAX_DEPTH = 64


def dag_ids_for_callbacks() -> frozenset[str] | None:
    """
    The DAG ids a callback-only parse by the dag-processor needs (possibly none), or ``None`` when
    this is not such a parse or it cannot be told: then every workflow is built, as always.
    """
    requests = _callback_requests_of_current_parse(sys._getframe(1))
    if requests is None:
        return None
    return dag_ids_needed(requests)


def dag_ids_needed(requests: Iterable[object]) -> frozenset[str] | None:
    """
    The DAG ids whose DAG these callback requests read (see the module docstring), or ``None`` if
    one of them is of a kind this module does not know.
    """
    dag_ids: set[str] = set()
    for request in requests:
        kind = getattr(request, "type", None)
        if kind == "TaskCallbackRequest":
            failure = getattr(request, "is_failure_callback", None)
            if not isinstance(failure, bool):
                return None
            if not failure:  # Airflow runs nothing for it and reads no DAG
                continue
            dag_id = getattr(getattr(request, "ti", None), "dag_id", None)
        elif kind == "EmailRequest":
            dag_id = getattr(getattr(request, "ti", None), "dag_id", None)
        elif kind == "DagCallbackRequest":
            dag_id = getattr(request, "dag_id", None)
        else:
            return None
        if not isinstance(dag_id, str) or not dag_id:
            return None
        dag_ids.add(dag_id)
    return frozenset(dag_ids)


def _callback_requests_of_current_parse(frame: FrameType | None) -> list[object] | None:
    """The callback requests of the dag-processor parse this frame runs in, or ``None`` (see above)."""
    for _ in range(MAX_DEPTH):
        if frame is None:
            return None
        code = frame.f_code
        if code.co_name == PARSE_FUNCTION and frame.f_globals.get("__name__") == PARSE_MODULE:
            msg = frame.f_locals.get("msg")
            if type(msg).__name__ != PARSE_REQUEST_TYPE:
                return None
            requests = getattr(msg, "callback_requests", None)
            if not isinstance(requests, list) or not requests:
                return None  # a regular parse: it serializes every DAG of the file
            return requests
        frame = frame.f_back
    return None


__all__ = ["dag_ids_for_callbacks", "dag_ids_needed"]
