"""
``[core] hostname_callable`` for several Celery workers on one host.

A task instance records the hostname of the worker that ran it. Containers have distinct hostnames,
but native workers on one machine all share one, which would hide which worker ran a task; the
launcher gives every worker a name in its environment and this callable reports it.
"""

from __future__ import annotations

import os
import socket

from airflow_agent_provider.deploy.settings import WORKER_NAME_ENV


def worker_hostname() -> str:
    """``<worker name>.<fqdn>`` when the launcher named this worker, else the plain FQDN."""
    fqdn = socket.getfqdn()
    name = os.environ.get(WORKER_NAME_ENV, "").strip()
    return f"{name}.{fqdn}" if name else fqdn
