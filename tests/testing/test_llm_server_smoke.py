"""Smoke test of the shared fixtures: the session server answers both SDKs."""

from __future__ import annotations

import anthropic
import openai


def test_fixture_server_answers_both_sdks(llm):
    oai = openai.OpenAI(base_url=llm.openai_base_url, api_key="test-key", max_retries=0)
    ant = anthropic.Anthropic(base_url=llm.anthropic_base_url, api_key="test-key", max_retries=0)
    text = oai.chat.completions.create(model="gpt-5-mini", messages=[{"role": "user", "content": "ping"}])
    msg = ant.messages.create(model="claude-haiku-4-5", max_tokens=50, messages=[{"role": "user", "content": "pong"}])
    assert text.choices[0].message.content == "[gpt-5-mini] ping"
    assert msg.content[0].text == "[claude-haiku-4-5] pong"
    assert llm.stats()["requests"] == 2
