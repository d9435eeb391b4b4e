"""The hook on an event loop (the triggerer): shared async clients, SDK imports off the loop, once."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import textwrap
from pathlib import Path

from airflow_agent_provider.hooks.llm import LLMHook, aclose_clients, awarm
from airflow_agent_provider.llm.types import LLMRequest, Message
from tests.fixtures.python_json import run_python_json

REPO = Path(__file__).resolve().parents[2]


def test_async_clients_are_shared_per_loop_connection_and_key(llm_connections, monkeypatch):
    async def on_one_loop():
        try:
            a = await LLMHook("agent_openai_default").get_async_conn()
            b = await LLMHook("agent_openai_default").get_async_conn()
            other = await LLMHook("agent_anthropic_default").get_async_conn()
            request = LLMRequest(
                provider="openai", model="gpt-5-mini", messages=[Message("user", "[[reply: ok]]")]
            )
            replies = await asyncio.gather(
                *(LLMHook("agent_openai_default").acomplete(request) for _ in range(20))
            )
            c = await LLMHook("agent_openai_default").get_async_conn()
            return a, b, other, c, replies
        finally:
            await aclose_clients()

    a, b, other, c, replies = asyncio.run(on_one_loop())
    assert a is b is c
    assert a is not other
    assert [r.text for r in replies] == ["ok"] * 20
    assert llm_connections.stats()["requests"] == 20

    # A rotated key is a different client (keyed by a fingerprint of the key), and a new loop gets its own.
    conn = json.loads(os.environ["AIRFLOW_CONN_AGENT_OPENAI_DEFAULT"])
    monkeypatch.setenv("AIRFLOW_CONN_AGENT_OPENAI_DEFAULT", json.dumps({**conn, "password": "rotated-key"}))

    async def again():
        try:
            return await LLMHook("agent_openai_default").get_async_conn()
        finally:
            await aclose_clients()

    rotated = asyncio.run(again())
    assert rotated is not a
    assert rotated.api_key == "rotated-key"


def test_awarm_is_cheap_once_warm():
    async def twice():
        await awarm("openai")
        await awarm()  # both SDKs and the price data; idempotent

    asyncio.run(twice())
    assert "openai" in sys.modules
    assert "anthropic" in sys.modules
    assert "genai_prices" in sys.modules


_PROBE = textwrap.dedent(
    """
    import asyncio, importlib.abc, json, sys, threading

    seen = []

    class Probe(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name in ("openai", "anthropic", "genai_prices"):
                seen.append((name, threading.current_thread().name))
            return None

    sys.meta_path.insert(0, Probe())

    from airflow_agent_provider.hooks.llm import LLMHook, aclose_clients, awarm
    from airflow_agent_provider.llm.types import LLMRequest, Message

    async def main():
        loop_thread = threading.current_thread().name
        request = LLMRequest(provider="anthropic", model="claude-sonnet-4-6", messages=[Message("user", "[[reply: ok]]")])
        # Twenty triggers start at once, before anything is imported.
        replies = await asyncio.gather(*(LLMHook("agent_anthropic_default").acomplete(request) for _ in range(20)))
        await asyncio.gather(*(awarm("openai") for _ in range(5)))
        await aclose_clients()
        return loop_thread, [r.text for r in replies]

    before = [m for m in ("openai", "anthropic", "genai_prices") if m in sys.modules]
    loop_thread, texts = asyncio.run(main())
    print(json.dumps({"before": before, "loop_thread": loop_thread, "texts": texts, "seen": seen}))
    """
)


def test_sdk_and_price_imports_happen_off_the_loop_exactly_once(llm_connections):
    result = run_python_json(_PROBE, env=dict(os.environ), cwd=REPO)
    assert result["before"] == []  # importing the hook loads no SDK and no price data
    assert result["texts"] == ["ok"] * 20
    names = [name for name, _ in result["seen"]]
    assert sorted(names) == ["anthropic", "genai_prices", "openai"]  # each imported once
    assert all(thread != result["loop_thread"] for _, thread in result["seen"])  # none on the loop's thread


_FLEET_START = textwrap.dedent(
    """
    import asyncio, json

    from airflow_agent_provider.cost import pricing
    from airflow_agent_provider.hooks import _client_cache, store
    from airflow_agent_provider.hooks.llm import LLMHook, aclose_clients, awarm
    from airflow_agent_provider.hooks.store import aget_store

    runs = {"client": 0, "prices": 0, "store": 0, "connection": 0}

    def counting(name, fn):
        def wrapper(*args, **kwargs):
            runs[name] += 1
            return fn(*args, **kwargs)
        return wrapper

    # The real functions run; the wrappers only count how often.
    _client_cache.build_client = counting("client", _client_cache.build_client)
    pricing.warm_prices = counting("prices", pricing.warm_prices)
    store._install = counting("store", store._install)
    read_connection = LLMHook.aget_connection

    async def counted_read(conn_id):
        runs["connection"] += 1
        return await read_connection(conn_id)

    LLMHook.aget_connection = staticmethod(counted_read)

    async def trigger_start():
        await awarm("openai", [("openai", "gpt-5-mini")])
        opened = await aget_store()
        hook = LLMHook("agent_openai_default")
        client = await hook.get_async_conn()
        assert (await hook.aextras()) == (await LLMHook("agent_openai_default").aextras())
        return id(opened), id(client)

    async def main():
        # Fifty triggers of one connection start at once, before anything is loaded.
        started = await asyncio.gather(*(trigger_start() for _ in range(50)))
        await aclose_clients()
        return started

    started = asyncio.run(main())
    print(json.dumps({"runs": runs, "stores": len({s for s, _ in started}), "clients": len({c for _, c in started})}))
    """
)


def test_a_fleet_starting_together_loads_prices_store_and_client_once(llm_connections, tmp_path):
    env = {**os.environ, "AIRFLOW__AGENT_PROVIDER__STORE_URL": f"sqlite:///{tmp_path / 'store.db'}"}
    env.pop("AIRFLOW__AGENT_PROVIDER__REDIS_CONN_ID", None)
    result = run_python_json(_FLEET_START, env=env, cwd=REPO)
    # Before the single flight, each of the 50 missed the caches together and loaded its own copy
    # (and read the connection through the triggerer's supervisor once per trigger).
    assert result["runs"] == {"client": 1, "prices": 1, "store": 1, "connection": 1}
    assert result["stores"] == 1
    assert result["clients"] == 1


def test_a_shared_connection_is_read_again_after_its_ttl(llm_connections, monkeypatch):
    from airflow_agent_provider.hooks import _client_cache

    monkeypatch.setattr(_client_cache, "CONNECTION_TTL_S", 1.0)

    async def keys() -> tuple[str, str, str]:
        try:
            first = (await LLMHook("agent_openai_default").aconnection()).password
            conn = json.loads(os.environ["AIRFLOW_CONN_AGENT_OPENAI_DEFAULT"])
            monkeypatch.setenv(
                "AIRFLOW_CONN_AGENT_OPENAI_DEFAULT", json.dumps({**conn, "password": "rotated-key"})
            )
            within_ttl = (await LLMHook("agent_openai_default").aconnection()).password
            await asyncio.sleep(1.1)
            after_ttl = (await LLMHook("agent_openai_default").aconnection()).password
            return first, within_ttl, after_ttl
        finally:
            await aclose_clients()

    first, within_ttl, after_ttl = asyncio.run(keys())
    assert within_ttl == first != "rotated-key"  # shared by the triggers that start together
    assert after_ttl == "rotated-key"  # a rotated key is picked up once the TTL has passed
