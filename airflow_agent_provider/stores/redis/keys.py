"""
The Redis store's key layout: every key name, for every concern, in one place.

Why one module: concerns read each other's keys (the run index scans the budget ledger and counts
the rate-limit logs), so the names are a contract between them, not a detail of one. Everything
lives under the store's prefix (``aap:`` by default):

- rate limits: ``rl:{<key>}:log|meta|lease`` (one hash tag, so a cluster keeps them on one slot);
- circuit breaker: ``breaker:{<key>}`` (state hash), ``...:failures``, ``...:trials``;
- budget: ``bud:res:<id>``, ``bud:live:<scope>``, ``bud:ramt:<scope>``, ``bud:scope:<scope>`` (built
  inside the budget scripts from the prefix, since a settle learns its scopes on the server) and
  ``bud:ledger:<dag_id>:<run_id>``;
- run index: ``runs:rec:<dag_id>:<run_id>``, ``runs:recent``, ``runs:dag:<dag_id>``.
"""

from __future__ import annotations

#: The most rate-limit key triples kept ready; the cache is emptied past it.
_RATE_LIMIT_CACHE = 10_000


class KeyLayout:
    """Key names under one prefix."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self._rate_limit: dict[str, tuple[str, str, str]] = {}

    def key(self, *parts: str) -> str:
        return self.prefix + ":".join(parts)

    def rate_limit(self, key: str) -> tuple[str, str, str]:
        """``(log, meta, lease)`` of a rate-limit key; cached, since every acquire needs them."""
        keys = self._rate_limit.get(key)
        if keys is None:
            if len(self._rate_limit) > _RATE_LIMIT_CACHE:
                self._rate_limit.clear()
            tag = "{" + key + "}"
            keys = self._rate_limit[key] = (
                self.key("rl", tag, "log"),
                self.key("rl", tag, "meta"),
                self.key("rl", tag, "lease"),
            )
        return keys

    def breaker(self, key: str) -> tuple[str, str, str]:
        """``(state, failures, trials)`` of a breaker key."""
        tag = "{" + key + "}"
        return (
            self.key("breaker", tag),
            self.key("breaker", tag, "failures"),
            self.key("breaker", tag, "trials"),
        )

    def ledger(self, dag_id: str, run_id: str) -> str:
        """The ledger hash of one run (entry id -> JSON entry)."""
        return self.key("bud", "ledger", dag_id, run_id)

    @property
    def ledger_base(self) -> str:
        """What every ledger key starts with (``ledger_runs`` scans for it)."""
        return self.key("bud", "ledger", "")

    def run_record(self, dag_id: str, run_id: str) -> str:
        return self.key("runs", "rec", dag_id, run_id)

    @property
    def runs_recent(self) -> str:
        return self.key("runs", "recent")

    def runs_of_dag(self, dag_id: str) -> str:
        return self.key("runs", "dag", dag_id)
