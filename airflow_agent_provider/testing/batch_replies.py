"""
The answer to one request inside a batch: the real-time reply rules without the HTTP around them.

A batch request gets exactly the reply (text, tool calls, structured output, usage) the same body
would get from ``POST /v1/chat/completions`` or ``POST /v1/messages``, including ``[[fail:CODE]]``
markers (counted like real-time ``xN`` markers). What does not apply to a batch is left out on
purpose: ``[[latency:]]`` markers and ``latency`` (a batch's timing is its ``BatchConfig``), the
random ``fail_rate`` draws (they model a flaky connection, which a queued request does not have),
and rate-limit headers (batch requests have no per-request response headers).
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any

from airflow_agent_provider.testing.scripting import decide_reply, parse_script
from airflow_agent_provider.testing.wire import (
    Api,
    anthropic_body,
    anthropic_conversation,
    error_body,
    new_id,
    openai_body,
    openai_conversation,
)

if TYPE_CHECKING:
    from airflow_agent_provider.testing.batch_state import Answer, Answerer
    from airflow_agent_provider.testing.server_state import ServerState


def scripted_answer(state: ServerState, api: Api, body: dict[str, Any]) -> Answer:
    """``(200, completion body)`` or ``(code, error envelope)`` for one request body."""
    try:
        conv = openai_conversation(body) if api == "openai" else anthropic_conversation(body)
    except (ValueError, TypeError, AttributeError) as exc:
        return 400, error_body(api, 400, new_id("req_"), f"Could not parse request body: {exc}")
    conv.answer_tool_names = tuple(state.config.answer_tools)
    script = parse_script(conv.script_source())
    code = state.scripted_failure(script.fail, conv.first_user_text)
    if code is not None:
        return code, error_body(api, code, new_id("req_"))
    reply = decide_reply(conv, script)
    return 200, openai_body(conv, reply) if api == "openai" else anthropic_body(conv, reply)


def answerer(state: ServerState) -> Answerer:
    """:func:`scripted_answer` bound to the server's state, as :class:`BatchStore` wants it."""
    return partial(scripted_answer, state)
