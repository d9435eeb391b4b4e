"""
``airflow-agents costs`` splits a run's spend into real-time calls and batch requests.

Every test writes a real SQLite store file (the store's own settle path, or the table of an older
release written by hand) and runs the real CLI in a child process against it.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from airflow_agent_provider.cost.batch_pricing import batch_price
from airflow_agent_provider.cost.budget import run_scope
from airflow_agent_provider.cost.ledger import Ledger, realtime_equivalent_usd
from airflow_agent_provider.cost.pricing import price_call
from airflow_agent_provider.llm.types import Usage
from airflow_agent_provider.stores.budget_api import LedgerEntry
from airflow_agent_provider.stores.sqlite import SQLiteStore

DAG, RUN = "month_end", "manual__2026-01-31"
USAGE = Usage(input_tokens=2_000, output_tokens=500)


def _cli(store_file: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "AIRFLOW__AGENT_PROVIDER__STORE_URL": f"sqlite:///{store_file}"}
    return subprocess.run(
        [sys.executable, "-m", "airflow_agent_provider.cli.main", *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )


def _entry(
    agent: str, usd: float | None, *, delivery: str, module: str = "Close", **extra: object
) -> LedgerEntry:
    return LedgerEntry(
        entry_id=f"{module}.{agent}",
        dag_id=DAG,
        run_id=RUN,
        module=module,
        agent=agent,
        model="gpt-5-mini",
        provider="openai",
        input_tokens=USAGE.input_tokens,
        output_tokens=USAGE.output_tokens,
        usd=usd,
        price_source=str(extra.pop("price_source", "genai-prices")),
        delivery=delivery,
    )


def _charge(store: SQLiteStore, entry: LedgerEntry) -> None:
    """Settle one call the way ``Reservation.settle`` does: spend and its ledger entry together."""
    assert store.budget_settle(entry.entry_id, entry.usd, [entry], scopes=[run_scope(DAG, RUN)])


def _known(usd: float | None) -> float:
    assert usd is not None, "gpt-5-mini is priced by genai-prices"
    return usd


REALTIME_USD = _known(price_call("openai", "gpt-5-mini", USAGE).usd)
BATCH_USD = _known(batch_price("openai", "gpt-5-mini", USAGE).usd)


@pytest.fixture
def mixed_store(tmp_path: Path) -> Path:
    """Three batch requests of the Close module and one real-time summary, in a real store file."""
    path = tmp_path / "agent_provider.db"
    store = SQLiteStore(path)
    for i in range(3):
        _charge(store, _entry(f"acct_{i}", BATCH_USD, delivery="batch"))
    _charge(store, _entry("summary", REALTIME_USD, delivery="realtime", module="Report"))
    store.close()
    return path


def test_the_summary_totals_each_delivery_mode(mixed_store: Path):
    summary = Ledger(SQLiteStore(mixed_store)).run_summary(DAG, RUN)
    batch, realtime = summary.deliveries["batch"], summary.deliveries["realtime"]
    assert (batch.calls, realtime.calls) == (3, 1)
    assert batch.usd == pytest.approx(3 * BATCH_USD)
    assert realtime.usd == pytest.approx(REALTIME_USD)
    assert batch.input_tokens == 3 * USAGE.input_tokens
    assert batch.usd + realtime.usd == pytest.approx(summary.total.usd)
    assert summary.agent_deliveries == {
        "Close.acct_0": ("batch",),
        "Close.acct_1": ("batch",),
        "Close.acct_2": ("batch",),
        "Report.summary": ("realtime",),
    }
    # genai-prices has a batch rate for gpt-5-mini, or the documented half is used: about half either way.
    ratio = BATCH_USD / REALTIME_USD
    assert ratio == pytest.approx(0.5, abs=0.05)
    assert realtime_equivalent_usd(summary.entries).usd == pytest.approx(3 * REALTIME_USD)


def test_costs_table_and_json_show_realtime_and_batch_spend(mixed_store: Path):
    table = _cli(mixed_store, "costs", DAG, RUN)
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[1].split()[:2] == ["scope", "delivery"]
    totals = {line.split()[1]: line.split() for line in lines if line.startswith("TOTAL ")}
    assert totals["batch"][2] == "3"
    assert totals["batch"][6] == f"{3 * BATCH_USD:.6f}"
    assert totals["realtime"][2] == "1"
    assert totals["realtime"][6] == f"{REALTIME_USD:.6f}"
    assert lines[-2].split()[:2] == ["TOTAL", "4"]  # the whole run, both deliveries
    assert next(line for line in lines if "Close.acct_0" in line).split()[1] == "batch"
    assert "batch delivery: 3 requests cost" in table.stdout
    assert "saved" in table.stdout

    data = json.loads(_cli(mixed_store, "costs", DAG, RUN, "--json").stdout)
    assert list(data["deliveries"]) == ["realtime", "batch"]
    assert data["deliveries"]["batch"]["calls"] == 3
    assert data["deliveries"]["batch"]["usd"] == pytest.approx(3 * BATCH_USD)
    assert data["deliveries"]["realtime"]["calls"] == 1
    assert data["deliveries"]["realtime"]["input_tokens"] == USAGE.input_tokens
    assert data["total"]["usd"] == pytest.approx(3 * BATCH_USD + REALTIME_USD)
    assert data["agent_deliveries"]["Report.summary"] == ["realtime"]
    savings = data["batch_savings"]
    assert savings["realtime_usd"] == pytest.approx(3 * REALTIME_USD)
    assert savings["saved_usd"] == pytest.approx(3 * (REALTIME_USD - BATCH_USD))


def test_a_realtime_only_run_shows_zero_batch_spend(tmp_path: Path):
    path = tmp_path / "agent_provider.db"
    store = SQLiteStore(path)
    _charge(store, _entry("only", REALTIME_USD, delivery="realtime"))
    store.close()
    data = json.loads(_cli(path, "costs", DAG, RUN, "--json").stdout)
    assert data["deliveries"]["batch"] == {
        "calls": 0,
        "input_tokens": 0,
        "output_tokens": 0,
        "cached_input_tokens": 0,
        "usd": 0,
        "unknown_cost_calls": 0,
    }
    assert data["batch_savings"]["batch_calls"] == 0
    table = _cli(path, "costs", DAG, RUN)
    assert "batch delivery:" not in table.stdout  # no savings line without batch requests


def test_an_entry_marked_batch_by_its_price_source_counts_as_batch(tmp_path: Path):
    """The batch operators mark entries ``<source>+batch``; either marking is read as batch."""
    path = tmp_path / "agent_provider.db"
    store = SQLiteStore(path)
    _charge(store, _entry("acct_0", BATCH_USD, delivery="realtime", price_source="genai-prices+batch"))
    _charge(store, _entry("acct_1", 0.002, delivery="batch", price_source="override+batch"))
    summary = Ledger(store).run_summary(DAG, RUN)
    assert summary.deliveries["batch"].calls == 2
    assert summary.deliveries["realtime"].calls == 0
    # An override was charged at override x 0.5: its real-time price is twice the charge.
    assert realtime_equivalent_usd(summary.entries).usd == pytest.approx(REALTIME_USD + 0.004)


#: ``budget_ledger`` as the releases before batch delivery created it (no ``delivery`` column).
OLD_LEDGER_TABLE = """
CREATE TABLE budget_ledger (
    entry_id TEXT PRIMARY KEY,
    reservation_id TEXT,
    dag_id TEXT NOT NULL,
    run_id TEXT NOT NULL,
    module TEXT NOT NULL,
    agent TEXT NOT NULL,
    model TEXT NOT NULL,
    provider TEXT NOT NULL,
    input_tokens INTEGER NOT NULL,
    output_tokens INTEGER NOT NULL,
    cached_input_tokens INTEGER NOT NULL,
    usd REAL,
    price_source TEXT NOT NULL,
    ts REAL NOT NULL
)
"""


def test_a_store_file_from_before_batch_delivery_still_reads(tmp_path: Path):
    path = tmp_path / "old_store.db"
    with sqlite3.connect(path) as old:
        old.execute(OLD_LEDGER_TABLE)
        old.executemany(
            "INSERT INTO budget_ledger VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    f"e{i}",
                    f"e{i}",
                    DAG,
                    RUN,
                    "Close",
                    f"acct_{i}",
                    "gpt-5-mini",
                    "openai",
                    2000,
                    500,
                    0,
                    0.001,
                    "genai-prices",
                    1.0 + i,
                )
                for i in range(2)
            ],
        )
    old.close()

    data = json.loads(_cli(path, "costs", DAG, RUN, "--json").stdout)
    assert data["total"]["calls"] == 2
    assert data["deliveries"]["realtime"]["calls"] == 2  # they were real-time calls
    assert data["deliveries"]["realtime"]["usd"] == pytest.approx(0.002)
    assert data["deliveries"]["batch"]["calls"] == 0
    table = _cli(path, "costs", DAG, RUN)
    assert table.returncode == 0, table.stderr
    assert "Close.acct_1" in table.stdout

    # The file was brought up to date when it was opened: new entries carry their delivery.
    with sqlite3.connect(path) as upgraded:
        columns = {row[1] for row in upgraded.execute("PRAGMA table_info(budget_ledger)")}
    upgraded.close()
    assert "delivery" in columns
