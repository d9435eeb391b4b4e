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

from collections.abc import Mapping, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.sdk import BaseOperator
from airflow.sdk.configuration import conf
from airflow.sdk.exceptions import AirflowFailException, TaskDeferred
from airflow.triggers.base import StartTriggerArgs

from airflow_agent_provider._connections import default_conn_id
from airflow_agent_provider.agent_loop import AgentLoop, LoopExpressionError, LoopSpec
from airflow_agent_provider.agent_loop.config import (
    AGENT_TRIGGER,
    AgentConfig,
    Execution,
    PromptContext,
    check_output_schema,
    guard_identity,
    resolve_execution,
)
from airflow_agent_provider.agent_loop.drive import advance, run_sync, settle_held
from airflow_agent_provider.hooks.llm import DEFAULT_CONN_IDS, LLMHook
from airflow_agent_provider.operators import agent_runtime as rt
from airflow_agent_provider.operators.agent_context import AgentRunContext
from airflow_agent_provider.operators.agent_settings import AgentSettings, AgentSettingsViews

if TYPE_CHECKING:  # the engines below load when an agent runs, not when a DAG file is parsed
    from airflow.sdk import Context

    from airflow_agent_provider.guard.config import GuardConfig
    from airflow_agent_provider.guard.pipeline import GuardedCaller, GuardedResult
    from airflow_agent_provider.llm.tools import ToolRegistry
    from airflow_agent_provider.llm.types import LLMRequest


class LLMAgentOperator(AgentRunContext, AgentSettingsViews, BaseOperator):
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
    # No template_fields_renderers: a rendered prompt is plain text (a "jinja" renderer would only
    # colour it as a template), and Airflow serializes the mapping into every agent task of the DAG,
    # which the triggerer deserializes once per triggerer-only agent (see agent_loop.config).
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
        # Runs once per agent per DAG parse (500 times for a 500-agent workflow, at every task
        # start): checks cached per distinct value, and few attribute sets (see agent_settings).
        super().__init__(**kwargs)
        if self.retry_policy is None:  # permanent errors fail at once, transient ones wait for retry-after
            self.retry_policy = rt.default_retry_policy(self)
        rt.check_arguments(
            max_rounds=max_rounds,
            tools=tools,
            max_iterations=max_iterations,
            prompt_context=prompt_context,
            condition=condition,
            repeat_until=repeat_until,
            output_schema=output_schema,
        )
        # The templated fields are plain attributes: Airflow renders and serializes them by name.
        self.prompt, self.system_prompt, self.model = prompt, system_prompt, model
        self.llm_conn_id = llm_conn_id or default_conn_id(provider)
        meta = dict(agent_meta or {})
        group = getattr(self, "task_group", None)
        module, agent = guard_identity(self.task_id, meta, group.group_id if group is not None else None)
        arguments = {
            "price_override": price_override,
            "cost_limit": cost_limit,
            "budget": budget,
            "rate_limits": rate_limits,
            "call_retries": call_retries,
            "fallbacks": fallbacks,
        }
        timeout = self.execution_timeout
        config = AgentConfig(
            task_id=self.task_id,
            prompt=prompt,
            llm_conn_id=self.llm_conn_id,
            provider=provider,
            model=model,
            system_prompt=system_prompt,
            temperature=temperature,
            max_tokens=max_tokens,
            request_timeout=request_timeout,
            output_schema=output_schema,
            max_rounds=max_rounds,
            repeat_until=repeat_until,
            max_iterations=max_iterations,
            condition=condition,
            upstream_tasks=dict(upstream_tasks or {}),
            critical_upstreams=list(critical_upstreams or []),
            item=item,
            agent_meta=meta,
            prompt_context=prompt_context,
            tools=dict(tools or {}),
            guard=rt.guard_of(
                module,
                agent,
                guard,
                arguments,
                circuit_breaker=circuit_breaker,
                rate_limit_timeout=rate_limit_timeout,
            ),
            execution_timeout_s=timeout.total_seconds() if timeout is not None else None,
        )
        mode = resolve_execution(execution, deferrable=deferrable, has_tools=bool(config.tools))
        self._settings = AgentSettings(
            config, execution=execution, execution_mode=mode, deferrable=deferrable
        )
        if mode == "triggerer":
            # The scheduler hands the task straight to the triggerer; a mapped agent (which Airflow
            # 3.3 cannot start there) or dag.test() calls execute(), which defers once instead.
            self.start_from_trigger = True
            self.start_trigger_args = StartTriggerArgs(
                trigger_cls=AGENT_TRIGGER,
                # Serialised here, the trigger boundary: what differs from the defaults and what
                # the task (or its identity) does not carry (AgentConfig.to_start_kwargs).
                trigger_kwargs={"start": config.to_start_kwargs(self)},
                next_method="execute_complete",
                next_kwargs=None,
                # The trigger counts execution_timeout from when it starts running (not while it
                # waits for a triggerer); Airflow still bounds the task by it from the hand-over.
                timeout=None,
            )

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
        """The hook of a target; one per fallback connection, so its connection is read once."""
        if target.llm_conn_id in (None, self.llm_conn_id) and target.provider == self.hook.provider:
            return self.hook
        conn_id = target.llm_conn_id or DEFAULT_CONN_IDS[target.provider]
        hooks = self.__dict__.setdefault("_fallback_hooks", {})
        if (conn_id, target.provider) not in hooks:
            hooks[conn_id, target.provider] = LLMHook(llm_conn_id=conn_id, provider=target.provider)
        hook: LLMHook = hooks[conn_id, target.provider]
        return hook

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
        """The persisted loop of this task instance when it still fits the agent, else a fresh one."""
        return rt.load_loop(self, context, after_deferral=after_deferral)

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
            result: dict[str, Any] = fn(*args)
            return result
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
        from airflow_agent_provider.operators import agent_deferral as deferral

        return deferral.complete(self, context, event, state)

    def _continue(self, context: Context, loop: AgentLoop) -> dict[str, Any]:
        """Run the loop on from where it is, on this worker or by deferring, as the mode says."""
        from airflow_agent_provider.operators import agent_deferral as deferral

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
            trigger = deferral.agent_trigger(self, context, loop)
            self.defer(
                trigger=trigger,
                method_name="execute_complete",
                timeout=rt.deferral_timeout(trigger.run_args.timeout_s if trigger.run_args else None),
            )
        host.save(loop)
        self.defer(
            trigger=deferral.call_trigger(self, request, context, loop),
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
            prepare_target=lambda target: self._hook_for(target).get_conn(),
        )

    def _finish(self, context: Context, loop: AgentLoop) -> dict[str, Any]:
        result = loop.result(self._spec(), **rt.item_fields(context, self.item)).to_dict()
        rt.clear_state(context, self.state_key, self.log)
        return rt.scrubbed_result(result)


__all__ = ["LLMAgentOperator"]
