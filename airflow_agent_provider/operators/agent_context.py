"""
What an agent sees of its run: upstream results in the template context, its rendered prompt, and
the skip checks made before any model call (``critical_upstreams``, ``condition``).

A mixin of :class:`~airflow_agent_provider.operators.agent.LLMAgentOperator` (kept apart so that the
operator module reads as its execution paths). Nothing here runs at DAG parse: the attributes it
fills in are class defaults until the task runs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowSkipException

from airflow_agent_provider.operators import agent_runtime as rt

if TYPE_CHECKING:
    import jinja2
    from airflow.sdk import BaseOperator, Context

    from airflow_agent_provider.operators.agent_settings import AgentSettingsViews

    class _Base(AgentSettingsViews, BaseOperator):
        """What the mixin relies on: the operator's settings views and Airflow's operator."""

else:
    _Base = object


class AgentRunContext(_Base):
    """Upstream results, rendering and the pre-call skip checks (reads ``upstream_tasks``, ``item``, ...)."""

    # Filled in when the task runs (class defaults: nothing is set per operator at DAG parse).
    _results: dict[str, Any] | None = None
    _by_task_id: Mapping[str, Any] = MappingProxyType({})
    _prompt_template: str | None = None
    _jinja_env: jinja2.Environment | None = None
    _context: Mapping[str, Any] | None = None

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
        ctx: Any = {**context, "last": last, "iteration": iteration}  # a Context plus the iteration names
        rendered: str = self.render_template(
            self._prompt_template, ctx, self._jinja_env or self.get_template_env()
        )
        return rendered

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


__all__ = ["AgentRunContext"]
