"""
Safe YAML reading that keeps line numbers and refuses duplicate keys.

``yaml.safe_load`` silently keeps the last of two equal keys, so a second ``prompt:`` pasted into an
agent would quietly replace the first. Here the document is composed into nodes first (SafeLoader
only, no arbitrary objects), walked once to record the line of every key and list item and to find
duplicate keys, and only then constructed into plain Python data.

Composing is bounded. Aliases let a few hundred bytes stand for millions of nodes ("billion laughs":
each level repeats the previous one nine times), and everything downstream (validation, the DAG,
its serialization) would pay for the expanded size. So while composing, every node counts once and
an alias counts as the whole size of what it points to, in nodes and in scalar characters; a
document past :data:`MAX_YAML_NODES`, :data:`MAX_YAML_SCALAR_CHARS` or :data:`MAX_YAML_DEPTH`
levels of nesting stops there with one problem, before anything is expanded. An alias to a node that
contains it (a recursive structure) is refused too.

Two paths, the same answers. A DAG parse reads every workflow file, so the common document (no
anchors or aliases, within the bounds, no syntax error) takes the **fast path**: libyaml composes the
node tree in C (``yaml.CSafeLoader``: SafeLoader's resolver and constructor over libyaml, which
refuses absurd block and flow nesting itself), one Python walk then counts the nodes and characters,
checks the depth, records the lines and finds duplicate keys, and SafeLoader's rules construct the
data. A document that shares a node (an alias), crosses a bound, or fails anywhere on the way goes
to the **careful path** instead, which composes from libyaml's events in Python and stops *while*
composing, with the position and the alias named in its message. Both are about three times apart
on a 500-agent file, and the careful one is what the error messages and the tests describe.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.events import AliasEvent, Event, StreamEndEvent
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.parser import Parser
from yaml.reader import Reader
from yaml.resolver import Resolver
from yaml.scanner import Scanner

from airflow_agent_provider.definitions.errors import Problem

#: libyaml's event parser (the careful path) and SafeLoader's rules over libyaml's composer (the
#: fast path), when PyYAML was built with libyaml; Any: the C classes' stubs do not say so.
_CEventParser: Any
try:
    from yaml._yaml import CParser as _CEventParser
except ImportError:  # pragma: no cover - depends on the PyYAML build
    _CEventParser = None
_CSafeLoader: Any = getattr(yaml, "CSafeLoader", None)

FieldPath = tuple[str | int, ...]

#: Most nodes (keys, values, list items) a workflow document may expand to, aliases expanded.
#: A 500-agent workflow is about 10,000.
MAX_YAML_NODES = 100_000
#: Most characters all scalars of a document may add up to, aliases expanded (twice the 1 MiB file cap).
MAX_YAML_SCALAR_CHARS = 2 * 1024 * 1024
#: Deepest nesting of mappings and lists (an inline JSON Schema is the deepest part of a workflow).
MAX_YAML_DEPTH = 64


def _duplicate_key(path: FieldPath, key: str, first: int, line: int) -> Problem:
    """The problem of a key given twice in one mapping (both YAML paths report it the same way)."""
    return Problem(
        format_path((*path, key)),
        f"duplicate key {key!r} (first defined on line {first}); YAML would silently keep only the last one",
        line,
    )


class _YamlBoundError(yaml.MarkedYAMLError):
    """
    The document is larger or deeper than the bounds above (raised while composing; private: it is
    turned into a problem of the file and never leaves this module).
    """


class _PyEventParser(Reader, Scanner, Parser):
    """PyYAML's pure-Python event parser (used when libyaml is missing)."""

    def __init__(self, stream: str) -> None:
        Reader.__init__(self, stream)
        Scanner.__init__(self)
        Parser.__init__(self)


class WorkflowYamlLoader(Composer, SafeConstructor, Resolver):
    """
    SafeLoader's composer, constructor and resolver over a fast event parser, with bounds.

    No custom tags, nothing executable: the same rules as ``yaml.SafeLoader``.
    """

    def __init__(self, stream: str) -> None:
        self._events = _CEventParser(stream) if _CEventParser is not None else _PyEventParser(stream)
        self._buffer: list[Event] | None = None
        self._position = 0
        Composer.__init__(self)
        SafeConstructor.__init__(self)
        Resolver.__init__(self)
        self._nodes = 0  # expanded nodes so far
        self._chars = 0  # expanded scalar characters so far
        self._depth = 0
        self._sizes: dict[int, tuple[int, int]] = {}  # id(node) -> (nodes, chars) once fully composed

    # The composer asks for events one by one (about four calls per node); answering from a list read
    # in one go keeps that loop in Python cheap. The list is as long as the file, which is capped.
    def _event_list(self) -> list[Event]:
        if self._buffer is None:
            events: list[Event] = []
            while True:
                event = self._events.get_event()
                if event is None:
                    break
                events.append(event)
                if isinstance(event, StreamEndEvent):
                    break
            self._buffer = events
        return self._buffer

    def check_event(self, *choices: type[Event]) -> bool:
        events = self._event_list()
        if self._position >= len(events):
            return False
        return not choices or isinstance(events[self._position], choices)

    def peek_event(self) -> Event | None:
        events = self._event_list()
        return events[self._position] if self._position < len(events) else None

    def get_event(self) -> Event | None:
        event = self.peek_event()
        self._position += 1
        return event

    def dispose(self) -> None:
        self._buffer = None
        dispose = getattr(self._events, "dispose", None)
        if dispose is not None:
            dispose()

    def compose_node(self, parent: Node | None, index: Any) -> Any:  # a Node: never None while events remain
        event: Any = self.peek_event()  # the composer only asks while there are events
        mark: Any = event.start_mark  # PyYAML's or libyaml's Mark (the stubs know only the first)
        if isinstance(event, AliasEvent):
            node = self.anchors.get(event.anchor)
            if node is not None:
                size = self._sizes.get(id(node))
                if size is None:
                    raise _YamlBoundError(
                        None,
                        None,
                        f"alias *{event.anchor} refers to a node that contains it (a recursive structure)",
                        mark,
                    )
                self._count(size[0], size[1], mark, f"alias *{event.anchor}")
            return super().compose_node(parent, index)  # undefined aliases: PyYAML's own error
        self._depth += 1
        if self._depth > MAX_YAML_DEPTH:
            raise _YamlBoundError(
                None,
                None,
                f"nesting deeper than {MAX_YAML_DEPTH} levels of mappings and lists",
                mark,
            )
        nodes_before, chars_before = self._nodes, self._chars
        node = super().compose_node(parent, index)
        chars = len(node.value) if isinstance(node, ScalarNode) else 0
        self._count(1, chars, mark, "this value")
        self._sizes[id(node)] = (self._nodes - nodes_before, self._chars - chars_before)
        self._depth -= 1
        return node

    def _count(self, nodes: int, chars: int, mark: Any, what: str) -> None:
        self._nodes += nodes
        self._chars += chars
        if self._nodes > MAX_YAML_NODES:
            raise _YamlBoundError(
                None,
                None,
                f"the document expands to more than {MAX_YAML_NODES:,} YAML nodes at {what} (aliases count as "
                "the size of what they point to); split the workflow or use fewer aliases",
                mark,
            )
        if self._chars > MAX_YAML_SCALAR_CHARS:
            raise _YamlBoundError(
                None,
                None,
                f"the document's values expand to more than {MAX_YAML_SCALAR_CHARS:,} characters at {what} "
                "(aliases count as the size of what they point to)",
                mark,
            )


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
    fast = _parse_plain(text)
    if fast is not None:
        return fast
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
        result.problems.append(Problem("(file)", f"cannot read YAML: {_bounded(str(exc))}"))
    except (ValueError, OverflowError, TypeError) as exc:  # e.g. an integer of more than 4300 digits
        result.data = None
        result.problems.append(Problem("(file)", f"cannot read a YAML value: {_bounded(str(exc))}"))
    finally:
        loader.dispose()
    return result


def _bounded(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _syntax_problem(exc: yaml.MarkedYAMLError) -> Problem:
    mark = exc.problem_mark or exc.context_mark
    reason = _bounded(exc.problem or exc.context or "invalid YAML")
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
                result.problems.append(_duplicate_key(path, key, first_line[key], line))
                continue
            first_line[key] = line
            result.lines[(*path, key)] = line
            _walk(value_node, (*path, key), result, seen)
    elif isinstance(node, SequenceNode):
        for index, item in enumerate(node.value):
            _walk(item, (*path, index), result, seen)


class _NotPlain(Exception):
    """The document needs the careful path: a shared node (alias) or a bound crossed."""


@dataclass
class _Tally:
    nodes: int = 0
    chars: int = 0
    seen: set[int] = field(default_factory=set)


def _parse_plain(text: str) -> ParsedYaml | None:
    """
    The fast path (module docstring): the parsed document, or None for the careful path.

    None whenever anything is unusual, so that every problem is reported by the careful path,
    word for word as before; duplicate keys are the one problem found here (by the same walk).
    """
    if _CSafeLoader is None:  # pragma: no cover - depends on the PyYAML build
        return None
    loader = _CSafeLoader(text)
    try:
        node = loader.get_single_node()
        result = ParsedYaml()
        if node is None:
            return result
        _walk_plain(node, (), result, _Tally(), 1)
        result.data = loader.construct_document(node)
    except Exception:  # an alias, a bound, a syntax error or a bad value: the careful path reports it
        return None
    finally:
        loader.dispose()
    return result


def _walk_plain(node: Node, path: FieldPath, result: ParsedYaml | None, tally: _Tally, depth: int) -> None:
    """
    ``_walk`` plus the bounds, for a tree composed without them; raises ``_NotPlain`` when unusual.

    ``result`` None: only count (the keys, and the values ``_walk`` skips: duplicate and merge keys).
    """
    if depth > MAX_YAML_DEPTH or id(node) in tally.seen:
        raise _NotPlain
    tally.seen.add(id(node))
    tally.nodes += 1
    if tally.nodes > MAX_YAML_NODES:
        raise _NotPlain
    if isinstance(node, ScalarNode):
        tally.chars += len(node.value)
        if tally.chars > MAX_YAML_SCALAR_CHARS:
            raise _NotPlain
        if result is not None:
            result.lines.setdefault(path, node.start_mark.line + 1)
        return
    if result is not None:
        result.lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, SequenceNode):
        for index, item in enumerate(node.value):
            _walk_plain(item, (*path, index), result, tally, depth + 1)
        return
    first_line: dict[str, int] = {}
    for key_node, value_node in node.value:
        _walk_plain(key_node, path, None, tally, depth + 1)
        if (
            result is None
            or not isinstance(key_node, ScalarNode)
            or key_node.tag == "tag:yaml.org,2002:merge"
        ):
            _walk_plain(value_node, path, None, tally, depth + 1)
            continue
        key = key_node.value
        line = key_node.start_mark.line + 1
        if key in first_line:
            result.problems.append(_duplicate_key(path, key, first_line[key], line))
            _walk_plain(value_node, path, None, tally, depth + 1)
            continue
        first_line[key] = line
        result.lines[(*path, key)] = line
        _walk_plain(value_node, (*path, key), result, tally, depth + 1)
