"""
One agent's result: the record an agent task leaves as its ``return_value`` XCom.

Written by the agent loop (:meth:`airflow_agent_provider.agent_loop.state.AgentLoop.result`) on
every execution path, by a skipped agent (:meth:`AgentResult.skipped`), and by the workflow result
task for a failed agent (:meth:`AgentResult.failed`, built from the ``agent_error`` XCom). Read
back by downstream prompts and expressions as a plain dict (``results.x.text``,
``results.x.output``): :meth:`AgentResult.to_dict` is that dict, and :meth:`AgentResult.from_xcom`
reads whatever was stored, including the JSON string the triggerer stores.

Version history (``version``; fields are only ever added within a version):

* **1** — the shape of the untyped dict the operator wrote before this model existed. A stored
  record without ``version`` is version 1.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from airflow_agent_provider.results._versioned import versioned_record

#: The version this code writes; it reads every version in :data:`READABLE_VERSIONS`.
AGENT_RESULT_VERSION = 1
READABLE_VERSIONS = (1,)

AgentStatus = Literal["success", "skipped", "failed"]
StopReason = Literal["max_rounds", "max_iterations"]

_SKIP_PREFIX = "AirflowSkipException: "


class TokenUsage(BaseModel):
    """Tokens of one call, one agent or one run; ``cached_input_tokens`` is part of ``input_tokens``."""

    model_config = ConfigDict(extra="ignore")

    input_tokens: int = Field(0, description="prompt tokens")
    output_tokens: int = Field(0, description="completion tokens")
    cached_input_tokens: int = Field(0, description="the part of `input_tokens` read from the cache")

    def __add__(self, other: TokenUsage) -> TokenUsage:
        return TokenUsage(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            cached_input_tokens=self.cached_input_tokens + other.cached_input_tokens,
        )


class ToolCallRecord(BaseModel):
    """One tool the model asked for, and whether running it succeeded."""

    name: str
    arguments: Any = None
    ok: bool = True


class FallbackUse(BaseModel):
    """A model round answered by a fallback target instead of the agent's own model."""

    round: int
    target: str
    attempts: list[dict[str, Any]] = Field(default_factory=list)


class AgentResult(BaseModel):
    """
    One agent's result (see the module docstring). Every field has a default, so a record that
    holds only part of them (a skip record, a failure record) reads as well as a full one; which
    fields were actually written is :attr:`model_fields_set`, and only those are dumped.
    """

    # Unknown keys are kept: a record written by newer code keeps them through a round trip.
    model_config = ConfigDict(extra="allow")

    # The first five keys are what prompts read most (and the order the XCom always had).
    status: AgentStatus | None = Field(
        None,
        description="`success`; `skipped` in the record a skipped agent leaves; `failed` in the record "
        "the result task builds from a failed agent's `agent_error`",
    )
    text: str | None = Field(
        None, description="the last assistant text: the answer, or the last words before a stop"
    )
    output: Any = Field(
        None, description="the validated answer: parsed JSON under an `output_schema`, else the text"
    )
    provider: str | None = Field(None, description="the provider the agent was configured with")
    model: str | None = Field(None, description="the model the agent was configured with")
    usage: TokenUsage = Field(default_factory=TokenUsage, description="tokens over every round")
    cost_usd: float | None = Field(None, description="USD over every round; null when a price is unknown")
    cost_known: bool | None = Field(None, description="whether every round had a known price")
    rounds: int | None = Field(None, description="model calls that were paid for")
    tool_calls: list[ToolCallRecord] = Field(
        default_factory=list, description="one entry per tool the model ran, and whether it succeeded"
    )
    latency_s: float | None = Field(None, description="seconds spent in model calls")
    request_ids: list[str] = Field(default_factory=list, description="the providers' request ids")
    requests: int | None = Field(None, description="HTTP requests made, retries included")
    wait_s: float | None = Field(None, description="seconds spent waiting for rate-limit permits")
    answered_by: str | None = Field(None, description="`provider/model` that gave the last answer")
    fallbacks_used: list[FallbackUse] = Field(
        default_factory=list, description="one entry per round that a fallback target answered"
    )
    finish_reason: str | None = Field(None, description="why the model ended its last answer")
    stopped: StopReason | None = Field(
        None, description="`max_rounds` or `max_iterations` when a cap ended the loop, else null"
    )
    task_id: str | None = Field(None, description="the agent's task id (`Module.agent`)")
    agent: dict[str, Any] = Field(
        default_factory=dict, description="what the definition says about the agent (module, name, ...)"
    )
    iterations: int | None = Field(None, description="`repeat_until` iterations run")
    version: int = Field(AGENT_RESULT_VERSION, description="version of this record")
    item: Any = Field(None, description="mapped (`for_each`) agents only: the item of this instance")
    map_index: int | None = Field(None, description="mapped agents only: the instance's map index")
    reason: str | None = Field(None, description="skip records: why the agent did not run")
    skip_reason: str | None = Field(None, description="skip records: the same reason, under its XCom key")
    agent_error: str | None = Field(
        None, description="failure records: the error the task left under the `agent_error` XCom key"
    )

    # -- writing --------------------------------------------------------------------------------

    @classmethod
    def skipped(
        cls, reason: str, *, task_id: str, agent: Mapping[str, Any] | None = None, **extra: Any
    ) -> AgentResult:
        """
        The record a skipped agent leaves: ``status``/``text`` make it a result that downstream
        prompts and the result task understand (``results.x.status == 'skipped'``,
        ``results.x.reason``) without special cases. ``extra``: ``item``/``map_index``.
        """
        return cls.model_validate(
            {
                "status": "skipped",
                "text": "",
                "output": None,
                "reason": reason,
                "skip_reason": reason,
                "task_id": task_id,
                "agent": dict(agent or {}),
                **extra,
            }
        )

    @classmethod
    def failed(cls, error: str | None) -> AgentResult:
        """The record of a failed agent, from the ``agent_error`` its task left (or None)."""
        return cls(status="failed", agent_error=error)

    def to_dict(self) -> dict[str, Any]:
        """The XCom form: a JSON-safe dict of the fields that were written, plus ``version``."""
        return self.model_dump(mode="json", include=self.model_fields_set | {"version"})

    # -- reading --------------------------------------------------------------------------------

    @classmethod
    def from_xcom(cls, value: Any) -> AgentResult | None:
        """
        Read a stored record: a dict, or the JSON string the triggerer stores (see
        :func:`decode_json_object`); None for no value. ``ValueError`` for anything else, or for
        a record of a version this code cannot read.
        """
        record = versioned_record(decode_json_object(value), "an agent result", READABLE_VERSIONS)
        return None if record is None else cls.model_validate(record)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AgentResult:
        """:meth:`from_xcom` for a dict that is known to be there (the loop's records use this name)."""
        result = cls.from_xcom(data)
        if result is None:
            raise ValueError("no agent result")
        return result

    def has(self, name: str) -> bool:
        """Whether the record holds ``name`` (written, possibly as null), not just its default."""
        return name in self.model_fields_set

    @property
    def answer(self) -> Any:
        """``output`` where written, else ``text``: what a successful agent answered."""
        return self.output if self.has("output") else self.text

    @property
    def own_reason(self) -> str | None:
        """The reason the record itself gives for a skip or failure (without Airflow's prefix)."""
        reason = self.skip_reason or self.agent_error
        if reason and reason.startswith(_SKIP_PREFIX):
            reason = reason[len(_SKIP_PREFIX) :]
        return reason or None


def decode_json_object(value: Any) -> Any:
    """
    An agent's XCom as the dict it was written as, whichever process wrote it.

    Why: a result that a trigger hands to Airflow with ``TaskSuccessEvent(xcoms=...)`` is stored by
    Airflow 3.3's triggerer as ``json.dumps(value)``, while workers store it through ``serde``; read
    back on a worker, the triggerer's copy arrives as a JSON *string*. An agent's result or skip
    record is always a JSON object with a ``status``, so only such strings are decoded; any other
    value (including a plain string some other task returned) is left as it is.
    """
    if not isinstance(value, str) or not value.startswith("{") or not value.endswith("}"):
        return value
    try:
        decoded = json.loads(value)
    except ValueError:
        return value
    return decoded if isinstance(decoded, dict) and "status" in decoded else value


__all__ = [
    "AGENT_RESULT_VERSION",
    "AgentResult",
    "AgentStatus",
    "FallbackUse",
    "TokenUsage",
    "ToolCallRecord",
    "decode_json_object",
]
