"""
Pick the adapter of a provider.

One lookup table, so that adding a provider (or an OpenAI-compatible flavour) is one line here and
one adapter module, and nothing else in the provider branches on the provider name.
"""

from __future__ import annotations

from types import ModuleType

from airflow_agent_provider.llm import anthropic_adapter, openai_adapter

ADAPTERS: dict[str, ModuleType] = {
    openai_adapter.PROVIDER: openai_adapter,
    anthropic_adapter.PROVIDER: anthropic_adapter,
}

#: Model used when neither the task nor the connection names one.
DEFAULT_MODELS: dict[str, str] = {"openai": "gpt-5-mini", "anthropic": "claude-sonnet-4-6"}


def get_adapter(provider: str) -> ModuleType:
    """The adapter module (``build_kwargs``, ``parse``) of ``provider``; ValueError if unknown."""
    try:
        return ADAPTERS[provider]
    except KeyError:
        raise ValueError(f"unknown LLM provider {provider!r}; expected one of {sorted(ADAPTERS)}") from None
