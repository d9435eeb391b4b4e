"""
The names a workflow prompt may read: the one definition, shared by the definitions (which validate
templates against it) and the operators and triggers (which render with only these names).

Airflow-free and dependency-free, because the triggerer imports it on its event loop's hot path.
Not Airflow's full template context: ``conn``, ``var``, ``ti``, ``macros``... would hand secrets and
the metadata of other tasks to a workflow file author and, through the model's reply, to XCom.
"""

from __future__ import annotations

from typing import Final

#: Every name a YAML workflow's templated field (prompt, system_prompt, model, connection) may read.
WORKFLOW_PROMPT_NAMES: Final[tuple[str, ...]] = (
    "results",
    "upstream_text",
    "params",
    "item",
    "last",
    "iteration",
    "ds",
    "logical_date",
    "run_id",
    "dag_id",
)

__all__ = ["WORKFLOW_PROMPT_NAMES"]
