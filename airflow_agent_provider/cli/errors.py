"""
One clear line on stderr for every failure of a command, never a traceback.

Both command lines (``airflow-agents`` and the native launcher) are run by operators at a shell and
by scripts. A traceback tells neither of them what to do, and it can carry secrets: a store or
database URL with its password, a key echoed by a gateway. So every error is turned into one line
that says what failed and, where there is one, what to do, and is passed through
:func:`airflow_agent_provider.security.redact.scrub` (URL passwords, bearer tokens, API keys).

Set ``AIRFLOW_AGENTS_TRACEBACK=1`` to get the full traceback instead (debugging only).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable

#: The longest error line printed; the rest of a long driver message is cut off.
MAX_CHARS = 400
TRACEBACK_ENV = "AIRFLOW_AGENTS_TRACEBACK"


class OneLineParser(argparse.ArgumentParser):
    """``argparse`` whose usage errors are one line (the usage text is behind ``--help``)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return ""


def _store_url() -> str:
    try:
        from airflow_agent_provider.hooks.store import resolve_store_url
        from airflow_agent_provider.stores.config import mask_url

        return mask_url(resolve_store_url())
    except Exception:  # the URL only decorates the message; never fail while describing a failure
        return "the configured store"


def _db_url() -> str:
    try:
        from airflow.configuration import conf

        from airflow_agent_provider.stores.config import mask_url

        return mask_url(conf.get("database", "sql_alchemy_conn"))
    except Exception:  # as above
        return "the configured database"


def describe(exc: BaseException) -> str:
    """What went wrong, in one line, with hints for the failures operators meet most."""
    from airflow_agent_provider.security.redact import scrub

    name = type(exc).__name__
    module = type(exc).__module__ or ""
    text = _first_line(str(exc))
    if isinstance(exc, FileNotFoundError) and exc.filename:
        line = f"{exc.filename}: no such file or directory"
    elif isinstance(exc, NotADirectoryError) and exc.filename:
        line = f"{exc.filename}: not a directory"
    elif isinstance(exc, PermissionError) and exc.filename:
        line = f"{exc.filename}: permission denied"
    elif module.startswith("sqlalchemy"):
        if "no such table" in text or ("relation" in text and "does not exist" in text):
            line = f"the Airflow metadata DB at {_db_url()} is not initialised (run `airflow db migrate`)"
        else:
            # "(psycopg2.OperationalError) connection to server ... failed": the driver's words only.
            reason = text.split(") ", 1)[-1] if text.startswith("(") else text
            line = f"cannot use the Airflow metadata DB at {_db_url()}: {reason}"
    elif name == "StoreUnavailable" or module.startswith("redis"):
        reason = text.removeprefix("redis store unreachable: ") or name
        line = f"cannot reach the agent store at {_store_url()}: {reason}"
    elif (
        isinstance(exc, (RuntimeError, TimeoutError, ValueError, LookupError, OSError))
        and text
        and not (isinstance(exc, OSError) and exc.strerror)
    ):
        # Raised by the provider with a message written for the user: the type adds nothing.
        line = text
    elif isinstance(exc, OSError) and exc.strerror:
        line = f"{exc.strerror}" + (f": {exc.filename}" if exc.filename else "")
    else:
        line = f"{name}: {text}" if text else name
    line = scrub(line)
    return line if len(line) <= MAX_CHARS else line[: MAX_CHARS - 3] + "..."


def run(prog: str, func: Callable[[], int]) -> int:
    """``func()``, with any exception reported as ``prog: error: <one line>`` and exit code 1."""
    try:
        return func()
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if os.environ.get(TRACEBACK_ENV, "").lower() in ("1", "true", "yes"):
            raise
        print(f"{prog}: error: {describe(exc)}", file=sys.stderr)
        return 1
