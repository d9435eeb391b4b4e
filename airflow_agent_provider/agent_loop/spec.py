"""
What the loop needs to know about its agent: the per-run spec, the inputs' fingerprint, the output check.

JSON-safe and Airflow-free: the operator builds the spec, the trigger carries it, the loop reads it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from airflow_agent_provider.exceptions import OutputValidationError

#: Longest excerpt of a non-JSON reply quoted in an :class:`OutputValidationError`.
_EXCERPT = 80


def validate_output(text: str, schema: Mapping[str, Any], agent: str) -> Any:
    """Parse ``text`` as JSON and validate it against ``schema``; the parsed value, or an error."""
    import jsonschema  # only when an answer is validated: never at DAG parse

    try:
        data = json.loads(text)
    except ValueError as exc:
        excerpt = text if len(text) <= _EXCERPT else text[: _EXCERPT - 3] + "..."
        raise OutputValidationError(agent, "$", f"the reply is not valid JSON ({exc}): {excerpt!r}") from None
    validator_cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    error = jsonschema.exceptions.best_match(validator_cls(schema).iter_errors(data))
    if error is not None:
        raise OutputValidationError(agent, error.json_path, error.message)
    return data


def fingerprint(
    provider: str, model: str, prompt: str, system: str | None, tools: Mapping[str, str], output_schema: Any
) -> str:
    """Identifies an agent's inputs: a stored loop is resumed only if they did not change."""
    basis = json.dumps(
        [provider, model, prompt, system, sorted(tools.items()), output_schema], sort_keys=True, default=str
    )
    return hashlib.sha256(basis.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class LoopSpec:
    """
    What the loop needs to know about its agent (the rendered, per-run view; JSON-safe).

    It does not hold the prompt: the first prompt is the loop's first message, and later
    iterations' prompts come from the caller's renderer.
    """

    task_id: str = "agent"
    #: ``module.agent`` (or the task id): how messages name the agent.
    label: str = "agent"
    system: str | None = None
    temperature: float | None = None
    max_tokens: int = 1024
    timeout: float | None = None
    output_schema: dict[str, Any] | None = None
    max_rounds: int = 8
    repeat_until: str | None = None
    max_iterations: int = 3
    agent_meta: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LoopSpec:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})
