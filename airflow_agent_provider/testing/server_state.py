"""
Configuration, counters and statistics of the local LLM server.

All request handlers share one :class:`ServerState`. uvicorn runs them on one event loop, but the
state is also read from other threads (``LLMServer.state``), so every mutation holds a lock.
"""

from __future__ import annotations

import random
import threading
import time
from collections import deque
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from airflow_agent_provider.testing.scripting import FAIL_CODES, FailSpec

if TYPE_CHECKING:
    from airflow_agent_provider.testing.wire import Api

DEFAULT_MODELS = ["gpt-5-mini", "gpt-4o-mini", "claude-sonnet-4-6", "claude-haiku-4-5"]


def _default_fail_mix() -> list[int | str]:
    return [429, 500, 529, "slow"]


class ServerConfig(BaseModel):
    """Run-time behaviour of the server; unknown fields are rejected so typos fail loudly."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    latency: float = Field(0.0, ge=0)
    fail_rate: float = Field(0.0, ge=0, le=1)
    fail_mix: list[int | str] = Field(default_factory=_default_fail_mix)
    slow_seconds: float = Field(2.0, ge=0)
    seed: int | None = None
    retry_after: str = "1"
    ratelimit_requests_limit: int = 10_000
    ratelimit_requests_remaining: int | None = None
    ratelimit_tokens_limit: int = 2_000_000
    ratelimit_tokens_remaining: int | None = None
    ratelimit_reset_seconds: float = 1.0
    models: list[str] = Field(default_factory=lambda: list(DEFAULT_MODELS))
    #: Tools that carry the final structured answer (see rule 4b of the module docstring).
    answer_tools: list[str] = Field(default_factory=lambda: ["agent_output"])
    log_limit: int = 10_000

    @field_validator("fail_mix")
    @classmethod
    def _known_failures(cls, mix: list[int | str]) -> list[int | str]:
        """Only status codes the server can render and ``"slow"``; anything else is a typo."""
        out: list[int | str] = []
        for item in mix:
            value: int | str = int(item) if isinstance(item, str) and item.strip().isdigit() else item
            if value != "slow" and value not in FAIL_CODES:
                raise ValueError(f"fail_mix: {item!r} is neither 'slow' nor one of {sorted(FAIL_CODES)}")
            out.append(value)
        return out


class ServerState:
    """Config, counters and statistics shared by all requests; guarded by one lock."""

    def __init__(self, config: ServerConfig) -> None:
        self._start_config = config.model_copy(deep=True)
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.config = self._start_config.model_copy(deep=True)
            self._rng = random.Random(self.config.seed)
            self._fail_counts: dict[tuple[str, str], int] = {}
            self._window: deque[tuple[float, int]] = deque()
            self.requests = 0
            self.by_path: dict[str, int] = {}
            self.by_model: dict[str, int] = {}
            self.by_status: dict[str, int] = {}
            self.in_flight = 0
            self.max_in_flight = 0
            self.log: deque[dict[str, Any]] = deque(maxlen=max(1, self.config.log_limit))

    def configure(self, fields: dict[str, Any]) -> ServerConfig:
        with self._lock:
            merged = self.config.model_dump() | fields
            self.config = ServerConfig(**merged)
            if "seed" in fields:
                self._rng = random.Random(self.config.seed)
            if "log_limit" in fields:
                self.log = deque(self.log, maxlen=max(1, self.config.log_limit))
            return self.config

    def begin(self) -> float:
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        return time.time()

    def end(self, entry: dict[str, Any]) -> None:
        with self._lock:
            self.in_flight -= 1
            self.requests += 1
            path, model, status = entry["path"], entry["model"] or "", str(entry["status"])
            self.by_path[path] = self.by_path.get(path, 0) + 1
            if model:
                self.by_model[model] = self.by_model.get(model, 0) + 1
            self.by_status[status] = self.by_status.get(status, 0) + 1
            self.log.append(entry)

    def scripted_failure(self, spec: FailSpec | None, first_user: str) -> int | None:
        """Status code to fail with for a marker/header spec, counting ``xN`` specs."""
        if spec is None:
            return None
        if spec.times is None:
            return spec.code
        key = (spec.marker, first_user)
        with self._lock:
            seen = self._fail_counts.get(key, 0)
            if seen >= spec.times:
                return None
            self._fail_counts[key] = seen + 1
        return spec.code

    def random_failure(self) -> int | str | None:
        """One draw of the seeded generator: a code, ``"slow"`` or None."""
        with self._lock:
            cfg = self.config
            if cfg.fail_rate <= 0 or not cfg.fail_mix:
                return None
            if self._rng.random() >= cfg.fail_rate:
                return None
            choice = self._rng.choice(cfg.fail_mix)
        if isinstance(choice, str) and choice.strip().isdigit():
            return int(choice)
        return choice

    def rate_limit_headers(self, api: Api, tokens: int, exhausted: bool) -> dict[str, str]:
        """Rate-limit headers after a request costing ``tokens``; ``exhausted`` forces remaining 0."""
        now = time.time()
        with self._lock:
            cfg = self.config
            self._window.append((now, tokens))
            while self._window and self._window[0][0] < now - 60:
                self._window.popleft()
            used_requests = len(self._window)
            used_tokens = sum(t for _, t in self._window)
        req_limit, tok_limit = cfg.ratelimit_requests_limit, cfg.ratelimit_tokens_limit
        req_left = cfg.ratelimit_requests_remaining
        tok_left = cfg.ratelimit_tokens_remaining
        req_left = max(0, req_limit - used_requests) if req_left is None else req_left
        tok_left = max(0, tok_limit - used_tokens) if tok_left is None else tok_left
        if exhausted:
            req_left = tok_left = 0
        reset = cfg.ratelimit_reset_seconds
        if api == "openai":
            reset_text = f"{int(reset * 1000)}ms" if reset < 1 else f"{reset:g}s"
            return {
                "x-ratelimit-limit-requests": str(req_limit),
                "x-ratelimit-remaining-requests": str(req_left),
                "x-ratelimit-reset-requests": reset_text,
                "x-ratelimit-limit-tokens": str(tok_limit),
                "x-ratelimit-remaining-tokens": str(tok_left),
                "x-ratelimit-reset-tokens": reset_text,
            }
        reset_at = (datetime.now(timezone.utc) + timedelta(seconds=reset)).strftime("%Y-%m-%dT%H:%M:%SZ")
        return {
            "anthropic-ratelimit-requests-limit": str(req_limit),
            "anthropic-ratelimit-requests-remaining": str(req_left),
            "anthropic-ratelimit-requests-reset": reset_at,
            "anthropic-ratelimit-tokens-limit": str(tok_limit),
            "anthropic-ratelimit-tokens-remaining": str(tok_left),
            "anthropic-ratelimit-tokens-reset": reset_at,
        }

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {
                "requests": self.requests,
                "by_path": dict(self.by_path),
                "by_model": dict(self.by_model),
                "by_status": dict(self.by_status),
                "in_flight": self.in_flight,
                "max_in_flight": self.max_in_flight,
                "log": list(self.log),
            }
