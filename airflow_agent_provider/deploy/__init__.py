"""
Running the provider beyond one process: Compose and a native multi-process launcher.

:mod:`.settings` describes the deployment once; ``docker-compose.yml`` is checked against it and
:mod:`.local` runs it natively (private Postgres and Redis, Celery workers) for tests and benchmarks.
"""

from __future__ import annotations
