"""The agent loop as a typed object: persisted form, versions, steps, drivers (no Airflow, no network)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from dataclasses import dataclass

import pytest

from airflow_agent_provider.agent_loop import (
    LOOP_VERSION,
    AgentLoop,
    AgentResult,
    LoopExpressionError,
    LoopSpec,
    OutputValidationError,
)
from airflow_agent_provider.agent_loop.drive import run_async, run_sync
from airflow_agent_provider.cost.pricing import CallCost
from airflow_agent_provider.guard.pipeline import GuardedResult, PendingCharge
from airflow_agent_provider.llm.types import LLMResponse, ToolCall, Usage
from airflow_agent_provider.resilience.fallback import FallbackTarget


def _guarded(
    text: str = "done",
    calls: list[ToolCall] | None = None,
    usd: float | None = 0.001,
    target: FallbackTarget | None = None,
) -> GuardedResult:
    response = LLMResponse(
        text=text,
        tool_calls=list(calls or []),
        usage=Usage(10, 5, 2),
        model="m",
        provider="openai",
        latency_s=0.25,
        request_id=f"req-{text}",
        finish_reason="stop",
    )
    cost = CallCost(
        usd=usd,
        source="override" if usd is not None else "unknown",
        warning=None if usd is not None else "no price known",
    )
    return GuardedResult(
        response=response, target=target or FallbackTarget("openai", "m"), cost=cost, wait_s=0.5, requests=1
    )


def _loop() -> AgentLoop:
    return AgentLoop.start(provider="openai", model="m", prompt="hello", fingerprint="fp")


@dataclass
class _ToolOutcome:
    content: str
    ok: bool


class Host:
    """A LoopHost over plain data: records what was persisted and which tools ran."""

    def __init__(self, spec: LoopSpec, tools: bool = False) -> None:
        import logging

        self.spec, self.tool_specs, self.logger = spec, [], logging.getLogger("test")
        self.round_log_level = logging.INFO
        self.saved: list[dict] = []
        self.tools_run: list[str] = []
        self.run_tool = self._run if tools else None

    def _run(self, call: ToolCall) -> _ToolOutcome:
        self.tools_run.append(call.name)
        return _ToolOutcome(f"result of {call.name}", True)

    def names(self):
        return {"results": {}, "params": {"target": 2}, "item": None}

    def render_prompt(self, last, iteration):
        return f"again (previous: {last['text']}, iteration {iteration})"

    def save(self, loop):
        self.saved.append(json.loads(json.dumps(loop.to_dict())))


def test_round_trip_is_exact_and_json_safe():
    loop = _loop()
    loop.record(_guarded("a", [ToolCall("c1", "add", {"a": 1})]))
    loop.next_step(LoopSpec(), lambda call: _ToolOutcome("3", True))
    loop.hold(PendingCharge("res-1", _guarded("b"), at=1_700_000_000.0, amount_usd=0.01))
    data = json.loads(json.dumps(loop.to_dict()))
    assert data["version"] == LOOP_VERSION
    assert "revision" not in data
    again = AgentLoop.from_dict(data)
    assert again == loop
    assert again.to_dict() == loop.to_dict()
    assert again.pending is not None
    assert again.pending.reservation_id == "res-1"
    assert again.pending.result.response.text == "b"


def test_version_1_states_are_read_and_other_versions_start_afresh():
    v1 = {
        "version": 1,
        "fingerprint": "fp",
        "provider": "openai",
        "model": "m",
        "messages": [{"role": "user", "content": "hello"}, {"role": "assistant", "content": "hi"}],
        "rounds": 1,
        "usage": {"input_tokens": 3, "output_tokens": 1, "cached_input_tokens": 0},
        "cost_usd": 0.5,
        "cost_known": True,
        "tool_calls": [],
        "latency_s": 0.1,
        "request_ids": ["r"],
        "finish_reason": "stop",
        "stopped": None,
        "output": "hi",
    }
    loop, why = AgentLoop.resume(v1, fingerprint="fp")
    assert why == "resumed"
    assert loop.rounds == 1
    assert loop.usage == Usage(3, 1, 0)
    assert loop.has_output
    assert loop.iteration == 1
    assert loop.pending is None
    assert loop.requests == 0
    assert loop.result(LoopSpec()).requests == 1  # v1 did not count requests: one per round
    assert AgentLoop.resume({**v1, "version": 99}, fingerprint="fp")[0] is None
    assert "version 99" in AgentLoop.resume({**v1, "version": 99}, fingerprint="fp")[1]
    assert AgentLoop.resume(v1, fingerprint="other")[0] is None
    assert AgentLoop.resume("garbage", fingerprint="fp")[0] is None


def test_record_accounts_usage_cost_fallbacks_and_clears_pending():
    loop = _loop()
    loop.hold(PendingCharge("r", _guarded(), at=0.0))
    loop.record(_guarded("one"))
    assert loop.pending is None
    assert loop.rounds == 1
    assert loop.cost_usd == pytest.approx(0.001)
    loop.record(_guarded("two", target=FallbackTarget("anthropic", "claude")))
    assert loop.usage == Usage(20, 10, 4)
    assert loop.requests == 2
    assert loop.wait_s == 1.0
    assert loop.fallbacks_used == [{"round": 2, "target": "anthropic/claude", "attempts": []}]
    loop.record(_guarded("three", usd=None))
    assert loop.cost_usd is None
    assert loop.cost_known is False
    loop.record(_guarded("four"))  # once unknown, the total stays unknown
    assert loop.cost_usd is None
    assert loop.request_ids == ["req-one", "req-two", "req-three", "req-four"]


def test_next_step_runs_tools_and_stops_at_max_rounds():
    spec = LoopSpec(max_rounds=2)
    loop = _loop()
    assert loop.next_step(spec) == "call"
    loop.record(_guarded("", [ToolCall("c1", "add", {"a": 1}), ToolCall("c2", "mul", {})]))
    ran: list[str] = []
    assert loop.next_step(spec, lambda c: ran.append(c.name) or _ToolOutcome("ok", True)) == "call"
    assert ran == ["add", "mul"]
    assert [m.role for m in loop.messages[-2:]] == ["tool", "tool"]
    assert loop.messages[-1].tool_call_id == "c2"
    assert loop.tool_calls[0] == {
        "name": "add",
        "arguments": {"a": 1},
        "ok": True,
    }
    loop.record(_guarded("", [ToolCall("c3", "add", {})]))
    assert loop.next_step(spec, lambda c: _ToolOutcome("x", True)) == "answer"
    assert loop.stopped == "max_rounds"


def test_a_tool_call_without_tools_gets_the_unknown_tool_answer():
    loop = _loop()
    loop.record(_guarded("", [ToolCall("c1", "shell", {"cmd": "id"})]))
    assert loop.next_step(LoopSpec()) == "call"
    assert loop.messages[-1].content.startswith("ERROR: unknown tool 'shell'")
    assert loop.tool_calls[0]["ok"] is False


def test_complete_answer_validates_structure_and_drops_an_invalid_answer():
    spec = LoopSpec(output_schema={"type": "object", "required": ["n"]}, label="M.a")
    loop = _loop()
    loop.record(_guarded("not json"))
    with pytest.raises(OutputValidationError, match="M.a"):
        loop.complete_answer(spec)
    assert loop.messages[-1].role == "user"
    assert loop.rounds == 1
    loop.record(_guarded('{"n": 1}'))
    assert loop.complete_answer(spec) is False
    assert loop.result(spec).output == {"n": 1}


def test_repeat_until_iterates_with_the_rendered_prompt_and_stops_at_max_iterations():
    spec = LoopSpec(repeat_until="iteration >= params.target", max_iterations=3)
    host = Host(spec)
    loop = _loop()
    loop.record(_guarded("first"))
    assert loop.complete_answer(spec, names=host.names(), render_prompt=host.render_prompt) is True
    assert loop.iteration == 2
    assert loop.iteration_start_round == 1
    assert loop.messages[-1].content == (
        "Iteration 2 of at most 3: revise your previous answer.\n\nagain (previous: first, iteration 2)"
    )
    loop.record(_guarded("second"))
    assert loop.complete_answer(spec, names=host.names(), render_prompt=host.render_prompt) is False
    capped = LoopSpec(repeat_until="last.text == 'never'", max_iterations=1)
    assert loop.complete_answer(capped, names=host.names()) is False
    assert loop.stopped == "max_iterations"
    with pytest.raises(LoopExpressionError, match="repeat_until"):
        loop.complete_answer(LoopSpec(repeat_until="last.output.missing > 1"), names=host.names())


def test_result_record_shape_and_round_trip():
    loop = _loop()
    loop.record(_guarded("answer"))
    loop.complete_answer(LoopSpec())
    result = loop.result(LoopSpec(task_id="M.a", agent_meta={"module": "M"}), item="x", map_index=0)
    data = result.to_dict()
    assert list(data)[:5] == ["status", "text", "output", "provider", "model"]
    assert data["text"] == data["output"] == "answer"
    assert data["iterations"] == 1
    assert data["map_index"] == 0
    assert data["cost_usd"] == 0.001
    assert data["agent"] == {"module": "M"}
    assert data["task_id"] == "M.a"
    assert AgentResult.from_dict(json.loads(json.dumps(data))).to_dict() == data


def test_sync_and_async_drivers_take_the_same_steps():
    spec = LoopSpec(max_rounds=4)
    script = [_guarded("", [ToolCall("c1", "add", {})]), _guarded("final")]

    def call(request, on_paid):
        guarded = script[len([m for m in request.messages if m.role == "assistant"])]
        on_paid(PendingCharge("r", guarded, at=0.0))
        return guarded

    async def acall(request, on_paid):
        return call(request, on_paid)

    sync_host, async_host = Host(spec, tools=True), Host(spec, tools=True)
    done = run_sync(_loop(), sync_host, call, settle=lambda p: p.result)
    adone = asyncio.run(run_async(_loop(), async_host, acall, settle=None))
    assert done.to_dict() == adone.to_dict()
    assert done.rounds == 2
    assert done.text == "final"
    assert sync_host.tools_run == async_host.tools_run == ["add"]
    # persisted: the paid response before each settlement, then each recorded call
    assert [bool(s["pending"]) for s in sync_host.saved] == [True, False, False, True, False, False]
    assert sync_host.saved == async_host.saved


def test_a_held_response_is_settled_not_called_again():
    spec = LoopSpec()
    loop = _loop()
    loop.hold(PendingCharge("res-7", _guarded("paid earlier"), at=0.0))
    settled: list[str] = []

    def settle(pending):
        settled.append(pending.reservation_id)
        return pending.result

    def call(request, on_paid):
        raise AssertionError("the model must not be called again for a paid response")

    run_sync(loop, Host(spec), call, settle)
    assert settled == ["res-7"]
    assert loop.text == "paid earlier"
    assert loop.rounds == 1


def test_the_loop_modules_do_not_import_airflow_or_heavy_packages():
    code = (
        "import sys, airflow_agent_provider.agent_loop, airflow_agent_provider.agent_loop.drive, "
        "airflow_agent_provider.agent_loop.config; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('airflow', 'openai', 'anthropic', 'genai_prices', 'jsonschema', 'redis')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_auto_execution_never_picks_the_triggerer_by_itself():
    """triggerer mode is opt-in: in Airflow 3.3 pools do not bound start_from_trigger tasks."""
    from airflow_agent_provider.agent_loop.config import resolve_execution

    assert resolve_execution("auto", deferrable=False, has_tools=False) == "worker"
    assert resolve_execution("auto", deferrable=True, has_tools=False) == "deferred"
    assert resolve_execution("auto", deferrable=True, has_tools=True) == "deferred"
    assert resolve_execution("triggerer", deferrable=False, has_tools=False) == "triggerer"
    with pytest.raises(ValueError, match="cannot run tools"):
        resolve_execution("triggerer", deferrable=False, has_tools=True)


def test_each_call_is_logged_at_the_hosts_level():
    """INFO on a worker; DEBUG in the triggerer, where every log line is a blocking write (drive docs)."""
    import logging

    from airflow_agent_provider.agent_loop.drive import record
    from airflow_agent_provider.operators.agent_runtime import WorkerHost
    from airflow_agent_provider.triggers.agent import _TriggerHost

    class Capture(logging.Handler):
        def __init__(self) -> None:
            super().__init__(logging.DEBUG)
            self.records: list[logging.LogRecord] = []

        def emit(self, record: logging.LogRecord) -> None:
            self.records.append(record)

    logger = logging.getLogger("test.round_level")
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    capture = Capture()
    logger.addHandler(capture)
    host = Host(LoopSpec())
    host.logger = logger
    for level in (logging.INFO, logging.DEBUG):
        host.round_log_level = level
        record(_loop(), host, _guarded("answer"))
    assert [(r.levelno, r.getMessage().split(":")[0]) for r in capture.records] == [
        (logging.INFO, "Round 1"),
        (logging.DEBUG, "Round 1"),
    ]
    assert WorkerHost.round_log_level == logging.INFO
    assert _TriggerHost.round_log_level == logging.DEBUG
