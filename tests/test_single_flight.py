"""The single flight: concurrent awaiters of one key share one run; failures are not kept."""

from __future__ import annotations

import asyncio

import pytest

from airflow_agent_provider._single_flight import single_flight


def test_concurrent_awaiters_share_one_run_and_a_later_call_runs_again():
    runs: list[int] = []

    async def work() -> int:
        runs.append(1)
        await asyncio.sleep(0.05)
        return len(runs)

    async def main() -> tuple[list[int], int]:
        together = await asyncio.gather(*(single_flight("k", work) for _ in range(30)))
        later = await single_flight("k", work)  # nothing in flight: the caller's cache decides, not this
        return together, later

    together, later = asyncio.run(main())
    assert together == [1] * 30
    assert later == 2
    assert len(runs) == 2


def test_a_failed_run_reaches_every_awaiter_and_is_not_kept():
    attempts: list[int] = []

    async def flaky() -> str:
        attempts.append(1)
        await asyncio.sleep(0.01)
        if len(attempts) == 1:
            raise ConnectionError("store unreachable")
        return "open"

    async def main() -> tuple[list[object], str]:
        first = await asyncio.gather(*(single_flight("s", flaky) for _ in range(5)), return_exceptions=True)
        return first, await single_flight("s", flaky)

    first, second = asyncio.run(main())
    assert all(isinstance(e, ConnectionError) for e in first)
    assert second == "open"
    assert len(attempts) == 2


def test_a_cancelled_awaiter_does_not_cancel_the_run_for_the_others():
    async def slow() -> str:
        await asyncio.sleep(0.1)
        return "built"

    async def main() -> str:
        impatient = asyncio.ensure_future(single_flight("c", slow))
        patient = asyncio.ensure_future(single_flight("c", slow))
        await asyncio.sleep(0.01)
        impatient.cancel()
        with pytest.raises(asyncio.CancelledError):
            await impatient
        return await patient

    assert asyncio.run(main()) == "built"


def test_keys_are_separate_flights():
    async def value(v: str) -> str:
        await asyncio.sleep(0.01)
        return v

    async def main() -> list[str]:
        return list(
            await asyncio.gather(
                single_flight("a", lambda: value("a")), single_flight("b", lambda: value("b"))
            )
        )

    assert asyncio.run(main()) == ["a", "b"]
