"""Budget store operations on both backends: settle, release, expiry, idempotency, multi-scope."""

from __future__ import annotations

import math

import pytest

from airflow_agent_provider.stores.budget_api import LedgerEntry

RUN = "run:d:r1"
AGENT = "agent:d:r1:M.a"
DAY = "day:d:2026-11-24"


def test_reserve_then_settle_charges_real_cost_and_frees_the_rest(budget_store):
    first = budget_store.budget_reserve("c1", [(RUN, 1.0), (DAY, math.inf)], 0.6, 60)
    assert first.granted
    assert first.reserved == pytest.approx(0.6)
    assert first.limit == 1.0
    assert budget_store.budget_reserved(RUN) == pytest.approx(0.6)
    assert budget_store.budget_reserved(DAY) == pytest.approx(0.6)

    refused = budget_store.budget_reserve("c2", [(RUN, 1.0)], 0.5, 60)
    assert not refused.granted
    assert (refused.refused_scope, refused.spent, refused.limit) == (RUN, 0.0, 1.0)
    assert refused.reserved == pytest.approx(0.6)

    assert budget_store.budget_settle("c1", 0.25) is True
    assert budget_store.budget_spent(RUN) == pytest.approx(0.25)
    assert budget_store.budget_spent(DAY) == pytest.approx(0.25)
    assert budget_store.budget_reserved(RUN) == 0.0
    assert budget_store.budget_reserve("c2", [(RUN, 1.0)], 0.5, 60).granted


def test_settle_above_reservation_records_the_truth(budget_store):
    budget_store.budget_reserve("c1", [(RUN, 1.0)], 0.1, 60)
    budget_store.budget_settle("c1", 0.3)
    assert budget_store.budget_spent(RUN) == pytest.approx(0.3)


def test_release_frees_without_charging(budget_store):
    budget_store.budget_reserve("c1", [(RUN, 1.0)], 0.9, 60)
    assert budget_store.budget_release("c1") is True
    assert budget_store.budget_release("c1") is False
    totals = budget_store.budget_totals(RUN)
    assert (totals.spent, totals.reserved, totals.calls) == (0.0, 0.0, 0)
    # A released id may reserve again (the retry of a call that never happened).
    assert budget_store.budget_reserve("c1", [(RUN, 1.0)], 0.9, 60).duplicate is False


def test_expired_reservation_stops_counting_but_a_late_settle_is_charged(budget_store):
    # ttl 0: expired as soon as it is taken, the state of a worker that died mid-call.
    budget_store.budget_reserve("dead", [(RUN, 1.0)], 0.9, 0)
    assert budget_store.budget_reserved(RUN) == 0.0
    assert budget_store.budget_reserve("alive", [(RUN, 1.0)], 0.9, 60).granted
    # If the dead worker's call did reach the provider, its cost is still recorded.
    assert budget_store.budget_settle("dead", 0.05) is True
    assert budget_store.budget_spent(RUN) == pytest.approx(0.05)
    assert budget_store.budget_release("dead") is False


def test_reserve_is_idempotent_per_id(budget_store):
    assert budget_store.budget_reserve("c1", [(RUN, 1.0)], 0.6, 60).granted
    again = budget_store.budget_reserve("c1", [(RUN, 1.0)], 0.6, 60)
    assert again.granted
    assert again.duplicate
    assert budget_store.budget_reserved(RUN) == pytest.approx(0.6)


def test_settle_is_idempotent_so_a_retry_never_charges_twice(budget_store):
    entry = LedgerEntry("c1", "d", "r1", "M", "a", "gpt-5-mini", "openai", 100, 20, 0, 0.2, "genai-prices")
    budget_store.budget_reserve("c1", [(RUN, 1.0)], 0.5, 60)
    assert budget_store.budget_settle("c1", 0.2, [entry]) is True
    # The retried task reserves and settles the same step again.
    assert budget_store.budget_reserve("c1", [(RUN, 1.0)], 0.5, 60).duplicate
    assert budget_store.budget_reserved(RUN) == 0.0
    assert budget_store.budget_settle("c1", 0.2, [entry]) is False
    assert budget_store.budget_totals(RUN).calls == 1
    assert budget_store.budget_spent(RUN) == pytest.approx(0.2)
    assert len(budget_store.ledger_entries("d", "r1")) == 1


def test_settle_without_reservation_uses_given_scopes(budget_store):
    assert budget_store.budget_settle("free", 0.01, scopes=[RUN, DAY]) is True
    assert budget_store.budget_spent(RUN) == budget_store.budget_spent(DAY) == pytest.approx(0.01)
    assert budget_store.budget_settle("free", 0.01, scopes=[RUN, DAY]) is False


def test_agent_limit_refuses_while_run_budget_has_room(budget_store):
    scopes = [(AGENT, 0.5), (RUN, 5.0)]
    assert budget_store.budget_reserve("a1", scopes, 0.4, 60).granted
    refused = budget_store.budget_reserve("a2", scopes, 0.2, 60)
    assert (refused.granted, refused.refused_scope) == (False, AGENT)
    # Nothing was taken from the run scope by the refused call: all or none.
    assert budget_store.budget_reserved(RUN) == pytest.approx(0.4)


def test_run_budget_refuses_while_agent_limit_has_room(budget_store):
    budget_store.budget_reserve("other", [("agent:d:r1:M.b", 5.0), (RUN, 1.0)], 0.8, 60)
    refused = budget_store.budget_reserve("a1", [(AGENT, 5.0), (RUN, 1.0)], 0.3, 60)
    assert (refused.granted, refused.refused_scope) == (False, RUN)
    assert refused.spent + refused.reserved + 0.3 > refused.limit
    assert budget_store.budget_reserved(AGENT) == 0.0


def test_unlimited_scopes_are_tracked_never_refused(budget_store):
    result = budget_store.budget_reserve("c1", [(DAY, math.inf)], 1e6, 60)
    assert result.granted
    assert result.limit == math.inf
    assert budget_store.budget_reserve("c2", [], 1.0, 60).granted


def test_ledger_entries_by_run(budget_store):
    for i, run in enumerate(["r1", "r1", "r2"]):
        entry = LedgerEntry(
            f"c{i}", "d", run, "M", "a", "m", "openai", 10, 5, 2, None if i == 1 else 0.01, "x", ts=100.0 + i
        )
        budget_store.budget_settle(f"c{i}", entry.usd, [entry], scopes=[f"run:d:{run}"])
    rows = budget_store.ledger_entries("d", "r1")
    assert [(e.entry_id, e.usd, e.ts) for e in rows] == [("c0", 0.01, 100.0), ("c1", None, 101.0)]
    assert rows[0].reservation_id == "c0"
    assert rows[0].cached_input_tokens == 2
    assert budget_store.ledger_entries("d", "nope") == []
