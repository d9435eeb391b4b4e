"""LLMAgentOperator: one LLM agent (prompt, optional tools) as one Airflow task.

How a run goes: the prompt is rendered with the upstream agents' results, then the operator calls
the model; while the model asks for tools (and ``max_rounds`` allows), the allow-listed tools run
on the worker and their results go back to the model. The return value (XCom) records the text,
usage, cost and calls of the whole loop.

Why the loop is persisted after every model call: a model call costs money. The conversation so
far, its usage and its cost are written to ``task_state_store``, which survives retries, so a retry
resumes after the last completed call instead of paying for it again.

Every model call goes through :meth:`LLMAgentOperator._call_model` (worker) or
``LLMCallTrigger._call_model`` (deferred), the one seam where rate limits, budget reservations
and retries attach.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from collections.abc import Iterable, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.sdk import BaseOperator
from airflow.sdk.configuration import conf
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException, TaskDeferred

from airflow_agent_provider.cost.pricing import PriceOverride
from airflow_agent_provider.guard.config import GuardConfig, RateLimitRule
from airflow_agent_provider.guard.pipeline import GuardedCaller, GuardedResult
from airflow_agent_provider.hooks.llm import DEFAULT_CONN_IDS, LLMHook
from airflow_agent_provider.hooks.store import get_store
from airflow_agent_provider.definitions.expressions import ExpressionError
from airflow_agent_provider.llm.prompt import is_available
from airflow_agent_provider.llm.tools import ToolRegistry
from airflow_agent_provider.limits.policy import RateLimitPolicy
from airflow_agent_provider.llm.types import LLMRequest, LLMResponse, Message, Usage
from airflow_agent_provider.operators.control_flow import (
    CONDITION_NAMES,
    REPEAT_UNTIL_NAMES,
    OutputValidationError,
    compile_checked,
    flat_upstream_text,
    plain_params,
    skip_record,
    unavailable_sources,
    upstream_results,
    validate_output,
)
from airflow_agent_provider.operators.retry_policy import AgentRetryPolicy
from airflow_agent_provider.resilience.classify import ClassifiedError
from airflow_agent_provider.resilience.fallback import FallbackTarget
from airflow_agent_provider.triggers.llm import LLMCallTrigger

if TYPE_CHECKING:
    import jinja2
    from airflow.sdk import Context

STATE_VERSION = 1


class LLMAgentOperator(BaseOperator):
    """
    Run one LLM agent: a prompt, optionally with tools, against OpenAI, Anthropic or a compatible endpoint.

    :param prompt: The user prompt (templated). ``results[alias]`` / ``results[task_id]`` hold the
        upstream results (``{{ results.payroll_summary.text }}``) and ``upstream_text`` all of them.
    :param llm_conn_id: Airflow Connection (``agent_openai`` / ``agent_anthropic``). Default: the
        provider's default connection.
    :param provider: ``openai`` or ``anthropic``; only needed when the connection type does not say.
    :param model: Model name (templated); default: the connection's ``default_model``.
    :param system_prompt: System prompt (templated).
    :param temperature: Sampling temperature; None leaves the provider's default.
    :param max_tokens: Output token limit of each call.
    :param tools: ``{name: "package.module.function"}``; the only callables the model can reach.
    :param max_rounds: Most model calls of one run; when the model still asks for tools after
        that, the agent stops with ``"stopped": "max_rounds"`` and a warning.
    :param upstream_tasks: ``{alias: upstream task_id}`` whose results are exposed to the prompt.
    :param critical_upstreams: Upstream task_ids that must have a result, otherwise the task is
        skipped before any model call (use with trigger rule ``all_done``).
    :param price_override: Price per million tokens (``input_per_mtok``, ``output_per_mtok``,
        ``cached_input_per_mtok``) for models genai-prices does not know.
    :param cost_limit: USD this agent may spend per run. Checked *before* every call: the call's
        maximum cost is reserved first, and a call that would not fit fails with ``BudgetExceeded``
        (not retried) instead of being made.
    :param budget: Budgets shared with other agents, in USD: ``module_cost_budget``,
        ``run_cost_budget``, ``daily_budget``, ``monthly_budget`` (the factory fills these in).
    :param rate_limits: Shared rate-limit rules (``guard.config.RateLimitRule`` fields: ``key``,
        ``limits``, and the ``provider``/``model``/``llm_conn_id`` they apply to). The connection's
        ``rate_limits`` extra adds one more rule, keyed by the connection.
    :param call_retries: In-call retries of transient errors (``CallRetryPolicy`` fields).
    :param circuit_breaker: ``True`` (defaults), ``False`` (off) or ``BreakerConfig`` fields.
    :param fallbacks: ``[{"provider", "model", "llm_conn_id"}]`` tried in order when the model's
        breaker is open or it keeps failing transiently.
    :param rate_limit_timeout: Longest wait in seconds for a rate-limit permit.
    :param agent_meta: ``{"workflow", "module", "agent", "critical"}``, copied into the result.
    :param request_timeout: Seconds per model call.
    :param output_schema: JSON schema of a structured answer. The final reply is parsed and validated
        against it and ``output`` is the parsed data; a reply that is not JSON or does not validate
        raises :class:`OutputValidationError` (transient: the task's retries ask again).
    :param condition: Expression over ``results``, ``params`` and ``item`` (see
        ``docs/definitions-contract.md``), evaluated before any model call; when false the task is
        skipped and its ``return_value`` is a skip record with the reason.
    :param repeat_until: Expression over ``last`` (the previous answer: ``text``, ``output``,
        ``iteration``), ``iteration`` (1-based), ``params``, ``results``, ``item``: after each
        answer the agent runs again, as a new turn of the same conversation, until it is true or
        ``max_iterations`` answers were given (then ``stopped: "max_iterations"``).
    :param max_iterations: Bound on the answers of a ``repeat_until`` loop.
    :param item: The ``for_each`` item of a mapped agent (``.partial(...).expand(item=[...])``),
        ``{{ item }}`` in templates and ``item`` in expressions.
    :param deferrable: Wait for each model call in the triggerer instead of on the worker.
    """

    template_fields: Sequence[str] = ("prompt", "system_prompt", "model", "llm_conn_id")
    template_fields_renderers: ClassVar[dict[str, str]] = {"prompt": "jinja", "system_prompt": "jinja"}
    ui_color = "#e8f0fe"

    #: task_state_store key of the persisted loop. Renaming it breaks resumption of in-flight retries.
    state_key: ClassVar[str] = "agent_loop"

    def __init__(
        self,
        *,
        prompt: str,
        llm_conn_id: str | None = None,
        provider: str | None = None,
        model: str | None = None,
        system_prompt: str | None = None,
        temperature: float | None = None,
        max_tokens: int = 1024,
        tools: dict[str, str] | None = None,
        max_rounds: int = 8,
        upstream_tasks: dict[str, str] | None = None,
        critical_upstreams: list[str] | None = None,
        price_override: dict | None = None,
        cost_limit: float | None = None,
        agent_meta: dict | None = None,
        request_timeout: float | None = None,
        output_schema: dict | None = None,
        condition: str | None = None,
        repeat_until: str | None = None,
        max_iterations: int = 3,
        item: Any = None,
        budget: dict[str, float | None] | None = None,
        rate_limits: list[dict[str, Any]] | None = None,
        call_retries: dict[str, Any] | None = None,
        circuit_breaker: dict[str, Any] | bool = True,
        fallbacks: list[dict[str, Any]] | None = None,
        rate_limit_timeout: float | None = 600.0,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if self.retry_policy is None:
            # Permanent model errors (401, 400, budget) fail at once; transient ones wait for the
            # provider's retry-after. Built from the task's own (resolved) retry settings.
            base = self.retry_delay.total_seconds()
            self.retry_policy = AgentRetryPolicy(
                base_delay=base,
                max_delay=self.max_retry_delay.total_seconds() if self.max_retry_delay else max(base, 3600.0),
                exponential=bool(self.retry_exponential_backoff),
            )
        if max_rounds < 1:
            raise ValueError("max_rounds must be at least 1")
        if tools is not None and not all(isinstance(k, str) and isinstance(v, str) for k, v in tools.items()):
            raise TypeError("tools must map tool names to dotted paths (strings); nothing else is callable")
        self.prompt = prompt
        self.llm_conn_id = llm_conn_id or DEFAULT_CONN_IDS.get(provider or "openai", "agent_openai_default")
        self.provider = provider
        self.model = model
        self.system_prompt = system_prompt
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.tools = dict(tools or {})
        self.max_rounds = max_rounds
        self.upstream_tasks = dict(upstream_tasks or {})
        self.critical_upstreams = list(critical_upstreams or [])
        self.price_override = dict(price_override) if price_override else None
        # Parsed now so that a bad override is a DAG import error, not a failure after paid calls.
        self._price = PriceOverride.from_mapping(self.price_override) if self.price_override else None
        self.cost_limit = cost_limit
        self.agent_meta = dict(agent_meta or {})
        self.request_timeout = request_timeout
        self.output_schema = output_schema
        if output_schema is not None:  # a broken schema must fail at parse time, not after a paid call
            import jsonschema

            jsonschema.validators.validator_for(output_schema, default=jsonschema.Draft202012Validator).check_schema(
                output_schema
            )
        self.condition = condition
        self.repeat_until = repeat_until
        compile_checked(condition, CONDITION_NAMES, "condition")
        compile_checked(repeat_until, REPEAT_UNTIL_NAMES, "repeat_until")
        if not 1 <= max_iterations <= 50:
            raise ValueError("max_iterations must be between 1 and 50")
        self.max_iterations = max_iterations
        self.item = item
        self.budget = {k: v for k, v in (budget or {}).items() if v is not None}
        unknown = set(self.budget) - {"module_cost_budget", "run_cost_budget", "daily_budget", "monthly_budget"}
        if unknown:
            raise ValueError(f"unknown budget key(s) {sorted(unknown)}")
        self.rate_limits = [dict(r) for r in rate_limits or []]
        for rule in self.rate_limits:  # a typo in a limit must fail at parse time, not mean "unlimited"
            RateLimitRule(**rule).policy
        self.call_retries = dict(call_retries or {})
        self.circuit_breaker = circuit_breaker
        self.fallbacks = [dict(f) for f in fallbacks or []]
        self.rate_limit_timeout = rate_limit_timeout
        self.deferrable = deferrable
        self._upstream_results: dict[str, Any] | None = None
        self._by_task_id: dict[str, Any] = {}
        self._prompt_template: str | None = None
        self._jinja_env: jinja2.Environment | None = None

    # -- upstream results -------------------------------------------------------------------------

    def _do_render_template_fields(
        self,
        parent: Any,
        template_fields: Iterable[str],
        context: Context,
        jinja_env: jinja2.Environment,
        seen_oids: set[int],
    ) -> None:
        """
        Expose ``results`` and ``upstream_text`` to the templates before rendering them.

        Overridden here rather than in ``render_template_fields`` because a mapped task
        (``.partial().expand()``) renders through this method of its unmapped operator only.
        """
        if parent is self:
            self._expose_upstream_results(context)
            # Kept raw for repeat_until: every iteration renders the prompt again with ``last``.
            self._prompt_template = self.prompt
            self._jinja_env = jinja_env
        super()._do_render_template_fields(parent, template_fields, context, jinja_env, seen_oids)

    def _expose_upstream_results(self, context: Context) -> dict[str, Any]:
        """
        Put ``results``, ``upstream_text``, ``item``, ``iteration`` and ``last`` into the context.

        A mapped (``for_each``) upstream is a list of result dicts in item order.
        """
        task_ids = dict.fromkeys([*self.upstream_tasks.values(), *self.critical_upstreams])
        self._by_task_id = upstream_results(self, context, {t: t for t in task_ids})
        results = {alias: self._by_task_id[task_id] for alias, task_id in self.upstream_tasks.items()}
        for task_id in self.upstream_tasks.values():
            results[task_id] = self._by_task_id[task_id]
        self._upstream_results = results
        context["results"] = results  # type: ignore[typeddict-unknown-key]
        context["upstream_text"] = flat_upstream_text(self.upstream_tasks, results)  # type: ignore[typeddict-unknown-key]
        context["item"] = self.item  # type: ignore[typeddict-unknown-key]
        context.setdefault("iteration", 1)  # type: ignore[typeddict-item]
        context.setdefault("last", None)  # type: ignore[typeddict-item]
        return results

    def _check_critical_upstreams(self, context: Context) -> None:
        if self._upstream_results is None:
            self._expose_upstream_results(context)

        def available(entry: Any) -> bool:
            if isinstance(entry, list):  # a mapped upstream: every item must have a result
                return bool(entry) and all(is_available(e) for e in entry)
            return is_available(entry)

        missing = [task_id for task_id in self.critical_upstreams if not available(self._by_task_id.get(task_id))]
        if missing:
            raise AirflowSkipException(
                f"critical upstream task(s) {missing} produced no result; "
                f"agent {self.task_id!r} does not call the model"
            )

    # -- model access -----------------------------------------------------------------------------

    @cached_property
    def hook(self) -> LLMHook:
        return LLMHook(llm_conn_id=self.llm_conn_id, provider=self.provider)

    @cached_property
    def tool_registry(self) -> ToolRegistry:
        return ToolRegistry.from_mapping(self.tools)

    def _guard_config(self, context: Context) -> GuardConfig:
        """What guards this task instance's calls: ledger identity, budgets, limits, retries, breaker."""
        ti = context["ti"]
        rules = [RateLimitRule(**rule) for rule in self.rate_limits]
        conn_limits = (self.hook.connection.extra_dejson or {}).get("rate_limits")
        if conn_limits:
            policy = RateLimitPolicy.from_mapping(conn_limits)
            limits = {k: v for k, v in asdict(policy).items() if v is not None}
            rules.append(RateLimitRule(key=f"conn:{self.llm_conn_id}", limits=limits, llm_conn_id=self.llm_conn_id))
        breaker = self.circuit_breaker
        return GuardConfig(
            dag_id=ti.dag_id,
            run_id=context["run_id"],
            module=str(self.agent_meta.get("module") or (self.task_group.group_id if self.task_group else None) or "-"),
            agent=str(self.agent_meta.get("agent") or self.task_id.rsplit(".", 1)[-1]),
            agent_cost_limit=self.cost_limit,
            price_override=self.price_override,
            rate_limits=tuple(rules),
            rate_limit_timeout_s=self.rate_limit_timeout,
            call_retries=self.call_retries,
            breaker=None if breaker is False else ({} if breaker is True else dict(breaker)),
            fallbacks=tuple(FallbackTarget(**f) for f in self.fallbacks),
            **self.budget,
        )

    def _step_id(self, context: Context, state: dict[str, Any]) -> str:
        """Unique per task try and model call: the budget reservation id of that call."""
        ti = context["ti"]
        return f"{ti.dag_id}/{context['run_id']}/{ti.task_id}/{ti.map_index}/try{ti.try_number}/call{state['rounds']}"

    def _hook_for(self, target: Any) -> LLMHook:
        if target.llm_conn_id in (None, self.llm_conn_id) and target.provider == self.hook.provider:
            return self.hook
        return LLMHook(llm_conn_id=target.llm_conn_id or DEFAULT_CONN_IDS[target.provider], provider=target.provider)

    def _call_model(self, request: LLMRequest, context: Context, state: dict[str, Any]) -> GuardedResult:
        """
        The single place where the worker calls the model: through the guarded pipeline
        (budget reservation, circuit breaker, shared rate limits, retries, fallbacks, settlement).
        The deferred path's twin is ``LLMCallTrigger.run``.
        """
        caller = GuardedCaller(get_store(), self._guard_config(context))
        return caller.call(
            request,
            step_id=self._step_id(context, state),
            llm_conn_id=self.llm_conn_id,
            call_target=lambda target, req: self._hook_for(target).complete(req),
        )

    def _build_trigger(self, request: LLMRequest, context: Context, state: dict[str, Any]) -> LLMCallTrigger:
        return LLMCallTrigger(
            llm_conn_id=self.llm_conn_id,
            provider=self.hook.provider,
            request=request.to_dict(),
            guard=self._guard_config(context).to_dict(),
            step_id=self._step_id(context, state),
        )

    # -- durable loop state -----------------------------------------------------------------------

    def _fingerprint(self, provider: str, model: str) -> str:
        """Identifies the agent's inputs: a stored loop is resumed only if they did not change."""
        basis = json.dumps(
            [provider, model, self.prompt, self.system_prompt, sorted(self.tools.items()), self.output_schema],
            sort_keys=True,
            default=str,
        )
        return hashlib.sha256(basis.encode()).hexdigest()[:16]

    def _new_state(self, provider: str, model: str) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "fingerprint": self._fingerprint(provider, model),
            "provider": provider,
            "model": model,
            "messages": [asdict(Message(role="user", content=self.prompt))],
            "rounds": 0,
            "usage": asdict(Usage()),
            "cost_usd": 0.0,
            "cost_known": True,
            "tool_calls": [],
            "latency_s": 0.0,
            "request_ids": [],
            "finish_reason": None,
            "stopped": None,
        }

    def _load_state(
        self, context: Context, provider: str, model: str, *, after_deferral: bool = False
    ) -> dict[str, Any]:
        store = context.get("task_state_store")
        if store is None:
            if after_deferral:
                self.log.warning("No loop state after deferral (no defer kwargs, no task_state_store)")
            else:
                self.log.info("task_state_store not available: a retry would start the agent loop afresh")
            return self._new_state(provider, model)
        try:
            stored = store.get(self.state_key)
        except Exception as exc:
            self.log.warning("Could not read task_state_store (%s); starting the agent loop afresh", exc)
            stored = None
        if isinstance(stored, dict) and stored.get("version") == STATE_VERSION:
            if stored.get("fingerprint") == self._fingerprint(provider, model):
                if not after_deferral:
                    self.log.info(
                        "Resuming agent loop after %d completed model call(s); they are not paid again",
                        stored.get("rounds", 0),
                    )
                return stored
            self.log.warning("Stored agent loop is for a different prompt/model/tools; starting afresh")
        return self._new_state(provider, model)

    def _save_state(self, context: Context, state: dict[str, Any]) -> None:
        store = context.get("task_state_store")
        if store is None:
            return
        try:
            store.set(self.state_key, state)
        except Exception as exc:
            self.log.warning("Could not persist the agent loop to task_state_store: %s", exc)

    def _clear_state(self, context: Context) -> None:
        store = context.get("task_state_store")
        if store is None:
            return
        try:
            store.delete(self.state_key)
        except Exception as exc:
            self.log.warning("Could not clear the agent loop from task_state_store: %s", exc)

    # -- the loop ---------------------------------------------------------------------------------

    def _note_outcome(self, context: Context, exc: BaseException) -> None:
        """
        Leave the reason of a failure or skip in XCom (``agent_error`` / ``skip_reason``) for the
        workflow result task, which otherwise only sees the task state. Never includes secrets:
        SDK error messages do not contain the key.
        """
        key = "skip_reason" if isinstance(exc, AirflowSkipException) else "agent_error"
        try:
            context["ti"].xcom_push(key=key, value=f"{type(exc).__name__}: {exc}"[:2000])
        except Exception as push_error:  # the reason is a courtesy; never mask the real error
            self.log.debug("Could not record %s: %s", key, push_error)

    def execute(self, context: Context) -> dict[str, Any]:
        try:
            return self._execute(context)
        except TaskDeferred:
            raise
        except Exception as exc:
            self._note_outcome(context, exc)
            raise

    def _execute(self, context: Context) -> dict[str, Any]:
        self._check_critical_upstreams(context)
        self._check_condition(context)
        _ = self.tool_registry  # import the tools before any paid call
        provider = self.hook.provider
        model = self.model or self.hook.default_model
        state = self._load_state(context, provider, model)
        return self._run_loop(context, state)

    def execute_complete(
        self, context: Context, event: dict[str, Any], state: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Resume after a deferred model call: record it, run tools, then defer again or finish."""
        try:
            return self._execute_complete(context, event, state)
        except TaskDeferred:
            raise
        except Exception as exc:
            self._note_outcome(context, exc)
            raise

    def _execute_complete(
        self, context: Context, event: dict[str, Any], state: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        if not event or event.get("status") != "success":
            # Rebuilt with its classification (transient/permanent, retry-after) for the retry policy.
            raise ClassifiedError.from_event(event or {"error_type": "EmptyTriggerEvent", "message": "no event"})
        if state is None:
            # The real triggerer hands back defer kwargs; dag.test() passes only the event, so the
            # loop comes from task_state_store, where it was saved just before deferring.
            state = self._load_state(
                context, self.hook.provider, self.model or self.hook.default_model, after_deferral=True
            )
        if "result" in event:
            guarded = GuardedResult.from_dict(event["result"])
        else:  # a trigger used without a guard (hand-built): only the response
            guarded = _unguarded(LLMResponse.from_dict(event["response"]), state, self._price)
        self._record(context, state, guarded)
        return self._run_loop(context, state)

    def _run_loop(self, context: Context, state: dict[str, Any]) -> dict[str, Any]:
        """Tool rounds until an answer; then validate it and, under ``repeat_until``, maybe go again."""
        while True:
            while self._advance(context, state) == "call":
                request = self._build_request(state)
                if self.deferrable:
                    self._save_state(context, state)
                    self.defer(
                        trigger=self._build_trigger(request, context, state),
                        method_name="execute_complete",
                        kwargs={"state": state},
                    )
                self._record(context, state, self._call_model(request, context, state))
            if not self._complete_answer(context, state):
                return self._finish(context, state)

    def _build_request(self, state: dict[str, Any]) -> LLMRequest:
        return LLMRequest(
            provider=state["provider"],
            model=state["model"],
            messages=[Message.from_dict(m) for m in state["messages"]],
            system=self.system_prompt or None,
            tools=self.tool_registry.specs,
            temperature=self.temperature,
            max_tokens=self.max_tokens,
            output_schema=self.output_schema,
            timeout=self.request_timeout,
        )

    def _advance(self, context: Context, state: dict[str, Any]) -> str:
        """Decide the next step: ``call`` the model (after running requested tools) or ``done``."""
        last = state["messages"][-1]
        if last["role"] != "assistant":
            return "call"
        calls = Message.from_dict(last).tool_calls
        if not calls:
            return "done"
        if state["rounds"] - state.get("iteration_start_round", 0) >= self.max_rounds:
            state["stopped"] = "max_rounds"
            self.log.warning(
                "Agent %s stopped after max_rounds=%d model calls while the model still asked for tools %s; "
                "returning the last text",
                self.task_id,
                self.max_rounds,
                [c.name for c in calls],
            )
            return "done"
        for call in calls:
            result = self.tool_registry.run(call)
            self.log.info("Tool %s -> %s", call.name, "ok" if result.ok else "error")
            state["tool_calls"].append({"name": call.name, "arguments": call.arguments, "ok": result.ok})
            state["messages"].append(
                asdict(Message(role="tool", content=result.content, tool_call_id=call.id, name=call.name))
            )
        self._save_state(context, state)
        return "call"

    def _record(self, context: Context, state: dict[str, Any], guarded: GuardedResult) -> None:
        """Account for one completed model call and persist the loop, so a retry never repays it."""
        response, cost = guarded.response, guarded.cost
        state["rounds"] += 1
        state["messages"].append(asdict(response.as_assistant_message()))
        state["usage"] = asdict(Usage(**state["usage"]) + response.usage)
        if cost.known and state["cost_known"]:
            state["cost_usd"] = state["cost_usd"] + float(cost.usd)  # type: ignore[arg-type]
        elif not cost.known:
            state["cost_known"] = False
            state["cost_usd"] = None
            self.log.warning("%s", cost.warning)
        state["latency_s"] = round(state["latency_s"] + response.latency_s, 6)
        state["wait_s"] = round(state.get("wait_s", 0.0) + guarded.wait_s, 6)
        state["requests"] = state.get("requests", 0) + guarded.requests
        answered_by = f"{guarded.target.provider}/{guarded.target.model}"
        if answered_by != f"{state['provider']}/{state['model']}":
            state.setdefault("fallbacks_used", []).append({"round": state["rounds"], "target": answered_by,
                                                           "attempts": guarded.attempts})
        state["answered_by"] = answered_by
        if response.request_id:
            state["request_ids"].append(response.request_id)
        state["finish_reason"] = response.finish_reason
        self.log.info(
            "Round %d: %s in=%d (cached %d) out=%d tokens, cost %s, %.2fs, waited %.2fs for limits, %d request(s), "
            "request %s",
            state["rounds"],
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
        self._save_state(context, state)

    # -- control flow -----------------------------------------------------------------------------

    def _expression_names(self, context: Context) -> dict[str, Any]:
        if self._upstream_results is None:
            self._expose_upstream_results(context)
        return {"results": self._upstream_results, "params": plain_params(context.get("params")), "item": self.item}

    def _check_condition(self, context: Context) -> None:
        """Skip before any model call when ``condition`` is false, leaving the reason in XCom."""
        expression = compile_checked(self.condition, CONDITION_NAMES, "condition")
        if expression is None:
            return
        names = self._expression_names(context)
        missing = unavailable_sources(expression, names["results"])
        if missing:
            self._skip(context, f"condition {self.condition!r} not evaluated: upstream {missing} produced no result")
        try:
            value = expression.evaluate(names)
        except ExpressionError as exc:
            # The data does not have the shape the condition expects: retrying would not change it.
            raise AirflowFailException(f"agent {self.task_id}: condition {self.condition!r} failed: {exc}") from None
        if not value:
            self._skip(context, f"condition {self.condition!r} was false")
        self.log.info("Condition %r is true", self.condition)

    def _skip(self, context: Context, reason: str) -> None:
        """
        Skip with ``reason``. The ``return_value`` is a skip record, so that dependants running
        under ``all_done`` see ``results.<agent>.status == "skipped"`` and its ``reason``.
        """
        record = skip_record(reason, task_id=self.task_id, agent=self.agent_meta, **self._item_fields(context))
        push = getattr(context["ti"], "xcom_push", None)
        if push is not None:
            push(key="return_value", value=record)
        raise AirflowSkipException(reason)

    def _item_fields(self, context: Context) -> dict[str, Any]:
        map_index = getattr(context["ti"], "map_index", -1)
        if map_index is None or map_index < 0:
            return {}
        return {"item": self.item, "map_index": map_index}

    def _agent_label(self) -> str:
        module, agent = self.agent_meta.get("module"), self.agent_meta.get("agent")
        return f"{module}.{agent}" if module and agent else self.task_id

    def _complete_answer(self, context: Context, state: dict[str, Any]) -> bool:
        """
        An answer is complete: validate its structure, then decide whether to go round again.

        Returns True when a new iteration was started (a user turn appended), False when done.
        """
        messages = state["messages"]
        final = messages[-1] if messages and messages[-1]["role"] == "assistant" else {}
        text = final.get("content") or ""
        if self.output_schema is not None:
            try:
                state["output"] = validate_output(text, self.output_schema, self._agent_label())
            except OutputValidationError:
                # Paid for and counted, but not kept: the retry asks the model again for this answer.
                if final:
                    messages.pop()
                self._save_state(context, state)
                raise
        else:
            state["output"] = text
        expression = compile_checked(self.repeat_until, REPEAT_UNTIL_NAMES, "repeat_until")
        if expression is None:
            return False
        iteration = int(state.get("iteration", 1))
        last = {"text": text, "output": state["output"], "iteration": iteration}
        names = {**self._expression_names(context), "last": last, "iteration": iteration}
        try:
            satisfied = bool(expression.evaluate(names))
        except ExpressionError as exc:
            raise AirflowFailException(
                f"agent {self.task_id}: repeat_until {self.repeat_until!r} failed after iteration {iteration}: {exc}"
            ) from None
        if satisfied:
            self.log.info("repeat_until %r is true after iteration %d", self.repeat_until, iteration)
            return False
        if state.get("stopped") == "max_rounds":
            return False
        if iteration >= self.max_iterations:
            state["stopped"] = "max_iterations"
            self.log.warning(
                "Agent %s stopped after max_iterations=%d while repeat_until %r was still false; "
                "returning the last answer",
                self.task_id,
                self.max_iterations,
                self.repeat_until,
            )
            return False
        state["iteration"] = iteration + 1
        state["iteration_start_round"] = state["rounds"]
        messages.append(asdict(Message(role="user", content=self._iteration_prompt(context, last, iteration + 1))))
        self._save_state(context, state)
        self.log.info(
            "repeat_until %r is false: iteration %d of at most %d", self.repeat_until, iteration + 1, self.max_iterations
        )
        return True

    def _iteration_prompt(self, context: Context, last: dict[str, Any], iteration: int) -> str:
        """The next turn: a header, then the prompt rendered again with ``last`` and ``iteration``."""
        prompt = self.prompt
        if self._prompt_template is not None:
            ctx = dict(context)
            ctx.update(last=last, iteration=iteration)
            prompt = self.render_template(self._prompt_template, ctx, self._jinja_env or self.get_template_env())
        return f"Iteration {iteration} of at most {self.max_iterations}: revise your previous answer.\n\n{prompt}"

    def _finish(self, context: Context, state: dict[str, Any]) -> dict[str, Any]:
        texts = [m["content"] for m in state["messages"] if m["role"] == "assistant" and m.get("content")]
        text = texts[-1] if texts else ""
        result: dict[str, Any] = {
            "status": "success",
            "text": text,
            "output": state.get("output", text),
            "provider": state["provider"],
            "model": state["model"],
            "usage": dict(state["usage"]),
            "cost_usd": None if not state["cost_known"] else round(state["cost_usd"], 10),
            "cost_known": bool(state["cost_known"]),
            "rounds": state["rounds"],
            "tool_calls": list(state["tool_calls"]),
            "latency_s": state["latency_s"],
            "request_ids": list(state["request_ids"]),
            "requests": state.get("requests", state["rounds"]),
            "wait_s": state.get("wait_s", 0.0),
            "answered_by": state.get("answered_by"),
            "fallbacks_used": list(state.get("fallbacks_used", [])),
            "finish_reason": state["finish_reason"],
            "stopped": state["stopped"],
            "task_id": self.task_id,
            "agent": dict(self.agent_meta),
            "iterations": int(state.get("iteration", 1)),
            **self._item_fields(context),
        }
        self._clear_state(context)
        return result


__all__ = ["LLMAgentOperator"]


def _unguarded(response: LLMResponse, state: dict[str, Any], override: PriceOverride | None) -> GuardedResult:
    """Wrap a bare trigger response (no guard configured) so it is recorded like a guarded one."""
    from airflow_agent_provider.cost.pricing import price_call

    return GuardedResult(
        response=response,
        target=FallbackTarget(state["provider"], state["model"]),
        cost=price_call(state["provider"], response.model or state["model"], response.usage, override),
        requests=1,
    )
