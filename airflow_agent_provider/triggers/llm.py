"""Deferrable model calls: one LLM call awaited in the triggerer instead of on a worker slot.

A model call spends most of its time waiting on the network; deferring it frees the worker
slot. The trigger makes exactly one call: tools run on the worker (they are deployment code that
must not run inside the shared triggerer), so the operator defers once per round.

The trigger's kwargs are stored in the metadata DB and shown in the UI, so they hold only the
connection id, the provider and the JSON-safe request - never an API key; the key is read from the
Connection inside the triggerer.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_agent_provider.hooks.llm import LLMHook
from airflow_agent_provider.llm.types import LLMRequest, LLMResponse
from airflow_agent_provider.resilience.classify import error_event


class LLMCallTrigger(BaseTrigger):
    """
    Make one model call asynchronously and report its normalised response.

    Fires ``{"status": "success", "response": LLMResponse.to_dict()}`` or
    ``{"status": "error", "error_type", "message", "status_code", "retry_after_s", "kind", "reason", ...}``
    (``resilience.classify.error_event``: classified once, read the same way on the worker).

    :param llm_conn_id: Airflow Connection id of the provider.
    :param provider: ``openai`` or ``anthropic`` (resolved on the worker).
    :param request: ``LLMRequest.to_dict()``.
    """

    def __init__(self, llm_conn_id: str, provider: str | None, request: dict[str, Any]) -> None:
        super().__init__()
        self.llm_conn_id = llm_conn_id
        self.provider = provider
        self.request = request

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {"llm_conn_id": self.llm_conn_id, "provider": self.provider, "request": self.request},
        )

    async def _call_model(self, request: LLMRequest) -> LLMResponse:
        """
        The single place where the triggerer calls the model.

        Rate limiting, budget reservation and retries for deferred calls attach here, mirroring
        ``LLMAgentOperator._call_model`` on the worker.
        """
        hook = LLMHook(llm_conn_id=self.llm_conn_id, provider=self.provider)
        return await hook.acomplete(request)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        try:
            response = await self._call_model(LLMRequest.from_dict(self.request))
        except Exception as exc:
            self.log.warning("LLM call on %s failed: %s", self.llm_conn_id, type(exc).__name__)
            yield TriggerEvent(error_event(exc, llm_conn_id=self.llm_conn_id))
            return
        yield TriggerEvent({"status": "success", "response": response.to_dict()})
