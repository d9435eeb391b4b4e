"""SDK clients bound to the shared ``llm`` server, with the SDK's own retries off.

Retries are off so that every injected failure surfaces as the SDK's exception instead of being
hidden by the client's back-off.
"""

from __future__ import annotations

import anthropic
import openai
import pytest

API_KEY = "test-key"


@pytest.fixture
def oai(llm) -> openai.OpenAI:
    return openai.OpenAI(base_url=llm.openai_base_url, api_key=API_KEY, max_retries=0)


@pytest.fixture
def ant(llm) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=llm.anthropic_base_url, api_key=API_KEY, max_retries=0)
