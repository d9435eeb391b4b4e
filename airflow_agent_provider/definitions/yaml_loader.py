"""Safe YAML reading that keeps line numbers and refuses duplicate keys.

``yaml.safe_load`` silently keeps the last of two equal keys, so a second ``prompt:`` pasted into an
agent would quietly replace the first. Here the document is composed into nodes first (SafeLoader
only, no arbitrary objects), walked once to record the line of every key and list item and to find
duplicate keys, and only then constructed into plain Python data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from airflow_agent_provider.definitions.errors import Problem

FieldPath = tuple[str | int, ...]


class WorkflowYamlLoader(yaml.SafeLoader):
    """SafeLoader subclass used for workflow files (no custom tags, nothing executable)."""


@dataclass
class ParsedYaml:
    """The data of a YAML document, the line of each path in it, and the problems found."""

    data: Any = None
    lines: dict[FieldPath, int] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)

    def line_of(self, path: FieldPath) -> int | None:
        """The line of ``path`` or of its nearest ancestor that has one."""
        for end in range(len(path), -1, -1):
            line = self.lines.get(tuple(path[:end]))
            if line is not None:
                return line
        return None


def format_path(path: FieldPath) -> str:
    """``('modules', 'Finance', 'agents', 2, 'model')`` -> ``modules.Finance.agents[2].model``."""
    text = ""
    for part in path:
        if isinstance(part, int) and not isinstance(part, bool):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text or "(top level)"


def parse_yaml(text: str) -> ParsedYaml:
    """Parse one YAML document; syntax errors become problems located as ``line N, column M``."""
    result = ParsedYaml()
    loader = WorkflowYamlLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return result
        _walk(node, (), result, seen=set())
        result.data = loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        result.problems.append(_syntax_problem(exc))
    except yaml.YAMLError as exc:
        result.problems.append(Problem("(file)", f"cannot read YAML: {exc}"))
    finally:
        loader.dispose()
    return result


def _syntax_problem(exc: yaml.MarkedYAMLError) -> Problem:
    mark = exc.problem_mark or exc.context_mark
    reason = exc.problem or exc.context or "invalid YAML"
    if exc.problem and exc.context:
        where = f" on line {exc.context_mark.line + 1}" if exc.context_mark is not None else ""
        reason += f" ({exc.context}{where})"
    if mark is None:
        return Problem("(file)", f"invalid YAML: {reason}")
    line = mark.line + 1
    return Problem(f"line {line}, column {mark.column + 1}", reason, line)


def _walk(node: Node, path: FieldPath, result: ParsedYaml, seen: set[int]) -> None:
    # Aliases reuse nodes: visit each node once (also keeps "billion laughs" documents cheap).
    if id(node) in seen:
        return
    seen.add(id(node))
    result.lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, MappingNode):
        first_line: dict[str, int] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = key_node.value
            line = key_node.start_mark.line + 1
            if key in first_line:
                result.problems.append(
                    Problem(
                        format_path((*path, key)),
                        f"duplicate key {key!r} (first defined on line {first_line[key]}); "
                        "YAML would silently keep only the last one",
                        line,
                    )
                )
                continue
            first_line[key] = line
            result.lines[(*path, key)] = line
            _walk(value_node, (*path, key), result, seen)
    elif isinstance(node, SequenceNode):
        for index, item in enumerate(node.value):
            _walk(item, (*path, index), result, seen)
