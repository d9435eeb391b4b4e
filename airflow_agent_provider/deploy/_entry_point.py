"""
An Airflow component's command run with one of the deployments' fixes installed first.

Both fixes (:mod:`~airflow_agent_provider.deploy.dag_processor`, :mod:`~airflow_agent_provider.deploy.triggerer`)
are entry points that take Airflow's own arguments and run Airflow's own CLI, so a deployment swaps
``airflow <command>`` for ``python -m airflow_agent_provider.deploy.<module>`` and nothing else.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable


def run_with_fix(
    command: str, switch: str, install: Callable[[], object], argv: list[str] | None = None
) -> None:
    """
    ``airflow <command> <argv>`` after ``install()``, unless the environment sets ``<switch>=0``.

    :param argv: Airflow's arguments; the process's own (``sys.argv[1:]``) when None.
    """
    if os.environ.get(switch, "1") != "0":
        install()
    from airflow.__main__ import main as airflow_main

    sys.argv = ["airflow", command, *(sys.argv[1:] if argv is None else argv)]
    airflow_main()  # type: ignore[no-untyped-call]  # Airflow leaves its CLI entry point unannotated
