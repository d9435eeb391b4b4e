"""
Airflow's dag-processor, run with one fix for Airflow 3.3: a parse that only ran callbacks keeps the
file's last parse time, so it is not followed by a full re-parse.

**The bug (Airflow 3.3.2).** Every task that ends in the triggerer gets a task callback request
(``airflow.models.trigger.handle_event_submit``), and the dag-processor runs it in a callback-only
parse of the task's DAG file. Its result goes through ``process_parse_results(is_callback_only=True)``,
which means to leave the file's timestamps alone ("don't update timestamps") but builds a fresh
``DagFileStat()`` whose ``last_finish_time`` is ``None``, and ``handle_parsing_result`` stores it in
place of the file's stat. When the queue next runs dry, ``prepare_file_queue`` sees a file with no
finish time, so not "recently processed" whatever ``min_file_process_interval`` says, and parses it
again in full: every workflow built, serialized and compared with the database. While a fleet's
tasks keep ending in the triggerer, the dag-processor therefore alternates callback parses and full
parses of the whole file. Measured on a 500-agent deferred fleet (a DAG file shared by four fleets,
2194382): the dag-processor used 94 of the run's 382 CPU seconds (1 s during the no-op floor's run),
and two thirds of its busy samples (py-spy) were full parses: importing the factory, building every
workflow, serializing them and writing the result to the database.

**The fix.** After Airflow's own ``handle_parsing_result``, a callback-only parse whose new stat has
lost the finish time gets the stat the file had before (its finish time, DAG and error counts and
run count), with the callback parse's duration. Nothing else changes: a regular parse, a failed one
and every callback run exactly as in Airflow. On an Airflow that keeps the finish time itself the
condition never holds and the wrapper does nothing. It belongs upstream: keep the previous stat's
timestamps in ``process_parse_results`` for callback-only processing.

**Where.** This module is the dag-processor's entry point in both of the provider's deployments
(``python -m airflow_agent_provider.deploy.dag_processor`` in place of ``airflow dag-processor``,
see :mod:`airflow_agent_provider.deploy.settings`); arguments are Airflow's. The provider itself
never patches Airflow: a deployment of your own runs ``airflow dag-processor`` unchanged unless it
uses this entry point. ``AIRFLOW_AGENT_PROVIDER_DAG_PROCESSOR_FIX=0`` runs Airflow's unchanged here.
"""

from __future__ import annotations

import functools
from typing import Any

import attrs

from airflow_agent_provider.deploy._entry_point import run_with_fix

#: Set to ``0`` to run Airflow's dag-processor without the fix.
SWITCH = "AIRFLOW_AGENT_PROVIDER_DAG_PROCESSOR_FIX"

_MARK = "_agent_provider_keeps_callback_stats"


def keep_stats_of_callback_parses() -> bool:
    """
    Wrap ``DagFileProcessorManager.handle_parsing_result`` (see the module docstring); returns
    whether it is wrapped now (once per process, idempotent).
    """
    from airflow.dag_processing.manager import DagFileProcessorManager

    original = DagFileProcessorManager.handle_parsing_result
    if getattr(original, _MARK, False):
        return True

    @functools.wraps(original)
    def handle_parsing_result(self: DagFileProcessorManager, file: Any, proc: Any, **kwargs: Any) -> None:
        before = self._file_stats.get(file)
        original(self, file, proc, **kwargs)
        after = self._file_stats.get(file)
        callback_only = bool(getattr(proc, "had_callbacks", False)) and proc.parsing_result is None
        if (
            callback_only
            and before is not None
            and before.last_finish_time is not None
            and after is not None
            and after.last_finish_time is None
        ):
            self._file_stats[file] = attrs.evolve(before, last_duration=after.last_duration)

    setattr(handle_parsing_result, _MARK, True)
    DagFileProcessorManager.handle_parsing_result = handle_parsing_result  # type: ignore[method-assign]
    return True


def main(argv: list[str] | None = None) -> None:
    """``airflow dag-processor`` with the fix (unless switched off)."""
    run_with_fix("dag-processor", SWITCH, keep_stats_of_callback_parses, argv)


if __name__ == "__main__":
    main()
