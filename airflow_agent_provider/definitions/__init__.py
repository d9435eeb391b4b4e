"""
Workflow definitions: the YAML schema, loading and validation (Airflow-free).

The DAG factory builds DAGs from the objects returned here and trusts them to be complete and
consistent, so everything that can be checked without Airflow is checked at load time.
"""

from __future__ import annotations

from airflow_agent_provider.cost.pricing import PriceOverride
from airflow_agent_provider.definitions.durations import parse_duration
from airflow_agent_provider.definitions.errors import Problem, WorkflowDefinitionError
from airflow_agent_provider.definitions.expressions import Expression, ExpressionError, compile_expression
from airflow_agent_provider.definitions.loader import (
    load_workflow,
    load_workflows,
    parse_workflow,
    read_workflow_text,
)
from airflow_agent_provider.definitions.models import (
    EXECUTION_MODES,
    MAX_PROMPT_CHARS,
    MAX_PROMPT_TEMPLATE_CHARS,
    PROMPT_NAMES,
    AgentDefaults,
    AgentSpec,
    BreakerSpec,
    BudgetGateSpec,
    CallRetrySpec,
    FallbackSpec,
    ModuleSpec,
    ParamSpec,
    RateLimitSpec,
    RetrySpec,
    Workflow,
    default_asset_uri,
    default_connection_id,
    effective_execution,
    qualified_id,
    resolve_dependency,
)
from airflow_agent_provider.definitions.validation import check_workflow

__all__ = [
    "EXECUTION_MODES",
    "MAX_PROMPT_CHARS",
    "MAX_PROMPT_TEMPLATE_CHARS",
    "PROMPT_NAMES",
    "AgentDefaults",
    "AgentSpec",
    "BreakerSpec",
    "BudgetGateSpec",
    "CallRetrySpec",
    "FallbackSpec",
    "Expression",
    "ExpressionError",
    "ModuleSpec",
    "ParamSpec",
    "PriceOverride",
    "Problem",
    "RateLimitSpec",
    "RetrySpec",
    "Workflow",
    "WorkflowDefinitionError",
    "check_workflow",
    "compile_expression",
    "default_asset_uri",
    "default_connection_id",
    "effective_execution",
    "load_workflow",
    "load_workflows",
    "parse_duration",
    "parse_workflow",
    "read_workflow_text",
    "qualified_id",
    "resolve_dependency",
]
