"""
LLMAgentOperator: one LLM agent (prompt, optional tools) as one Airflow task.

How a run goes: the prompt is rendered with the upstream agents' results, then the model is called;
while it asks for tools (and ``max_rounds`` allows), the allow-listed tools run on the worker and
their results go back to the model. The return value (XCom) records the text, usage, cost and calls
of the whole loop. The loop itself is :class:`~airflow_agent_provider.agent_loop.AgentLoop`, driven
by :mod:`airflow_agent_provider.agent_loop.drive` on every execution path:

* ``worker`` — the loop runs in ``execute()``, blocking a worker slot for the calls;
* ``deferred`` — each model call is awaited in the triggerer (``LLMCallTrigger``), tools run on the
  worker between rounds; a tool-less agent defers once and ends in the triggerer (``AgentTrigger``);
* ``triggerer`` — a tool-less agent starts *and* ends in the triggerer (``start_from_trigger``):
  no worker at all unless it fails (the failure resumes on a worker so that ``AgentRetryPolicy``
  decides) or it is retried.

Why the loop is persisted after every model call: a model call costs money. The conversation so
far, its usage and its cost are written to ``task_state_store``, which survives retries, so a retry
resumes after the last completed call instead of paying for it again; a response that arrived but
whose settlement failed is persisted before settlement and settled by the retry.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.sdk import BaseOperator
from airflow.sdk.configuration import conf
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException, TaskDeferred
from airflow.triggers.base import StartTriggerArgs

from airflow_agent_provider._connections import default_conn_id
from airflow_agent_provider.agent_loop import AgentLoop, LoopExpressionError, LoopSpec, fingerprint
from airflow_agent_provider.agent_loop.config import (
    AGENT_TRIGGER,
    AgentConfig,
    Execution,
    PromptContext,
    check_output_schema,
    resolve_execution,
)
from airflow_agent_provider.agent_loop.drive import advance, holder, record, run_sync, settle_held
from airflow_agent_provider.hooks.llm import DEFAULT_CONN_IDS, LLMHook
from airflow_agent_provider.operators import agent_runtime as rt
from airflow_agent_provider.operators.retry_policy import AgentRetryPolicy

if TYPE_CHECKING:  # the engines below load when an agent runs, not when a DAG file is parsed
    import jinja2
    from airflow.sdk import Context

    from airflow_agent_provider.cost.pricing import PriceOverride
    from airflow_agent_provider.guard.config import GuardConfig
    from airflow_agent_provider.guard.pipeline import GuardedCaller, GuardedResult
    from airflow_agent_provider.llm.tools import ToolRegistry
    from airflow_agent_provider.llm.types import LLMRequest
    from airflow_agent_provider.triggers.agent import AgentTrigger
    from airflow_agent_provider.triggers.llm import LLMCallTrigger


class LLMAgentOperator(BaseOperator):
    """
    Run one LLM agent: a prompt, optionally with tools, against OpenAI, Anthropic or a compatible endpoint.

    :param prompt: The user prompt (templated): ``results[alias]`` / ``results[task_id]`` hold the upstream
        results (``{{ results.payroll_summary.text }}``), ``upstream_text`` all of them.
    :param llm_conn_id: Airflow Connection (``agent_openai`` / ``agent_anthropic``); default: the provider's.
    :param provider: ``openai`` or ``anthropic``; only needed when the connection type does not say.
    :param model: Model name (templated); default: the connection's ``default_model``.
    :param system_prompt: System prompt (templated).
    :param temperature: Sampling temperature (None: the provider's default). :param max_tokens: per call.
    :param tools: ``{name: "package.module.function"}``; the only callables the model can reach.
    :param max_rounds: Most model calls of one run; then ``"stopped": "max_rounds"`` and a warning.
    :param upstream_tasks: ``{alias: upstream task_id}`` whose results are exposed to the prompt.
    :param critical_upstreams: Upstream task_ids that must have a result, else the task is skipped
        before any model call (use with trigger rule ``all_done``).
    :param guard: What guards the calls, typed (``guard.config.GuardConfig``: budgets, price override,
        rate limits, call retries, breaker, fallbacks); the factory passes it. A hand-written DAG may
        pass the same settings as the mappings below instead (not both).
    :param price_override: USD per million tokens (``input_per_mtok``, ``output_per_mtok``,
        ``cached_input_per_mtok``) for models genai-prices does not know.
    :param cost_limit: USD this agent may spend per run, checked *before* every call (the call's most
        is reserved first; a call that would not fit fails with ``BudgetExceeded``).
    :param budget: Shared budgets in USD: ``module_cost_budget``, ``run_cost_budget``, ``daily_budget``,
        ``monthly_budget``.
    :param rate_limits: Shared rate-limit rules (``guard.config.RateLimitRule`` fields); the connection's
        ``rate_limits`` extra adds one more, keyed by the connection.
    :param call_retries: In-call retries of transient errors (``CallRetryPolicy`` fields).
    :param circuit_breaker: ``True`` (defaults), ``False`` (off) or ``BreakerConfig`` fields.
    :param fallbacks: ``[{"provider", "model", "llm_conn_id"}]`` tried in order when the model's breaker
        is open or it keeps failing transiently.
    :param rate_limit_timeout: Longest wait in seconds for a rate-limit permit.
    :param agent_meta: ``{"workflow", "module", "agent", "critical"}``, copied into the result.
    :param request_timeout: Seconds per model call.
    :param output_schema: JSON schema of a structured answer: ``output`` is the parsed data; a reply that
        does not validate raises ``OutputValidationError`` (transient).
    :param condition: Expression over ``results``, ``params``, ``item``, evaluated before any call; when
        false the task is skipped and its ``return_value`` is a skip record.
    :param repeat_until: Expression over ``last``, ``iteration``, ``params``, ``results``, ``item``: the
        agent answers again, as a new turn, until it is true or ``max_iterations`` answers were given.
    :param item: The ``for_each`` item of a mapped agent (``.partial(...).expand(item=[...])``).
    :param execution: ``auto`` (default), ``worker``, ``deferred`` or ``triggerer`` (module docstring).
        ``auto``: tools → worker (``deferred`` if ``deferrable``); no tools → triggerer, or ``deferred``
        (start on a worker, end in the triggerer) when it reads upstream results.
    :param prompt_context: ``airflow`` (default: Airflow's full template context) or ``workflow`` (only
        ``results``, ``upstream_text``, ``params``, ``item``, ``last``, ``iteration``, ``ds``,
        ``logical_date``, ``run_id``, ``dag_id``: what YAML workflows get).
    :param deferrable: Wait for each model call in the triggerer (``execution="deferred"``).
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
        guard: GuardConfig | None = None,
        price_override: Mapping[str, Any] | None = None,
        cost_limit: float | None = None,
        agent_meta: dict[str, Any] | None = None,
        request_timeout: float | None = None,
        output_schema: dict[str, Any] | None = None,
        condition: str | None = None,
        repeat_until: str | None = None,
        max_iterations: int = 3,
        item: Any = None,
        budget: dict[str, float | None] | None = None,
        rate_limits: list[dict[str, Any]] | None = None,
        call_retries: dict[str, Any] | None = None,
        circuit_breaker: Mapping[str, Any] | bool = True,
        fallbacks: list[dict[str, Any]] | None = None,
        rate_limit_timeout: float | None = 600.0,
        execution: Execution = "auto",
        prompt_context: PromptContext = "airflow",
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        **kwargs: Any,
    ) -> None:
        # Runs once per agent per DAG parse (500 times for a 500-agent workflow): plain assignments
        # and checks cached per distinct value.
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
        rt.check_arguments(
            max_rounds=max_rounds,
            tools=tools,
            max_iterations=max_iterations,
            prompt_context=prompt_context,
            condition=condition,
            repeat_until=repeat_until,
            output_schema=output_schema,
        )
        self.prompt, self.system_prompt, self.model, self.provider = prompt, system_prompt, model, provider
        self.llm_conn_id = llm_conn_id or default_conn_id(provider)
        self.temperature, self.max_tokens, self.request_timeout = temperature, max_tokens, request_timeout
        self.tools = dict(tools or {})
        self.max_rounds, self.max_iterations = max_rounds, max_iterations
        self.upstream_tasks = dict(upstream_tasks or {})
        self.critical_upstreams = list(critical_upstreams or [])
        self.agent_meta = dict(agent_meta or {})
        self.output_schema, self.condition, self.repeat_until, self.item = (
            output_schema,
            condition,
            repeat_until,
            item,
        )
        arguments = {
            "price_override": price_override,
            "cost_limit": cost_limit,
            "budget": budget,
            "rate_limits": rate_limits,
            "call_retries": call_retries,
            "fallbacks": fallbacks,
        }
        self.guard = rt.guard_of(
            self,
            guard,
            arguments,
            circuit_breaker=circuit_breaker,
            rate_limit_timeout=rate_limit_timeout,
        )
        self.prompt_context, self.deferrable, self.execution = prompt_context, deferrable, execution
        self.execution_mode = resolve_execution(execution, deferrable=deferrable, has_tools=bool(self.tools))
        if self.execution_mode == "triggerer":
            # The scheduler hands the task straight to the triggerer; a mapped agent (which Airflow
            # 3.3 cannot start there) or dag.test() calls execute(), which defers once instead.
            self.start_from_trigger = True
            self.start_trigger_args = StartTriggerArgs(
                trigger_cls=AGENT_TRIGGER,
                # Serialised here, the trigger boundary; only what differs from the defaults.
                trigger_kwargs={"agent": self.agent_config().to_dict()},
                next_method="execute_complete",
                next_kwargs=None,
                # The trigger counts execution_timeout from when it starts running (not while it
                # waits for a triggerer); Airflow still bounds the task by it from the hand-over.
                timeout=None,
            )
        self._results: dict[str, Any] | None = None
        self._by_task_id: dict[str, Any] = {}
        self._prompt_template: str | None = None
        self._jinja_env: jinja2.Environment | None = None
        self._context: Mapping[str, Any] | None = None

    def agent_config(self) -> AgentConfig:
        """This agent's static settings (templates as they are now), as the triggers receive them."""
        return AgentConfig.of(self)

    # Views of ``guard`` for the run record (``operators/result.py`` reads them by name).

    @property
    def budget(self) -> dict[str, float]:
        return rt.budget_view(self.guard)

    @property
    def rate_limits(self) -> list[dict[str, Any]]:
        return [rule.to_dict() for rule in self.guard.rate_limits]

    @property
    def price_override(self) -> PriceOverride | None:
        return self.guard.price_override

    # -- rendering and upstream results -----------------------------------------------------------

    def _do_render_template_fields(
        self,
        parent: Any,
        template_fields: Iterable[str],
        context: Context,
        jinja_env: jinja2.Environment,
        seen_oids: set[int],
    ) -> None:
        """
        Expose ``results``/``upstream_text`` to the templates, then render them (narrowly for workflows).

        Overridden here rather than in ``render_template_fields`` because a mapped task
        (``.partial().expand()``) renders through this method of its unmapped operator only.
        """
        if parent is not self:
            return super()._do_render_template_fields(parent, template_fields, context, jinja_env, seen_oids)
        self._expose_upstream_results(context)
        self._prompt_template = self.prompt  # kept raw: every repeat_until iteration renders it again
        self._jinja_env = jinja_env
        if self.prompt_context == "workflow":
            rt.render_fields_narrowly(self, template_fields, context)
            return None
        return super()._do_render_template_fields(parent, template_fields, context, jinja_env, seen_oids)

    def _expose_upstream_results(self, context: Context) -> dict[str, Any]:
        self._context = context
        self._results, self._by_task_id = rt.expose_results(self, context)
        return self._results

    def _names(self, context: Context) -> dict[str, Any]:
        if self._results is None:
            self._expose_upstream_results(context)
        return rt.expression_names(self._results or {}, context, self.item)

    def _render_iteration(self, context: Context, last: dict[str, Any], iteration: int) -> str:
        """The prompt of a ``repeat_until`` iteration: the template rendered again with ``last``/``iteration``."""
        if self._prompt_template is None:
            return self.prompt
        if self.prompt_context == "workflow":
            return rt.render_narrow(
                self._prompt_template, {**context, "last": last, "iteration": iteration}, "prompt"
            )
        ctx = {**context, "last": last, "iteration": iteration}
        return self.render_template(self._prompt_template, ctx, self._jinja_env or self.get_template_env())

    # -- model access -----------------------------------------------------------------------------

    @cached_property
    def hook(self) -> LLMHook:
        return LLMHook(llm_conn_id=self.llm_conn_id, provider=self.provider)

    @cached_property
    def tool_registry(self) -> ToolRegistry:
        from airflow_agent_provider.llm.tools import ToolRegistry

        return ToolRegistry.from_mapping(self.tools)

    def _guard_config(self, context: Context) -> GuardConfig:
        """What guards this task instance's calls: ledger identity, budgets, limits, retries, breaker."""
        return self.guard.for_run(
            dag_id=context["ti"].dag_id,
            run_id=context["run_id"],
            llm_conn_id=self.llm_conn_id,
            conn_extras=self.hook.connection.extra_dejson or {},
        )

    def _caller(self, context: Context) -> GuardedCaller:
        from airflow_agent_provider.guard.pipeline import GuardedCaller
        from airflow_agent_provider.hooks.store import get_store

        return GuardedCaller(get_store(), self._guard_config(context))

    def _step_id(self, context: Context, loop: AgentLoop) -> str:
        """Unique per task try and model call: the budget reservation id of a fresh call."""
        return rt.step_prefix(context) + f"/call{loop.rounds}"

    def _hook_for(self, target: Any) -> LLMHook:
        if target.llm_conn_id in (None, self.llm_conn_id) and target.provider == self.hook.provider:
            return self.hook
        return LLMHook(
            llm_conn_id=target.llm_conn_id or DEFAULT_CONN_IDS[target.provider], provider=target.provider
        )

    def _spec(self) -> LoopSpec:
        return self.agent_config().loop_spec(system=self.system_prompt)

    def _host(self, context: Context) -> rt.WorkerHost:
        registry = self.tool_registry if self.tools else None
        return rt.WorkerHost(
            spec=self._spec(),
            tool_specs=registry.specs if registry else [],
            run_tool=registry.run if registry else None,
            logger=self.log,
            names_fn=lambda: self._names(context),
            render_fn=lambda last, iteration: self._render_iteration(context, last, iteration),
            store=context.get("task_state_store"),
            key=self.state_key,
        )

    # -- durable loop state -----------------------------------------------------------------------

    def _load(self, context: Context, *, after_deferral: bool = False) -> AgentLoop:
        provider, model = self.hook.provider, self.model or self.hook.default_model
        print_ = fingerprint(provider, model, self.prompt, self.system_prompt, self.tools, self.output_schema)
        stored = rt.read_state(context, self.state_key, self.log, after_deferral=after_deferral)
        loop, why = AgentLoop.resume(stored, fingerprint=print_)
        if loop is not None:
            if not after_deferral:
                self.log.info(
                    "Resuming agent loop after %d completed model call(s); they are not paid again",
                    loop.rounds,
                )
            return loop
        if stored is not None:
            self.log.warning("%s; starting afresh", why)
        return AgentLoop.start(provider=provider, model=model, prompt=self.prompt, fingerprint=print_)

    # -- the loop ---------------------------------------------------------------------------------

    def execute(self, context: Context) -> dict[str, Any]:
        return self._guarded(context, self._execute, context)

    def execute_complete(
        self, context: Context, event: Any = None, state: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Resume after a deferral: record the call (or settle it), then defer again or finish."""
        return self._guarded(context, self._execute_complete, context, event, state)

    def _guarded(self, context: Context, fn: Any, *args: Any) -> dict[str, Any]:
        try:
            return fn(*args)
        except TaskDeferred:
            raise
        except LoopExpressionError as exc:
            rt.note_outcome(context, exc, self.log)
            raise AirflowFailException(str(exc)) from None
        except Exception as exc:
            rt.note_outcome(context, exc, self.log)
            raise

    def _execute(self, context: Context) -> dict[str, Any]:
        self._check_critical_upstreams(context)
        self._check_condition(context)
        check_output_schema(self.output_schema)  # before any paid call
        if self.tools:
            _ = self.tool_registry  # import the tools before any paid call
        return self._continue(context, self._load(context))

    def _execute_complete(self, context: Context, event: Any, state: dict[str, Any] | None) -> dict[str, Any]:
        event = (
            event
            if isinstance(event, Mapping)
            else {
                "status": "error",
                "error_type": "EmptyTriggerEvent",
                "message": f"unexpected trigger event {event!r}",
            }
        )
        if event.get("status") == "resume":  # started in the triggerer, continued here (a retry)
            self.log.info("Continuing on a worker: %s", event.get("reason", "resume"))
            return self._execute(context)
        if (
            event.get("status") == "done"
        ):  # the whole loop ran in the triggerer (reported back, e.g. dag.test)
            rt.clear_state(context, self.state_key, self.log)
            return rt.scrubbed_result(event["agent_result"])
        if event.get("status") != "success" and not event.get("pending"):
            from airflow_agent_provider.resilience.classify import ClassifiedError

            if event.get("loop"):  # what the triggerer paid for is kept for the retry
                rt.WorkerHost.saver(context, self.state_key, self.log)(AgentLoop.from_dict(event["loop"]))
            # Rebuilt with its classification (transient/permanent, retry-after) for the retry policy.
            raise ClassifiedError.from_event(event)
        from airflow_agent_provider.guard.pipeline import GuardedResult, PendingCharge

        # The loop travels in the event (AgentTrigger) or the defer kwargs; dag.test() passes only the
        # event, and then it comes from task_state_store, where it was saved just before deferring.
        held = event.get("loop") or state
        loop = AgentLoop.from_dict(held) if held else self._load(context, after_deferral=True)
        host = self._host(context)

        if event.get("pending"):  # paid in the triggerer, not settled: persist it first, then settle here
            holder(loop, host)(PendingCharge.from_dict(event["pending"]))
            return self._continue(context, loop)
        if "result" in event:
            guarded = GuardedResult.from_dict(event["result"])
        else:  # a trigger used without a guard (hand-built): only the response
            from airflow_agent_provider.llm.types import LLMResponse

            guarded = rt.unguarded(LLMResponse.from_dict(event["response"]), loop, self.guard.price_override)
        record(loop, host, guarded)
        return self._continue(context, loop)

    def _continue(self, context: Context, loop: AgentLoop) -> dict[str, Any]:
        """Run the loop on from where it is, on this worker or by deferring, as the mode says."""
        host = self._host(context)
        if loop.pending is not None:
            settle_held(loop, host, self._caller(context).settle_pending)
        mode = self._deferral(context)
        if mode == "none":
            run_sync(
                loop,
                host,
                lambda request, on_paid: self._call_model(request, context, loop, on_paid),
                self._caller(context).settle_pending,
            )
            return self._finish(context, loop)
        request = advance(loop, host)  # tools, answer checks, the next iteration: on this worker
        if request is None:
            return self._finish(context, loop)
        if mode == "whole":  # the rest of the loop runs in the triggerer, which ends the task
            if loop.rounds:
                host.save(loop)
            trigger = self._agent_trigger(context, loop)
            self.defer(
                trigger=trigger,
                method_name="execute_complete",
                timeout=rt.deferral_timeout(trigger.run_args.timeout_s if trigger.run_args else None),
            )
        host.save(loop)
        self.defer(
            trigger=self._call_trigger(request, context, loop),
            method_name="execute_complete",
            kwargs={"state": loop.to_dict()},
        )

    def _deferral(self, context: Context) -> str:
        """``none`` (worker), ``per_round`` (tools: resume after each call) or ``whole`` (end in the triggerer)."""
        if self.execution_mode == "worker":
            return "none"
        if self.tools or (self.repeat_until and self.prompt_context == "airflow"):
            # Tools run here; an iteration prompt needs Airflow's full context, which only exists here.
            return "per_round"
        return "whole"

    def _call_model(
        self, request: LLMRequest, context: Context, loop: AgentLoop, on_paid: Any = None
    ) -> GuardedResult:
        """
        The single place where the worker calls the model: through the guarded pipeline (budget,
        breaker, shared limits, retries, fallbacks, settlement); ``LLMCallTrigger``/``AgentTrigger``
        are its twins in the triggerer.
        """
        return self._caller(context).call(
            request,
            step_id=self._step_id(context, loop),
            llm_conn_id=self.llm_conn_id,
            on_paid=on_paid,
            call_target=lambda target, req: self._hook_for(target).complete(req),
        )

    def _call_trigger(self, request: LLMRequest, context: Context, loop: AgentLoop) -> LLMCallTrigger:
        from airflow_agent_provider.triggers.llm import LLMCallTrigger

        return LLMCallTrigger(
            llm_conn_id=self.llm_conn_id,
            provider=self.hook.provider,
            request=request,
            guard=self._guard_config(context),
            step_id=self._step_id(context, loop),
        )

    def _agent_trigger(self, context: Context, loop: AgentLoop) -> AgentTrigger:
        from airflow_agent_provider.agent_loop.config import AgentRun
        from airflow_agent_provider.triggers.agent import AgentTrigger

        agent = dataclasses.replace(self.agent_config(), prompt=self._prompt_template or self.prompt)
        run = AgentRun(
            loop=loop,
            spec=self._spec(),
            guard=self._guard_config(context),
            llm_conn_id=self.llm_conn_id,
            provider=self.hook.provider,
            step_prefix=rt.step_prefix(context),
            names=rt.carried_names(self._names(context), context),
            item_fields=rt.item_fields(context, self.item),
            timeout_s=rt.remaining_s(context, self.execution_timeout),
        )
        return AgentTrigger(agent=agent, run=run)

    # -- control flow -----------------------------------------------------------------------------

    def _check_critical_upstreams(self, context: Context) -> None:
        if self._results is None:
            self._expose_upstream_results(context)
        if missing := rt.missing_critical(self.critical_upstreams, self._by_task_id):
            raise AirflowSkipException(
                f"critical upstream task(s) {missing} produced no result; agent {self.task_id!r} does not call the model"
            )

    def _check_condition(self, context: Context) -> None:
        """Skip before any model call when ``condition`` is false, leaving the reason (a skip record) in XCom."""
        reason = rt.condition_skip_reason(self.condition, self._names(context), self.task_id)
        if reason is not None:
            record_ = rt.skip_record_for(
                reason, self.task_id, self.agent_meta, rt.item_fields(context, self.item)
            )
            if (push := getattr(context["ti"], "xcom_push", None)) is not None:
                push(key="return_value", value=record_)
            raise AirflowSkipException(reason)

    def _finish(self, context: Context, loop: AgentLoop) -> dict[str, Any]:
        result = loop.result(self._spec(), **rt.item_fields(context, self.item)).to_dict()
        rt.clear_state(context, self.state_key, self.log)
        return rt.scrubbed_result(result)


__all__ = ["LLMAgentOperator"]
