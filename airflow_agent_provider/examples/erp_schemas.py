"""
Pydantic models of structured agent answers, named by ``output_schema:`` in the example workflows.

A model (rather than an inline JSON Schema) is the natural choice when Python code downstream reads the
answer too: the same class validates it. ``extra="forbid"`` makes the schema say
``additionalProperties: false``, which OpenAI's strict structured outputs require.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class ReorderProposal(BaseModel):
    """A purchase proposal for one stock keeping unit that is at or below its reorder point."""

    model_config = ConfigDict(extra="forbid")

    sku: str = Field(description="The stock keeping unit, e.g. SKU-1002.")
    order_quantity: int = Field(description="Units to order.")
    estimated_cost_eur: float = Field(description="order_quantity x unit cost, in EUR.")
    urgency: Literal["low", "medium", "high"]
    rationale: str = Field(description="One or two sentences: stock, reorder point, why this quantity.")


class PolicyFinding(BaseModel):
    """The outcome of checking one compliance policy against the month-end close."""

    model_config = ConfigDict(extra="forbid")

    policy_id: str = Field(description="The policy checked, e.g. SOD-01.")
    status: Literal["compliant", "exception", "not_assessed"]
    finding: str = Field(description="What was checked and what was found.")
    action: str = Field(description="The follow-up needed before sign-off, or 'none'.")
