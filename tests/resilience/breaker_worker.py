"""A separate process working on a shared breaker, for the cross-process tests.

python -m tests.resilience.breaker_worker STORE_URL KEY CONFIG_JSON fail N
    record N failures; prints the final state
python -m tests.resilience.breaker_worker STORE_URL KEY CONFIG_JSON grab N
    ask ``allow`` N times, keeping every trial admitted; prints how many were admitted
"""

from __future__ import annotations

import json
import sys

from airflow_agent_provider.stores import store_from_url
from airflow_agent_provider.stores.breaker_api import BreakerConfig


def main(argv: list[str]) -> None:
    url, key, config, mode, count = argv
    store = store_from_url(url)
    cfg = BreakerConfig(**json.loads(config))
    try:
        if mode == "fail":
            state = None
            for _ in range(int(count)):
                state = store.breaker_record(key, False, cfg)
            print(json.dumps({"state": state}))
        elif mode == "grab":
            admitted = sum(store.breaker_allow(key, cfg).allowed for _ in range(int(count)))
            print(json.dumps({"admitted": admitted}))
        else:
            raise SystemExit(f"unknown mode {mode!r}")
    finally:
        store.close()


if __name__ == "__main__":
    main(sys.argv[1:])
