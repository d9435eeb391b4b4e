"""
The state of one agent's loop, what it needs to know about the agent, and the result it gives.

Version history of the persisted form (``AgentLoop.to_dict``):

* **1** — the untyped dict of the operator before the loop had a type. Read as it is: every field
  of version 2 has a default for what version 1 did not write.
* **2** — adds ``pending`` (a paid response whose settlement was not confirmed, see
  :class:`~airflow_agent_provider.guard.pipeline.PendingCharge`).

A stored loop of an unknown version, or one made for other inputs (another prompt, model, system
prompt, tools or schema: see :func:`fingerprint`), is not resumed: the agent starts afresh.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import TYPE_CHECKING, Any, Literal

from airflow_agent_provider.agent_loop.spec import (
    LoopSpec as LoopSpec,
    fingerprint as fingerprint,
    validate_output as validate_output,
)
from airflow_agent_provider.exceptions import (
    LoopExpressionError as LoopExpressionError,
    OutputValidationError as OutputValidationError,
)
from airflow_agent_provider.llm.types import LLMRequest, Message, ToolCall, ToolSpec, Usage
from airflow_agent_provider.results.agent import AgentResult

if TYPE_CHECKING:  # the guard engines load when a loop runs, not when a DAG file imports the operator
    from airflow_agent_provider.guard.pipeline import GuardedResult, PendingCharge

log = logging.getLogger(__name__)

LOOP_VERSION = 2
READABLE_VERSIONS = (1, 2)


@functools.lru_cache(maxsize=256)
def _repeat_until(text: str) -> Any:
    from airflow_agent_provider.definitions.expressions import compile_expression

    return compile_expression(text, frozenset({"last", "iteration", "params", "results", "item"}))


Step = Literal["call", "answer"]
ToolRunner = Callable[[ToolCall], Any]  # returns an object with ``content`` and ``ok`` (llm.tools.ToolResult)
Renderer = Callable[[dict[str, Any], int], str]


@dataclass
class AgentLoop:
    """
    The state of one agent's run: the conversation, what it cost, where it stands.

    Mutating methods bump :attr:`revision`, so a driver persists only when something changed.
    """

    provider: str
    model: str
    fingerprint: str = ""
    messages: list[Message] = field(default_factory=list)
    rounds: int = 0
    usage: Usage = field(default_factory=Usage)
    cost_usd: float | None = 0.0
    cost_known: bool = True
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    latency_s: float = 0.0
    wait_s: float = 0.0
    requests: int = 0
    request_ids: list[str] = field(default_factory=list)
    answered_by: str | None = None
    fallbacks_used: list[dict[str, Any]] = field(default_factory=list)
    finish_reason: str | None = None
    stopped: str | None = None
    iteration: int = 1
    iteration_start_round: int = 0
    #: The validated answer (parsed JSON under an ``output_schema``); ``has_output`` says it is set.
    output: Any = None
    has_output: bool = False
    #: A paid response whose settlement is not confirmed (settled before anything else on resume).
    pending: PendingCharge | None = None
    revision: int = field(default=0, compare=False)

    # -- building and persisting ----------------------------------------------------------------

    @classmethod
    def start(cls, *, provider: str, model: str, prompt: str, fingerprint: str = "") -> AgentLoop:
        return cls(
            provider=provider,
            model=model,
            fingerprint=fingerprint,
            messages=[Message(role="user", content=prompt)],
        )

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"version": LOOP_VERSION}
        for f in fields(self):
            if f.name in ("revision",):
                continue
            value = getattr(self, f.name)
            if f.name == "messages":
                value = [asdict(m) for m in value]
            elif f.name == "usage":
                value = asdict(value)
            elif f.name == "pending":
                value = None if value is None else value.to_dict()
            data[f.name] = value
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AgentLoop:
        """Read a persisted loop of any readable version; ``ValueError`` for anything else."""
        version = data.get("version") if isinstance(data, Mapping) else None
        if version not in READABLE_VERSIONS:
            raise ValueError(
                f"agent loop state of version {version!r} cannot be read (readable: {READABLE_VERSIONS})"
            )
        known = {f.name for f in fields(cls)} - {"revision"}
        values = {k: v for k, v in data.items() if k in known}
        values["messages"] = [Message.from_dict(m) for m in data.get("messages") or []]
        values["usage"] = Usage(**(data.get("usage") or {}))
        if data.get("pending"):
            from airflow_agent_provider.guard.pipeline import PendingCharge

            values["pending"] = PendingCharge.from_dict(data["pending"])
        else:
            values["pending"] = None
        if version == 1 and "output" in data:
            values["has_output"] = True
        for name in ("tool_calls", "request_ids", "fallbacks_used"):
            values[name] = list(values.get(name) or [])
        return cls(**values)

    @classmethod
    def resume(cls, data: Any, *, fingerprint: str) -> tuple[AgentLoop | None, str]:
        """A stored loop if it can be resumed for these inputs, else None; and why, for the log."""
        if data is None:
            return None, "nothing stored"
        try:
            loop = cls.from_dict(data)
        except (ValueError, TypeError, KeyError) as exc:
            return None, f"stored agent loop not readable ({exc})"
        if loop.fingerprint != fingerprint:
            return None, "stored agent loop is for a different prompt/model/tools"
        return loop, "resumed"

    def _changed(self) -> None:
        self.revision += 1

    # -- reading --------------------------------------------------------------------------------

    @property
    def text(self) -> str:
        """The last non-empty assistant text (the answer, or the last words before a stop)."""
        for message in reversed(self.messages):
            if message.role == "assistant" and message.content:
                return message.content
        return ""

    def request(self, spec: LoopSpec, tools: list[ToolSpec] | None = None) -> LLMRequest:
        """The next model call: the whole conversation so far."""
        return LLMRequest(
            provider=self.provider,
            model=self.model,
            messages=list(self.messages),
            system=spec.system or None,
            tools=list(tools or []),
            temperature=spec.temperature,
            max_tokens=spec.max_tokens,
            output_schema=spec.output_schema,
            timeout=spec.timeout,
        )

    # -- steps ----------------------------------------------------------------------------------

    def next_step(self, spec: LoopSpec, run_tool: ToolRunner | None = None, *, logger: Any = log) -> Step:
        """
        ``call`` the model next (after running the tools it asked for), or it gave an ``answer``.

        ``run_tool`` is the agent's tool runner (None: no tools; a requested tool gets the same
        "unknown tool" answer an empty allow-list gives).
        """
        last = self.messages[-1] if self.messages else None
        if last is None or last.role != "assistant":
            return "call"
        calls = last.tool_calls
        if not calls:
            return "answer"
        if self.rounds - self.iteration_start_round >= spec.max_rounds:
            self.stopped = "max_rounds"
            self._changed()
            logger.warning(
                "Agent %s stopped after max_rounds=%d model calls while the model still asked for tools %s; "
                "returning the last text",
                spec.task_id,
                spec.max_rounds,
                [c.name for c in calls],
            )
            return "answer"
        for call in calls:
            if run_tool is None:
                content, ok = f"ERROR: unknown tool {call.name!r}; available tools: none", False
            else:
                outcome = run_tool(call)
                content, ok = outcome.content, outcome.ok
            logger.info("Tool %s -> %s", call.name, "ok" if ok else "error")
            self.tool_calls.append({"name": call.name, "arguments": call.arguments, "ok": ok})
            self.messages.append(Message(role="tool", content=content, tool_call_id=call.id, name=call.name))
        self._changed()
        return "call"

    def record(self, guarded: GuardedResult, *, logger: Any = log, level: int = logging.INFO) -> None:
        """Account for one completed (and settled) model call, and log it at ``level``."""
        response, cost = guarded.response, guarded.cost
        self.rounds += 1
        self.messages.append(response.as_assistant_message())
        self.usage = self.usage + response.usage
        if cost.usd is not None and self.cost_known:  # cost.known
            self.cost_usd = float(self.cost_usd or 0.0) + float(cost.usd)
        elif not cost.known:
            self.cost_known = False
            self.cost_usd = None
            logger.warning("%s", cost.warning)
        self.latency_s = round(self.latency_s + response.latency_s, 6)
        self.wait_s = round(self.wait_s + guarded.wait_s, 6)
        self.requests += guarded.requests
        answered_by = f"{guarded.target.provider}/{guarded.target.model}"
        if answered_by != f"{self.provider}/{self.model}":
            self.fallbacks_used.append(
                {"round": self.rounds, "target": answered_by, "attempts": guarded.attempts}
            )
        self.answered_by = answered_by
        if response.request_id:
            self.request_ids.append(response.request_id)
        self.finish_reason = response.finish_reason
        self.pending = None
        self._changed()
        logger.log(
            level,
            "Round %d: %s in=%d (cached %d) out=%d tokens, cost %s, %.2fs, waited %.2fs for limits, %d request(s), "
            "request %s",
            self.rounds,
            answered_by,
            response.usage.input_tokens,
            response.usage.cached_input_tokens,
            response.usage.output_tokens,
            "unknown" if cost.usd is None else f"${cost.usd:.6f}",
            response.latency_s,
            guarded.wait_s,
            guarded.requests,
            response.request_id,
        )

    def hold(self, pending: PendingCharge) -> None:
        """Keep a paid response until its settlement is confirmed (persist the loop right after)."""
        self.pending = pending
        self._changed()

    def complete_answer(
        self,
        spec: LoopSpec,
        *,
        names: Mapping[str, Any] | None = None,
        render_prompt: Renderer | None = None,
        logger: Any = log,
    ) -> bool:
        """
        An answer is complete: validate its structure, then decide whether to go round again.

        Returns True when a new ``repeat_until`` iteration was started (a user turn appended).
        ``names`` are the expression names besides ``last``/``iteration`` (``results``, ``params``,
        ``item``); ``render_prompt(last, iteration)`` renders the prompt of the next iteration.
        Raises :class:`OutputValidationError` (the invalid answer is dropped first: it was paid for
        and counted, but the retry asks again) or :class:`LoopExpressionError`.
        """
        final = self.messages[-1] if self.messages and self.messages[-1].role == "assistant" else None
        text = final.content if final is not None else ""
        if spec.output_schema is not None:
            try:
                self.output = validate_output(text, spec.output_schema, spec.label)
            except OutputValidationError:
                if final is not None:
                    self.messages.pop()
                self._changed()
                raise
        else:
            self.output = text
        self.has_output = True
        self._changed()
        if spec.repeat_until is None:
            return False
        last = {"text": text, "output": self.output, "iteration": self.iteration}
        try:
            satisfied = bool(
                _repeat_until(spec.repeat_until).evaluate(
                    {**(names or {}), "last": last, "iteration": self.iteration}
                )
            )
        except Exception as exc:
            raise LoopExpressionError(
                f"agent {spec.task_id}: repeat_until {spec.repeat_until!r} failed after iteration "
                f"{self.iteration}: {exc}"
            ) from None
        if satisfied:
            logger.info("repeat_until %r is true after iteration %d", spec.repeat_until, self.iteration)
            return False
        if self.stopped == "max_rounds":
            return False
        if self.iteration >= spec.max_iterations:
            self.stopped = "max_iterations"
            logger.warning(
                "Agent %s stopped after max_iterations=%d while repeat_until %r was still false; "
                "returning the last answer",
                spec.task_id,
                spec.max_iterations,
                spec.repeat_until,
            )
            return False
        following = self.iteration + 1
        prompt = render_prompt(last, following) if render_prompt is not None else ""
        self.iteration = following
        self.iteration_start_round = self.rounds
        header = f"Iteration {following} of at most {spec.max_iterations}: revise your previous answer."
        self.messages.append(Message(role="user", content=f"{header}\n\n{prompt}"))
        logger.info(
            "repeat_until %r is false: iteration %d of at most %d",
            spec.repeat_until,
            following,
            spec.max_iterations,
        )
        return True

    def result(self, spec: LoopSpec, **extra: Any) -> AgentResult:
        """The run's result record (``extra``: the item fields of a mapped agent)."""
        text = self.text
        return AgentResult(
            status="success",
            text=text,
            output=self.output if self.has_output else text,
            provider=self.provider,
            model=self.model,
            usage=asdict(self.usage),
            cost_usd=None if not self.cost_known or self.cost_usd is None else round(self.cost_usd, 10),
            cost_known=bool(self.cost_known),
            rounds=self.rounds,
            tool_calls=list(self.tool_calls),
            latency_s=self.latency_s,
            request_ids=list(self.request_ids),
            requests=self.requests if self.requests else self.rounds,
            wait_s=self.wait_s,
            answered_by=self.answered_by,
            fallbacks_used=list(self.fallbacks_used),
            finish_reason=self.finish_reason,
            stopped=self.stopped,
            task_id=spec.task_id,
            agent=dict(spec.agent_meta),
            iterations=int(self.iteration),
            **extra,
        )
