"""
Deferrable model calls: one LLM call awaited in the triggerer instead of on a worker slot.

A model call spends most of its time waiting on the network; deferring it frees the worker
slot. The trigger makes exactly one call: tools run on the worker (they are deployment code that
must not run inside the shared triggerer), so the operator defers once per round.

The trigger's kwargs are stored in the metadata DB and shown in the UI, so they hold only the
connection id, the provider and the JSON-safe request - never an API key; the key is read from the
Connection inside the triggerer.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING, Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_agent_provider._connections import DEFAULT_CONN_IDS
from airflow_agent_provider.triggers._events import trigger_event
from airflow_agent_provider.triggers._runtime import aload_runtime

if TYPE_CHECKING:
    # The engines load off the event loop when a trigger first runs (triggers/_runtime.py).
    from airflow_agent_provider.guard.config import GuardConfig
    from airflow_agent_provider.hooks.llm import LLMHook
    from airflow_agent_provider.llm.types import LLMRequest, LLMResponse
    from airflow_agent_provider.resilience.fallback import FallbackTarget


class TargetHooks:
    """
    The hooks of one trigger's targets (the agent's connection and its fallbacks'), asynchronously.

    One hook per connection, so a connection is read once per trigger run; :meth:`prepare` reads it
    and builds the shared client before the guard takes a rate-limit permit (see
    :mod:`airflow_agent_provider.guard.pipeline`), :meth:`call` makes one attempt.
    """

    def __init__(self, llm_conn_id: str, provider: str | None) -> None:
        self.llm_conn_id, self.provider = llm_conn_id, provider
        self._hooks: dict[tuple[str, str], LLMHook] = {}

    def hook(self, target: FallbackTarget) -> LLMHook:
        conn_id = target.llm_conn_id or (
            self.llm_conn_id if target.provider == self.provider else DEFAULT_CONN_IDS[target.provider]
        )
        key = (conn_id, target.provider)
        if key not in self._hooks:
            from airflow_agent_provider.hooks.llm import LLMHook

            self._hooks[key] = LLMHook(llm_conn_id=conn_id, provider=target.provider)
        return self._hooks[key]

    async def prepare(self, target: FallbackTarget) -> None:
        await self.hook(target).get_async_conn()

    async def call(self, target: FallbackTarget, request: LLMRequest) -> LLMResponse:
        return await self.hook(target).acomplete(request)


class LLMCallTrigger(BaseTrigger):
    """
    Make one model call asynchronously and report its normalised response.

    With a ``guard`` (what the operator always passes) the call goes through the same guarded
    pipeline as on a worker — budget reservation, circuit breaker, shared rate limits (waiting
    with ``asyncio.sleep``, so the wait costs no worker slot), retries, fallbacks, settlement — and
    fires ``{"status": "success", "result": GuardedResult.to_dict()}`` (a paid response whose
    settlement failed fires an error event with ``pending``: the worker settles it); without one it fires
    ``{"status": "success", "response": LLMResponse.to_dict()}``; errors fire
    ``{"status": "error", "error_type", "message", "status_code", "retry_after_s", "kind", "reason", ...}``
    (``resilience.classify.error_event``: classified once, read the same way on the worker).

    :param llm_conn_id: Airflow Connection id of the provider.
    :param provider: ``openai`` or ``anthropic`` (resolved on the worker).
    :param request: The ``LLMRequest`` (or its ``to_dict()``, as :meth:`serialize` writes it).
    :param guard: The ``GuardConfig`` bound to the run (connection ids and limits only, no secrets),
        its ``to_dict()``, or None.
    :param step_id: The call's unique id (task try and round): its budget reservation id.

    The arguments are held typed; they become JSON only in :meth:`serialize` (the trigger boundary).
    """

    def __init__(
        self,
        llm_conn_id: str,
        provider: str | None,
        request: LLMRequest | Mapping[str, Any],
        guard: GuardConfig | Mapping[str, Any] | None = None,
        step_id: str | None = None,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # Airflow's BaseTrigger.__init__ is unannotated
        self.llm_conn_id = llm_conn_id
        self.provider = provider
        # Held as given, parsed when first read: the triggerer builds triggers on its shared event
        # loop, before the engines that parse them are loaded (off the loop, in run()).
        self._request_arg = request
        self._guard_arg = guard
        self._request: LLMRequest | None = None
        self._guard: GuardConfig | None = None
        self.step_id = step_id

    @property
    def request(self) -> LLMRequest:
        """The model call to make."""
        if self._request is None:
            from airflow_agent_provider.llm.types import LLMRequest

            arg = self._request_arg
            self._request = arg if isinstance(arg, LLMRequest) else LLMRequest.from_dict(dict(arg))
        return self._request

    @property
    def guard(self) -> GuardConfig | None:
        """The guard bound to the run, or None (an unguarded call)."""
        if self._guard is None and self._guard_arg is not None:
            from airflow_agent_provider.guard.config import GuardConfig

            arg = self._guard_arg
            self._guard = arg if isinstance(arg, GuardConfig) else GuardConfig.from_dict(arg)
        return self._guard

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "llm_conn_id": self.llm_conn_id,
                "provider": self.provider,
                "request": self.request.to_dict(),
                "guard": None if self.guard is None else self.guard.to_dict(),
                "step_id": self.step_id,
            },
        )

    async def _call_model(self, request: LLMRequest) -> LLMResponse:
        """
        The single place where the triggerer calls the model.

        Rate limiting, budget reservation and retries for deferred calls attach here, mirroring
        ``LLMAgentOperator._call_model`` on the worker.
        """
        from airflow_agent_provider.hooks.llm import LLMHook

        hook = LLMHook(llm_conn_id=self.llm_conn_id, provider=self.provider)
        return await hook.acomplete(request)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        await aload_runtime()  # the engines, off the event loop (once per triggerer process)
        from airflow_agent_provider.guard.pipeline import GuardedCaller, UnsettledCharge
        from airflow_agent_provider.hooks.llm import awarm
        from airflow_agent_provider.hooks.store import aget_store
        from airflow_agent_provider.resilience.classify import error_event
        from airflow_agent_provider.security.redact import scrub_value

        try:
            request = self.request
            if self.guard is None:
                response = await self._call_model(request)
                event: dict[str, Any] = {"status": "success", "response": response.to_dict()}
            else:
                guard = self.guard
                # SDK, prices and store load off the event loop (once per triggerer process).
                await awarm(
                    request.provider,
                    [(request.provider, request.model), *((t.provider, t.model) for t in guard.fallbacks)],
                )
                caller = GuardedCaller(await aget_store(), guard)
                hooks = TargetHooks(self.llm_conn_id, self.provider)
                result = await caller.acall(
                    request,
                    step_id=self.step_id or "trigger",
                    llm_conn_id=self.llm_conn_id,
                    call_target=hooks.call,
                    prepare_target=hooks.prepare,
                )
                event = {"status": "success", "result": result.to_dict()}
        except UnsettledCharge as exc:
            # Paid, not settled: the worker persists the response and settles it (never calls again).
            self.log.warning("LLM call on %s: %s", self.llm_conn_id, exc)
            yield trigger_event(
                scrub_value(
                    {**error_event(exc, llm_conn_id=self.llm_conn_id), "pending": exc.pending.to_dict()}
                )
            )
            return
        except Exception as exc:
            self.log.warning("LLM call on %s failed: %s: %s", self.llm_conn_id, type(exc).__name__, exc)
            yield trigger_event(scrub_value(error_event(exc, llm_conn_id=self.llm_conn_id)))
            return
        yield trigger_event(event)
