"""The budget engine: scopes, BudgetExceeded, unknown prices, settle/release and the run summary."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from airflow_agent_provider.cost.budget import (
    BudgetExceeded,
    BudgetGuard,
    BudgetLimits,
    CallScope,
    UnpricedModelError,
)
from airflow_agent_provider.cost.ledger import Ledger
from airflow_agent_provider.cost.pricing import (
    CallCost,
    PriceOverride,
    max_call_cost,
    price_call,
)
from airflow_agent_provider.llm.types import Usage

AT = datetime(2026, 11, 30, 23, 59, tzinfo=timezone.utc)


def call(agent="reconcile", module="Finance", model="gpt-5-mini", provider="openai", run_id="r1"):
    return CallScope("erp", run_id, module, agent, model, provider, at=AT)


def test_scope_keys_are_utc():
    scope = CallScope("erp", "r1", "Finance", "rec", "m", "openai", at=datetime(2026, 12, 1, 1, 0))
    assert scope.run_key == "run:erp:r1"
    assert scope.module_key == "module:erp:r1:Finance"
    assert scope.agent_key == "agent:erp:r1:Finance.rec"
    assert scope.day_key == "day:erp:2026-12-01"
    assert scope.month_key == "month:erp:2026-12"
    from datetime import timedelta

    late = CallScope(
        "erp", "r1", "F", "a", "m", "p", at=datetime(2026, 12, 1, 1, 0, tzinfo=timezone(timedelta(hours=3)))
    )
    assert late.day_key == "day:erp:2026-11-30"


def test_reserve_settle_charges_every_scope(budget_store):
    guard = BudgetGuard(budget_store)
    usage = Usage(2_000, 300, 500)
    cost = price_call("openai", "gpt-5-mini", usage)
    held = guard.reserve(
        call(),
        max_call_cost("openai", "gpt-5-mini", 2_000, 1_024),
        BudgetLimits(run_cost_budget=1.0),
        reservation_id="erp:r1:Finance.reconcile:1",
    )
    assert held.settle(cost, usage) is True
    for key in (call().agent_key, call().module_key, call().run_key, call().day_key, call().month_key):
        assert budget_store.budget_spent(key) == pytest.approx(cost.usd)


def test_budget_exceeded_names_scope_limit_spent_reserved_and_amount(budget_store):
    guard = BudgetGuard(budget_store)
    limits = BudgetLimits(agent_cost_limit=0.5, run_cost_budget=10.0)
    guard.reserve(call(), 0.3, limits, reservation_id="one").settle(CallCost(0.3, "override"), Usage(1, 1))
    guard.reserve(call(), 0.1, limits, reservation_id="two")
    with pytest.raises(BudgetExceeded) as info:
        guard.reserve(call(), 0.2, limits, reservation_id="three")
    err = info.value
    assert err.permanent is True
    assert (err.scope, err.limit, err.amount) == ("agent:erp:r1:Finance.reconcile", 0.5, 0.2)
    assert err.spent == pytest.approx(0.3)
    assert err.reserved == pytest.approx(0.1)
    text = str(err)
    for part in ("agent:erp:r1:Finance.reconcile", "$0.500000", "$0.300000", "$0.100000", "$0.200000"):
        assert part in text
    # Another agent of the same run still has room under the run budget.
    guard.reserve(call(agent="other"), 0.2, limits, reservation_id="four")


def test_run_budget_refuses_other_agents_too(budget_store):
    guard = BudgetGuard(budget_store)
    limits = BudgetLimits(agent_cost_limit=5.0, module_cost_budget=5.0, run_cost_budget=1.0)
    guard.reserve(call(agent="a", module="HR"), 0.9, limits, reservation_id="a")
    with pytest.raises(BudgetExceeded) as info:
        guard.reserve(call(agent="b", module="Finance"), 0.2, limits, reservation_id="b")
    assert info.value.scope == "run:erp:r1"


def test_daily_and_monthly_budgets_span_runs(budget_store):
    guard = BudgetGuard(budget_store)
    limits = BudgetLimits(daily_budget=1.0, monthly_budget=1.5)
    guard.reserve(call(run_id="r1"), 0.8, limits, reservation_id="x").settle(
        CallCost(0.8, "override"), Usage()
    )
    with pytest.raises(BudgetExceeded) as info:
        guard.reserve(call(run_id="r2"), 0.3, limits, reservation_id="y")
    assert info.value.scope == "day:erp:2026-11-30"


def test_unknown_price_is_refused_under_a_budget(budget_store):
    guard = BudgetGuard(budget_store)
    unknown = call(model="my-finetune")
    with pytest.raises(UnpricedModelError) as info:
        guard.reserve(
            unknown,
            max_call_cost("openai", "my-finetune", 100, 100),
            BudgetLimits(monthly_budget=100.0),
            reservation_id="u",
        )
    assert info.value.permanent is True
    assert "my-finetune" in str(info.value)
    assert "price:" in str(info.value)
    assert "monthly_budget" in str(info.value)


def test_unknown_price_without_budgets_is_recorded_as_unknown(budget_store):
    guard = BudgetGuard(budget_store)
    unknown = call(model="my-finetune")
    usage = Usage(1000, 100)
    held = guard.reserve(unknown, None, BudgetLimits(), reservation_id="u")
    held.settle(price_call("openai", "my-finetune", usage), usage)
    summary = Ledger(budget_store).run_summary("erp", "r1")
    assert summary.total.unknown_cost_calls == 1
    assert summary.total.usd == 0.0
    assert summary.total.input_tokens == 1000
    assert summary.entries[0].usd is None
    assert summary.entries[0].price_source == "unknown"


def test_override_makes_an_unknown_model_budgetable(budget_store):
    override = PriceOverride(input_per_mtok=1.0, output_per_mtok=2.0)
    amount = max_call_cost("openai", "my-finetune", 1_000, 1_000, override)
    held = BudgetGuard(budget_store).reserve(
        call(model="my-finetune"), amount, BudgetLimits(run_cost_budget=1.0), reservation_id="o"
    )
    assert held.amount_usd == pytest.approx(0.003)


def test_release_frees_the_budget(budget_store):
    guard = BudgetGuard(budget_store)
    limits = BudgetLimits(run_cost_budget=1.0)
    guard.reserve(call(), 0.9, limits, reservation_id="a").release()
    guard.reserve(call(), 0.9, limits, reservation_id="b")


def test_retry_with_same_reservation_id_never_charges_twice(budget_store):
    guard = BudgetGuard(budget_store)
    limits = BudgetLimits(run_cost_budget=1.0)
    cost, usage = CallCost(0.4, "override"), Usage(10, 10)
    for _try in range(3):
        held = guard.reserve(call(), 0.6, limits, reservation_id="erp:r1:Finance.reconcile:step-1")
        held.settle(cost, usage)
    assert budget_store.budget_spent(call().run_key) == pytest.approx(0.4)
    assert len(Ledger(budget_store).entries("erp", "r1")) == 1


def test_run_summary_per_module_and_agent(budget_store):
    guard = BudgetGuard(budget_store)
    calls = [
        ("Finance", "reconcile", 0.10, Usage(1000, 100, 200)),
        ("Finance", "reconcile", 0.05, Usage(500, 50)),
        ("Finance", "forecast", 0.20, Usage(2000, 200)),
        ("HR", "payroll", 0.01, Usage(100, 10)),
    ]
    for i, (module, agent, usd, usage) in enumerate(calls):
        guard.reserve(call(agent=agent, module=module), usd, BudgetLimits(), reservation_id=f"c{i}").settle(
            CallCost(usd, "override"), usage
        )
    guard.reserve(call(run_id="other"), 1.0, BudgetLimits(), reservation_id="x").settle(
        CallCost(1.0, "override"), Usage()
    )
    summary = Ledger(budget_store).run_summary("erp", "r1")
    assert summary.total.calls == 4
    assert summary.total.usd == pytest.approx(0.36)
    assert summary.modules["Finance"].usd == pytest.approx(0.35)
    assert summary.agents["Finance.reconcile"].calls == 2
    assert summary.agents["Finance.reconcile"].input_tokens == 1500
    assert summary.agents["Finance.reconcile"].cached_input_tokens == 200
    assert summary.agents["HR.payroll"].output_tokens == 10
    assert summary.to_dict()["total"]["usd"] == pytest.approx(0.36)
    assert Ledger(budget_store).run_totals("erp", "r1").spent == pytest.approx(0.36)
    assert Ledger(budget_store).module_totals("erp", "r1", "HR").spent == pytest.approx(0.01)


def test_limits_validate():
    with pytest.raises(ValueError, match="run_cost_budget must be a non-negative"):
        BudgetLimits(run_cost_budget=-1)
    assert not BudgetLimits().any
    assert BudgetLimits(daily_budget=0).any
