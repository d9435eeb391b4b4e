"""Guarded model calls: budgets, breaker, rate limits, retries and fallbacks composed once."""
