"""
A whole tool-less agent run inside the triggerer: the agent loop, awaited, ending the task there.

Two ways in:

* **Started by the scheduler** (``execution="triggerer"``: the operator sets ``start_from_trigger``
  and ``start_trigger_args`` with ``{"start": AgentConfig.to_start_kwargs()}``, completed from the
  task the triggerer rebuilt, see ``agent_loop.config``). The triggerer builds the task's
  template context and hands it to :meth:`AgentTrigger.render_template_fields`; :meth:`run` then
  reads the upstream results (XCom, through the triggerer's supervisor), checks
  ``critical_upstreams`` and ``condition``, renders the prompt (narrowly for workflow files), and
  runs the loop. No worker is involved.
* **Deferred by the operator** (a tool-less agent in ``deferred`` mode, a mapped agent, or
  ``dag.test()``, which never starts a task from the trigger): the worker has rendered everything
  and passes ``run`` (an :class:`~airflow_agent_provider.agent_loop.config.AgentRun`: the loop, its
  spec, the guard, the names for ``repeat_until``, the remaining ``execution_timeout``).

The trigger holds its arguments as typed objects (``AgentConfig``, ``AgentRun``); they become JSON
only in :meth:`AgentTrigger.serialize`, the trigger boundary. ``execution_timeout`` is counted from
when :meth:`AgentTrigger.run` starts, so time spent waiting for a triggerer does not use it up.

Either way the model calls go through the same ``GuardedCaller.acall`` as every other path (budget,
breaker, shared limits, retries, fallbacks, settlement) and the loop is driven by
``agent_loop.drive.run_async``, so the result, cost and ledger entry are what the worker records.

How it ends:

* success: ``TaskSuccessEvent(xcoms={"return_value": result})`` — the task ends here (in
  ``dag.test()``, which cannot take a task-ending event, a ``{"status": "done"}`` event instead);
* skipped (critical upstream missing, condition false): ``TaskSkippedEvent`` with the skip record;
* any failure: a plain event that resumes the task on a worker in ``execute_complete``, which
  raises the classified error so that ``AgentRetryPolicy`` decides (a ``TaskFailedEvent`` would
  send the task to ``up_for_retry`` without consulting the retry policy). Whatever the loop
  already paid for travels in the event, and a response whose settlement failed travels as
  ``pending``, so the worker persists it and nothing is paid twice or lost;
* a retry (try 2+) of a task started here resumes on a worker at once: only a worker can read
  ``task_state_store``, where earlier tries left their paid rounds.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING, Any

from airflow.triggers.base import BaseTrigger, TaskSkippedEvent, TaskSuccessEvent, TriggerEvent

from airflow_agent_provider.exceptions import ExecutionTimeout
from airflow_agent_provider.triggers._events import trigger_event
from airflow_agent_provider.triggers._runtime import aload_runtime

if TYPE_CHECKING:
    # The engines load off the event loop when a trigger first runs (triggers/_runtime.py): Airflow
    # imports this module and builds the triggers on the loop every trigger of the triggerer shares.
    from airflow_agent_provider.agent_loop import AgentLoop, LoopSpec
    from airflow_agent_provider.agent_loop.config import AgentConfig, AgentRun
    from airflow_agent_provider.agent_loop.state import ToolRunner
    from airflow_agent_provider.llm.types import ToolSpec


class _Ended(Exception):
    """The run ends before any model call (a skip, or a hand-over to a worker) with this event."""

    def __init__(self, event: TriggerEvent) -> None:
        super().__init__("ended early")
        self.event = event


class _TriggerHost:
    """The triggerer's side of the loop: no tools, nowhere to persist (the events carry the loop)."""

    tool_specs: list[ToolSpec] = []
    run_tool: ToolRunner | None = None
    #: Each model call's line at DEBUG here, not INFO: in Airflow 3.3 a trigger's log line is a
    #: blocking write from the event loop every trigger shares to the triggerer's supervisor, which
    #: reads it only between its own (also blocking) sends of whole serialized DAGs; with hundreds of
    #: agents starting together those writes stall the loop and can deadlock the two processes (seen
    #: at 500 triggerer-only agents). The task's result carries the same figures (tokens, cost, time).
    round_log_level: int = logging.DEBUG

    def __init__(
        self,
        spec: LoopSpec,
        names: Mapping[str, Any],
        prompt: str,
        prompt_context: str,
        full_context: Mapping[str, Any] | None,
        logger: Any,
    ) -> None:
        self.spec = spec
        self._names = dict(names)
        self._prompt = prompt
        self._prompt_context = prompt_context
        self._full = full_context
        self.logger = logger

    def names(self) -> Mapping[str, Any]:
        return {k: self._names.get(k) for k in ("results", "params", "item")}

    def render_prompt(self, last: dict[str, Any], iteration: int) -> str:
        prompt: str = _render(
            self._prompt,
            {**(self._full or self._names), **self._names, "last": last, "iteration": iteration},
            self._prompt_context,
            "prompt",
        )
        return prompt

    def save(self, loop: AgentLoop) -> None:
        """Nothing to persist to in the triggerer: a failure event carries the loop to a worker."""


def _render(template: Any, context: Mapping[str, Any], prompt_context: str, field: str) -> Any:
    from airflow_agent_provider.operators.prompt_context import render_workflow, workflow_env, workflow_names

    if prompt_context == "workflow":
        return render_workflow(template, workflow_names(context), field=field)
    if not isinstance(template, str) or "{" not in template:
        return template
    # Airflow's context, in the sandboxed environment (the DAG's own environment is not in the triggerer).
    return workflow_env().from_string(template).render(**context)


class AgentTrigger(BaseTrigger):
    """
    Run a tool-less agent's whole loop in the triggerer and end its task there.

    :param agent: When deferred from a worker: the agent's ``AgentConfig`` (connection ids, templates
        and limits; never a key), or its ``to_dict()`` (what the triggerer passes back from
        :meth:`serialize`).
    :param run: When deferred from a worker: the ``AgentRun`` (or its ``to_dict()``).
    :param start: When started by the scheduler (``start_trigger_args``): the agent's settings beyond
        what its serialized task carries, as JSON (``AgentConfig.to_start_kwargs()``); the rest is
        read from the task the triggerer rebuilt (``AgentConfig.from_start_kwargs``).
    """

    def __init__(
        self,
        agent: AgentConfig | Mapping[str, Any] | None = None,
        run: AgentRun | Mapping[str, Any] | None = None,
        start: str | None = None,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # Airflow's BaseTrigger.__init__ is unannotated
        if (agent is None) == (start is None):
            raise ValueError(
                "AgentTrigger takes agent= (deferred from a worker) or start= (started by the scheduler), "
                "exactly one of them"
            )
        if start is not None and run is not None:
            raise ValueError("AgentTrigger(start=...) is started by the scheduler and takes no run=")
        self._start = start
        # Held as given, parsed when first read: the triggerer builds triggers on its shared event
        # loop, before the engines that parse them are loaded (off the loop, in run()).
        self._agent_arg = agent
        self._run_arg = run
        self._agent: AgentConfig | None = None
        self._run: AgentRun | None = None
        self._context: Mapping[str, Any] | None = None

    @property
    def agent(self) -> AgentConfig:
        """The agent's settings; started by the scheduler, completed from the task the triggerer rebuilt."""
        if self._agent is None:
            from airflow_agent_provider.agent_loop.config import AgentConfig

            if self._agent_arg is not None:
                arg = self._agent_arg
                self._agent = arg if isinstance(arg, AgentConfig) else AgentConfig.from_dict(arg)
            else:
                task = self.task
                if task is None:
                    raise RuntimeError(
                        "AgentTrigger(start=...) must be started by the triggerer, which rebuilds its task"
                    )
                self._agent = AgentConfig.from_start_kwargs(self._start or "{}", task)
        return self._agent

    @property
    def run_args(self) -> AgentRun | None:
        """The run the worker prepared (deferred from a worker), or None (started by the scheduler)."""
        if self._run is None and self._run_arg is not None:
            from airflow_agent_provider.agent_loop.config import AgentRun

            arg = self._run_arg
            self._run = arg if isinstance(arg, AgentRun) else AgentRun.from_dict(arg)
        return self._run

    @property
    def _label(self) -> str:
        """The task id for log lines, even before the settings could be completed."""
        if self._agent is not None:
            return self._agent.task_id
        return str(getattr(self.task_instance, "task_id", None) or "agent")

    def serialize(self) -> tuple[str, dict[str, Any]]:
        from airflow_agent_provider.agent_loop.config import AGENT_TRIGGER

        if self._start is not None:
            return AGENT_TRIGGER, {"start": self._start}
        run = None if self.run_args is None else self.run_args.to_dict()
        return AGENT_TRIGGER, {"agent": self.agent.to_dict(), "run": run}

    def render_template_fields(self, context: Any, jinja_env: Any = None) -> None:
        """
        Keep the task's template context (the triggerer calls this for a task it starts).

        Rendering happens in :meth:`run`, after the upstream results were read without blocking
        the triggerer's event loop, and with the narrow context where the agent asks for it.
        """
        self._context = context

    @property
    def _in_triggerer(self) -> bool:
        # Set by the triggerer; None when the trigger runs inline (dag.test) or in a unit test.
        return self.trigger_id is not None

    # -- starting in the triggerer --------------------------------------------------------------

    async def _upstream(self, cfg: AgentConfig, ti: Any) -> tuple[dict[str, Any], dict[str, Any], str]:
        """Upstream results by alias and task id, by task id, and ``upstream_text`` (XCom reads off the loop)."""
        from airflow_agent_provider.llm.prompt import build_results
        from airflow_agent_provider.operators.control_flow import (
            decode_agent_xcom,
            flat_upstream_text,
            pull_mapped,
        )

        task_ids = list(dict.fromkeys([*cfg.upstream_tasks.values(), *cfg.critical_upstreams]))
        dag = getattr(getattr(ti, "task", None), "dag", None)

        def mapped(task_id: str) -> bool:
            try:
                return bool(dag.get_task(task_id).is_mapped) if dag is not None else False
            except Exception:
                return False

        def pull(task_id: str) -> Any:  # sync SDK calls; from a thread they go through the supervisor's loop
            if mapped(task_id):
                return [
                    build_results({task_id: task_id}, {task_id: v})[task_id]
                    for v in pull_mapped(ti, task_id, ti.run_id)
                ]
            # One map index: a GetXCom request. Without map_indexes the SDK asks for a slice of every
            # index (GetXComSequenceSlice), which the 3.3 triggerer's supervisor does not answer.
            return decode_agent_xcom(ti.xcom_pull(task_ids=task_id, map_indexes=-1))

        pulled = {task_id: await asyncio.to_thread(pull, task_id) for task_id in task_ids}
        by_task_id: dict[str, Any] = build_results(
            {t: t for t in task_ids if not isinstance(pulled[t], list)},
            {t: v for t, v in pulled.items() if not isinstance(v, list)},
        )
        by_task_id.update({t: v for t, v in pulled.items() if isinstance(v, list)})
        results = {alias: by_task_id[t] for alias, t in cfg.upstream_tasks.items()}
        results.update({t: by_task_id[t] for t in cfg.upstream_tasks.values()})
        return results, by_task_id, flat_upstream_text(cfg.upstream_tasks, results)

    def _skip(self, cfg: AgentConfig, reason: str, *, record: bool) -> _Ended:
        from airflow_agent_provider.operators.control_flow import skip_record
        from airflow_agent_provider.security.redact import scrub_value

        xcoms: dict[str, Any] = {"skip_reason": reason[:2000]}
        if record:
            xcoms["return_value"] = skip_record(reason, task_id=cfg.task_id, agent=cfg.agent_meta)
        self.log.info("Agent %s is skipped: %s", cfg.task_id, reason)
        return _Ended(TaskSkippedEvent(xcoms=scrub_value(xcoms)))

    async def _prepare(self, cfg: AgentConfig) -> AgentRun:
        """Everything the worker does before the first call, done here: the ``run`` kwargs of a deferral."""
        from airflow_agent_provider._connections import DEFAULT_CONN_IDS
        from airflow_agent_provider.agent_loop import AgentLoop, fingerprint
        from airflow_agent_provider.agent_loop.config import AgentRun, check_output_schema
        from airflow_agent_provider.hooks.llm import LLMHook, resolve_provider
        from airflow_agent_provider.llm.adapters import DEFAULT_MODELS
        from airflow_agent_provider.operators import agent_runtime as rt

        ti = self.task_instance
        if ti is None:
            raise RuntimeError("AgentTrigger without run arguments must be started by the triggerer")
        if (ti.try_number or 1) > 1:
            raise _Ended(
                trigger_event(
                    {
                        "status": "resume",
                        "reason": f"try {ti.try_number} continues on a worker, "
                        "where task_state_store holds what earlier tries paid for",
                    }
                )
            )
        results, by_task_id, text = await self._upstream(cfg, ti)
        missing = rt.missing_critical(cfg.critical_upstreams, by_task_id)
        if missing:
            raise self._skip(
                cfg,
                f"critical upstream task(s) {missing} produced no result; agent "
                f"{cfg.task_id!r} does not call the model",
                record=False,
            )
        context = dict(self._context or {})
        context.update(results=results, upstream_text=text, item=cfg.item, iteration=1, last=None)
        names = rt.expression_names(results, context, cfg.item)
        reason = rt.condition_skip_reason(cfg.condition, names, cfg.task_id)
        if reason is not None:
            raise self._skip(cfg, reason, record=True)
        rendered = {
            f: _render(getattr(cfg, f), context, cfg.prompt_context, f)
            for f in ("prompt", "system_prompt", "model", "llm_conn_id")
        }
        if cfg.output_schema is not None:
            await asyncio.to_thread(check_output_schema, cfg.output_schema)
        hook = LLMHook(llm_conn_id=rendered["llm_conn_id"], provider=cfg.provider)
        conn = await hook.aconnection()
        extras = await hook.aextras()
        provider = resolve_provider(conn.conn_type, cfg.provider)
        model = rendered["model"] or str(extras.get("default_model") or DEFAULT_MODELS[provider])
        guard = cfg.guard.for_run(
            dag_id=ti.dag_id,
            run_id=ti.run_id,
            llm_conn_id=rendered["llm_conn_id"] or DEFAULT_CONN_IDS[provider],
            conn_extras=extras,
        )
        spec = cfg.loop_spec(system=rendered["system_prompt"])
        print_ = fingerprint(
            provider, model, rendered["prompt"], rendered["system_prompt"], cfg.tools, cfg.output_schema
        )
        return AgentRun(
            loop=AgentLoop.start(
                provider=provider, model=model, prompt=rendered["prompt"], fingerprint=print_
            ),
            spec=spec,
            guard=guard,
            llm_conn_id=rendered["llm_conn_id"],
            provider=provider,
            step_prefix=f"{ti.dag_id}/{ti.run_id}/{ti.task_id}/{ti.map_index}/try{ti.try_number}",
            names={**names, "upstream_text": text},
            timeout_s=cfg.execution_timeout_s,
        )

    # -- the run --------------------------------------------------------------------------------

    async def run(self) -> AsyncIterator[TriggerEvent]:
        await aload_runtime()  # the engines, off the event loop (once per triggerer process)
        from airflow_agent_provider.agent_loop import AgentLoop
        from airflow_agent_provider.agent_loop.drive import run_async
        from airflow_agent_provider.guard.pipeline import GuardedCaller, UnsettledCharge
        from airflow_agent_provider.hooks.llm import awarm
        from airflow_agent_provider.hooks.store import aget_store
        from airflow_agent_provider.security.redact import scrub_value
        from airflow_agent_provider.triggers.llm import TargetHooks

        loop: AgentLoop | None = None
        conn_id = ""  # until the settings are known (completing them from the task can fail)
        try:
            cfg = self.agent
            conn_id = cfg.llm_conn_id
            args = self.run_args if self.run_args is not None else await self._prepare(cfg)
            conn_id, provider, guard = args.llm_conn_id, args.provider, args.guard
            loop = AgentLoop.from_dict(args.loop.to_dict())  # this run's own copy
            # SDK, prices and store load off the event loop (once per triggerer process).
            await awarm(provider, [(provider, loop.model), *((t.provider, t.model) for t in guard.fallbacks)])
            caller = GuardedCaller(await aget_store(), guard)
            host = _TriggerHost(
                args.spec, args.names, cfg.prompt, cfg.prompt_context, self._context, self.log
            )
            prefix = args.step_prefix
            running = loop
            hooks = TargetHooks(conn_id, provider)

            async def call(request: Any, on_paid: Any) -> Any:
                return await caller.acall(
                    request,
                    step_id=f"{prefix}/call{running.rounds}",
                    llm_conn_id=conn_id,
                    on_paid=on_paid,
                    call_target=hooks.call,
                    prepare_target=hooks.prepare,
                )

            # Counted from here: the time this trigger waited for a triggerer is not execution time.
            try:
                await asyncio.wait_for(run_async(loop, host, call, caller.asettle_pending), args.timeout_s)
            except asyncio.TimeoutError:
                raise ExecutionTimeout(
                    f"agent {self._label} exceeded its execution_timeout in the triggerer"
                ) from None
            result = scrub_value(loop.result(args.spec, **args.item_fields).to_dict())
        except _Ended as ended:
            yield ended.event
            return
        except UnsettledCharge as exc:
            self.log.warning("Agent %s: %s", self._label, exc)
            yield trigger_event(self._failure(exc, conn_id, loop, pending=exc.pending.to_dict()))
            return
        except Exception as exc:
            self.log.warning("Agent %s failed in the triggerer: %s: %s", self._label, type(exc).__name__, exc)
            yield trigger_event(self._failure(exc, conn_id, loop))
            return
        if self._in_triggerer:
            yield TaskSuccessEvent(xcoms={"return_value": result})
        else:
            yield trigger_event({"status": "done", "agent_result": result})

    @staticmethod
    def _failure(
        exc: BaseException, conn_id: str, loop: AgentLoop | None, pending: Any = None
    ) -> dict[str, Any]:
        """The event that resumes the task on a worker: the classified error, what was paid, what is pending."""
        from airflow_agent_provider.resilience.classify import error_event
        from airflow_agent_provider.security.redact import scrub_value

        event = error_event(exc, llm_conn_id=conn_id)
        if loop is not None and (loop.rounds or pending):
            event["loop"] = loop.to_dict()
        if pending is not None:
            event["pending"] = pending
        scrubbed: dict[str, Any] = scrub_value(event)
        return scrubbed


__all__ = ["AgentTrigger", "ExecutionTimeout"]
