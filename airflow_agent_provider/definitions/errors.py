"""
Errors raised when a workflow definition cannot be used.

A workflow file is usually edited by hand and fixed in one go, so the loader never stops at the first
problem: it collects every :class:`Problem` it can find and raises them together in one
:class:`WorkflowDefinitionError` that names the file, the field path and, where known, the line.
"""

from __future__ import annotations

from dataclasses import dataclass

from airflow_agent_provider.exceptions import WorkflowDefinitionError as WorkflowDefinitionError


@dataclass(frozen=True)
class Problem:
    """
    One thing wrong with a workflow definition.

    :param loc: where the problem is: a field path such as ``modules.Finance.agents[2].model``,
        ``line 12, column 3`` for YAML syntax errors, or ``(file)`` for the file as a whole.
    :param message: the reason, in plain words.
    :param line: 1-based line in the YAML file, when it can be traced back to one.
    """

    loc: str
    message: str
    line: int | None = None

    def __str__(self) -> str:
        text = f"{self.loc}: {self.message}"
        if self.line is not None and not self.loc.startswith("line "):
            text += f" (line {self.line})"
        return text
