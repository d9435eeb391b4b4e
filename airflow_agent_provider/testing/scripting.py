"""
The marker language and reply rules of the local LLM server, independent of any wire format.

Both API paths (OpenAI Chat Completions, Anthropic Messages) translate their request into a
:class:`Conversation`, ask :func:`decide_reply` what to answer, and translate the :class:`Reply`
back. Keeping the rules here means the two APIs behave identically for the same conversation, which
is what tests comparing providers rely on. See :mod:`airflow_agent_provider.testing.llm_server` for
the rules in prose.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

from airflow_agent_provider.testing.schema_instance import minimal_instance

#: Status codes a ``[[fail:CODE]]`` marker or ``x-llm-fail`` header may ask for.
FAIL_CODES: frozenset[int] = frozenset({400, 401, 403, 404, 408, 409, 413, 422, 429, 500, 502, 503, 504, 529})

ECHO_CHARS = 200
RESULT_EXCERPT_CHARS = 100

_MARKER_START = re.compile(r"\[\[\s*(reply|tool-loop|tool|json|fail|latency|usage)\s*:", re.IGNORECASE)
_TOOL_NAME = re.compile(r"\s*([A-Za-z0-9_.\-]+)")
_FAIL_BODY = re.compile(r"^\s*(\d{3})(?:\s*x\s*(\d+))?\s*$", re.IGNORECASE)
_USAGE_PART = re.compile(r"(in|out|cached)\s*=\s*(\d+)", re.IGNORECASE)
_DECODER = json.JSONDecoder()


@dataclass
class FailSpec:
    """A scripted failure: ``times`` None means every request, else only the first ``times``."""

    code: int
    times: int | None
    marker: str


@dataclass
class Script:
    """What the markers of one request ask for."""

    reply: str | None = None
    json_text: str | None = None
    tools: list[tuple[str, dict[str, Any] | None]] = field(default_factory=list)
    tool_loop: str | None = None
    fail: FailSpec | None = None
    latency: float | None = None
    usage: dict[str, int] = field(default_factory=dict)

    @property
    def scripts_content(self) -> bool:
        """True when a marker decides the reply content, which disables the automatic tool calls."""
        return bool(self.reply is not None or self.json_text is not None or self.tools or self.tool_loop)


@dataclass
class Turn:
    """One message of a conversation; ``role`` is ``user``, ``assistant`` or ``tool``."""

    role: str
    text: str = ""
    tool_name: str | None = None


@dataclass
class Conversation:
    """A request reduced to what the reply rules need, whatever API it came through."""

    model: str
    system: str = ""
    turns: list[Turn] = field(default_factory=list)
    #: Offered tools: name -> JSON schema of the arguments.
    tools: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: ``auto``, ``none`` or ``required`` (OpenAI ``required`` / Anthropic ``any``).
    tool_choice: str = "auto"
    #: Name of a tool the request forces (Anthropic ``{"type": "tool"}``, OpenAI ``{"type": "function"}``).
    forced_tool: str | None = None
    #: JSON schema of a structured-output reply, or ``{}`` for plain JSON mode.
    output_schema: dict[str, Any] | None = None
    #: Characters of everything sent (messages, system, tool schemas), for the token estimate.
    input_chars: int = 0
    #: Names of tools that carry the final answer (structured output through a tool, as the
    #: Anthropic adapter does with ``tool_choice="any"``): never called in the automatic tool round,
    #: called instead of a text answer once the other tools have results.
    answer_tool_names: tuple[str, ...] = ("agent_output",)

    @property
    def answer_tool(self) -> str | None:
        for name in self.tools:
            if name in self.answer_tool_names:
                return name
        return None

    @property
    def work_tools(self) -> list[str]:
        """Offered tools that are not answer tools."""
        return [name for name in self.tools if name not in self.answer_tool_names]

    @property
    def last_user_text(self) -> str:
        for turn in reversed(self.turns):
            if turn.role == "user" and turn.text:
                return turn.text
        return ""

    @property
    def first_user_text(self) -> str:
        for turn in self.turns:
            if turn.role == "user" and turn.text:
                return turn.text
        return ""

    @property
    def has_tool_result(self) -> bool:
        return any(t.role == "tool" for t in self.turns)

    @property
    def last_is_tool_result(self) -> bool:
        return bool(self.turns) and self.turns[-1].role == "tool"

    def recent_tool_results(self) -> list[Turn]:
        """Tool results after the last user text: the ones the current reply should talk about."""
        results: list[Turn] = []
        for turn in reversed(self.turns):
            if turn.role == "user" and turn.text:
                break
            if turn.role == "tool":
                results.append(turn)
        return list(reversed(results))

    def script_source(self) -> str:
        """Text scanned for markers: the last user message first, so it wins over the system prompt."""
        return self.last_user_text + "\n" + self.system


@dataclass
class Reply:
    """What the server answers: text, or tool calls (name, arguments), plus token usage."""

    text: str | None = None
    tool_calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    input_tokens: int = 1
    output_tokens: int = 1
    cached_tokens: int = 0


def _marker_end(text: str, pos: int) -> int:
    end = text.find("]]", pos)
    return len(text) if end < 0 else end


def _iter_markers(text: str) -> list[tuple[str, str, int, int, Any]]:
    """
    Scan ``text`` for markers; return (kind, body, start, end, extra) tuples.

    JSON bodies are read with ``raw_decode`` so that ``]]`` inside the JSON (nested arrays) does
    not end the marker early; anything that is not valid JSON ends at the first ``]]``.
    """
    found: list[tuple[str, str, int, int, Any]] = []
    pos = 0
    while True:
        match = _MARKER_START.search(text, pos)
        if not match:
            return found
        kind = match.group(1).lower()
        body_start = match.end()
        extra: Any = None
        if kind in ("tool", "tool-loop"):
            name_match = _TOOL_NAME.match(text, body_start)
            if not name_match:
                pos = body_start
                continue
            extra_pos = name_match.end()
            args: dict[str, Any] | None = None
            rest = len(text[extra_pos:]) - len(text[extra_pos:].lstrip())
            if kind == "tool" and text[extra_pos + rest : extra_pos + rest + 1] == "{":
                try:
                    value, json_end = _DECODER.raw_decode(text, extra_pos + rest)
                    if isinstance(value, dict):
                        args, extra_pos = value, json_end
                except ValueError:
                    pass
            end = _marker_end(text, extra_pos)
            extra = (name_match.group(1), args)
            body = text[body_start:end]
        elif kind == "json":
            start = body_start + len(text[body_start:]) - len(text[body_start:].lstrip())
            end = -1
            try:
                _value, json_end = _DECODER.raw_decode(text, start)
                if text[json_end:].lstrip().startswith("]]"):
                    end = text.index("]]", json_end)
                    body = text[start:json_end]
            except ValueError:
                pass
            if end < 0:
                end = _marker_end(text, body_start)
                body = text[start:end].strip()
        else:
            end = _marker_end(text, body_start)
            body = text[body_start:end]
        stop = min(len(text), end + 2)
        found.append((kind, body, match.start(), stop, extra))
        pos = stop


def parse_script(text: str) -> Script:
    """Read every marker of ``text``; for single-valued markers the first occurrence wins."""
    script = Script()
    for kind, body, start, end, extra in _iter_markers(text):
        if kind == "reply" and script.reply is None:
            script.reply = body.strip()
        elif kind == "json" and script.json_text is None:
            script.json_text = body
        elif kind == "tool":
            script.tools.append(extra)
        elif kind == "tool-loop" and script.tool_loop is None:
            script.tool_loop = extra[0]
        elif kind == "fail" and script.fail is None:
            script.fail = parse_fail(body, marker=text[start:end])
        elif kind == "latency" and script.latency is None:
            with contextlib.suppress(ValueError):
                script.latency = max(0.0, float(body.strip()))
        elif kind == "usage" and not script.usage:
            script.usage = {k.lower(): int(v) for k, v in _USAGE_PART.findall(body)}
    return script


def parse_fail(body: str, *, marker: str) -> FailSpec | None:
    """Parse ``CODE`` or ``CODE xN`` (marker body or ``x-llm-fail`` header value)."""
    match = _FAIL_BODY.match(body)
    if not match or int(match.group(1)) not in FAIL_CODES:
        return None
    times = int(match.group(2)) if match.group(2) else None
    return FailSpec(code=int(match.group(1)), times=times, marker=marker.strip())


def strip_markers(text: str) -> str:
    """Remove markers, so an echoed upstream reply does not re-trigger them in a downstream agent."""
    pieces: list[str] = []
    pos = 0
    for _kind, _body, start, end, _extra in _iter_markers(text):
        pieces.append(text[pos:start])
        pos = end
    pieces.append(text[pos:])
    return " ".join("".join(pieces).split())


def estimate_tokens(chars: int) -> int:
    """The server's tokenizer: one token per four characters, at least one."""
    return max(1, math.ceil(chars / 4))


def decide_reply(conv: Conversation, script: Script) -> Reply:
    """Apply the reply rules (documented in the llm_server module) to one conversation."""
    reply = _decide_content(conv, script)
    if reply.tool_calls:
        out_chars = sum(len(name) + len(json.dumps(args)) for name, args in reply.tool_calls)
    else:
        out_chars = len(reply.text or "")
    reply.input_tokens = script.usage.get("in", estimate_tokens(conv.input_chars))
    reply.output_tokens = script.usage.get("out", estimate_tokens(out_chars))
    reply.cached_tokens = min(script.usage.get("cached", 0), reply.input_tokens)
    return reply


def _args_for(conv: Conversation, name: str) -> dict[str, Any]:
    value = minimal_instance(conv.tools.get(name) or {"type": "object"})
    return value if isinstance(value, dict) else {}


def _decide_content(conv: Conversation, script: Script) -> Reply:
    tools_allowed = bool(conv.tools) and conv.tool_choice != "none"
    if conv.forced_tool:
        return _forced_tool_reply(conv, script, conv.forced_tool)
    if script.tool_loop and conv.tool_choice != "none":
        return Reply(tool_calls=[(script.tool_loop, _args_for(conv, script.tool_loop))])
    if script.tools and tools_allowed and not conv.last_is_tool_result:
        return Reply(tool_calls=[(n, a if a is not None else _args_for(conv, n)) for n, a in script.tools])
    work_tools = conv.work_tools
    if not script.scripts_content and tools_allowed and work_tools and not conv.has_tool_result:
        return Reply(tool_calls=[(name, _args_for(conv, name)) for name in work_tools])
    answer = conv.answer_tool
    if answer and tools_allowed and (conv.tool_choice == "required" or script.reply is None):
        return _forced_tool_reply(conv, script, answer)
    text = _text_reply(conv, script)
    if conv.tool_choice == "required" and work_tools:
        return Reply(tool_calls=[(name, _args_for(conv, name)) for name in work_tools])
    return Reply(text=text)


def _forced_tool_reply(conv: Conversation, script: Script, name: str) -> Reply:
    """A forced or answer tool carries structured output (Anthropic); ``[[json:]]`` may override its input."""
    if script.json_text is not None:
        try:
            value = json.loads(script.json_text)
        except ValueError:
            value = None
        if not isinstance(value, dict):
            # Cannot be a tool input: answer the raw text, as a misbehaving model would.
            return Reply(text=script.json_text)
        return Reply(tool_calls=[(name, value)])
    for marker_name, args in script.tools:
        if marker_name == name and args is not None:
            return Reply(tool_calls=[(name, args)])
    return Reply(tool_calls=[(name, _args_for(conv, name))])


def _text_reply(conv: Conversation, script: Script) -> str:
    if script.reply is not None:
        return script.reply
    if script.json_text is not None:
        return script.json_text
    if conv.output_schema is not None:
        if conv.output_schema:
            return json.dumps(minimal_instance(conv.output_schema), separators=(",", ":"))
        return json.dumps({"text": strip_markers(conv.last_user_text)[:ECHO_CHARS]})
    results = conv.recent_tool_results() if conv.has_tool_result else []
    if results:
        mentioned = "; ".join(
            f"{r.tool_name or 'tool'} -> {' '.join(strip_markers(r.text).split())[:RESULT_EXCERPT_CHARS]}"
            for r in results
        )
        return f"[{conv.model}] Tool results: {mentioned}"
    return f"[{conv.model}] {strip_markers(conv.last_user_text)[:ECHO_CHARS]}"
