"""
An agent operator's settings as one typed object, set once, and the attribute views over it.

Why one object: every attribute assigned on an Airflow operator goes through
``BaseOperator.__setattr__`` (a converter lookup, the init-kwargs bookkeeping, the XComArg check
for templated fields), and a DAG file of 500 agents builds 500 operators at every parse — which
happens at every task start. So ``LLMAgentOperator.__init__`` assigns its templated fields
(Airflow renders them by attribute) and this one :class:`AgentSettings`; everything else the
operator, its batch subclasses and the run record read by name (``op.tools``, ``op.guard``,
``op.execution_mode``, ...) is a read-only property of :class:`AgentSettingsViews` over it.
``execution_mode`` alone may be set again (the batch operator falls back to the worker path).

Nothing here is serialized with the DAG: Airflow serializes the templated fields and, for a
triggerer-only agent, ``start_trigger_args`` (whose kwargs are ``AgentConfig.to_start_kwargs()``:
the fields that differ from their defaults and that the task does not already carry).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_agent_provider.agent_loop.config import AgentConfig
    from airflow_agent_provider.cost.pricing import PriceOverride
    from airflow_agent_provider.guard.config import GuardConfig


@dataclass(slots=True)
class AgentSettings:
    """
    What an agent operator knows when its DAG is built, beyond its templated fields.

    ``config`` holds the templated fields as they were given (unrendered); the operator's own
    attributes are what Airflow renders, so :meth:`AgentSettingsViews.agent_config` reads them.
    """

    config: AgentConfig
    execution: str = "auto"
    execution_mode: str = "worker"
    deferrable: bool = False


class AgentSettingsViews:
    """The settings by attribute name, read-only (``execution_mode`` aside); mixed into the operator."""

    _settings: AgentSettings
    # The templated fields and Airflow's own, which the operator keeps as plain attributes.
    task_id: str
    prompt: str
    system_prompt: str | None
    model: str | None
    llm_conn_id: str
    execution_timeout: Any

    def agent_config(self) -> AgentConfig:
        """This agent's static settings (templates as they are now), as the triggers receive them."""
        config = self._settings.config
        timeout = self.execution_timeout
        timeout_s = timeout.total_seconds() if timeout is not None else None
        if (config.task_id, config.prompt, config.system_prompt, config.model, config.llm_conn_id) == (
            self.task_id,
            self.prompt,
            self.system_prompt,
            self.model,
            self.llm_conn_id,
        ) and config.execution_timeout_s == timeout_s:
            return config
        return dataclasses.replace(
            config,
            task_id=self.task_id,
            prompt=self.prompt,
            system_prompt=self.system_prompt,
            model=self.model,
            llm_conn_id=self.llm_conn_id,
            execution_timeout_s=timeout_s,
        )

    @property
    def provider(self) -> str | None:
        return self._settings.config.provider

    @property
    def temperature(self) -> float | None:
        return self._settings.config.temperature

    @property
    def max_tokens(self) -> int:
        return self._settings.config.max_tokens

    @property
    def request_timeout(self) -> float | None:
        return self._settings.config.request_timeout

    @property
    def tools(self) -> dict[str, str]:
        return self._settings.config.tools

    @property
    def max_rounds(self) -> int:
        return self._settings.config.max_rounds

    @property
    def max_iterations(self) -> int:
        return self._settings.config.max_iterations

    @property
    def upstream_tasks(self) -> dict[str, str]:
        return self._settings.config.upstream_tasks

    @property
    def critical_upstreams(self) -> list[str]:
        return self._settings.config.critical_upstreams

    @property
    def agent_meta(self) -> dict[str, Any]:
        return self._settings.config.agent_meta

    @property
    def output_schema(self) -> dict[str, Any] | None:
        return self._settings.config.output_schema

    @property
    def condition(self) -> str | None:
        return self._settings.config.condition

    @property
    def repeat_until(self) -> str | None:
        return self._settings.config.repeat_until

    @property
    def item(self) -> Any:
        return self._settings.config.item

    @property
    def prompt_context(self) -> str:
        return self._settings.config.prompt_context

    @property
    def guard(self) -> GuardConfig:
        return self._settings.config.guard

    @property
    def execution(self) -> str:
        return self._settings.execution

    @property
    def deferrable(self) -> bool:
        return self._settings.deferrable

    @property
    def execution_mode(self) -> str:
        return self._settings.execution_mode

    @execution_mode.setter
    def execution_mode(self, mode: str) -> None:
        self._settings.execution_mode = mode

    # Views of ``guard`` for the run record (``operators/result.py`` reads them by name).

    @property
    def budget(self) -> dict[str, float]:
        from airflow_agent_provider.guard.config import BUDGET_KEYS

        budgets = self.guard.budgets
        return {name: value for name in sorted(BUDGET_KEYS) if (value := getattr(budgets, name)) is not None}

    @property
    def rate_limits(self) -> list[dict[str, Any]]:
        return [rule.to_dict() for rule in self.guard.rate_limits]

    @property
    def price_override(self) -> PriceOverride | None:
        return self.guard.price_override


__all__ = ["AgentSettings", "AgentSettingsViews"]
