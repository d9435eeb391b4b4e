"""
Which Python modules a workflow may name as code: tools and ``output_schema`` models.

A workflow file names code by dotted path, and a model's tool call then runs it with arguments the
model chose. So a workflow file author must not be able to name ``os.system`` or ``pickle.loads``,
and naming a module must not even import it (an import runs the module's top-level code in the
dag-processor). Two rules, both string checks made *before* anything is imported:

* the module must lie under a prefix the platform team allowed
  (``[agent_provider] allowed_tool_modules``; see :mod:`airflow_agent_provider.config`), and
* it must never lie under :data:`DENIED_MODULES` (code execution, processes, files, network,
  serialisation, the interpreter, Airflow and this provider), whatever the allow-list says.

Prefixes match on module boundaries: ``my_tools`` covers ``my_tools`` and ``my_tools.x``, never
``my_tools_evil``. After the import, the object's own ``__module__`` must pass the same two rules, so an
allowed module cannot re-export ``os.system``. Top-level modules starting with ``_`` (``_pickle``,
``_posixsubprocess``, ``__main__``...) are always denied: they are the C halves of denied modules.

Dependency-free on purpose: the definitions layer and the tool registry both use it.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any

#: Never a source of tools or schemas, even when the allow-list names them or a parent.
DENIED_MODULES: frozenset[str] = frozenset(
    {
        # the interpreter, code loading and code execution
        "builtins",
        "__builtin__",
        "__main__",
        "sys",
        "sysconfig",
        "site",
        "importlib",
        "imp",
        "zipimport",
        "pkgutil",
        "runpy",
        "code",
        "codeop",
        "compileall",
        "py_compile",
        "ast",
        "dis",
        "inspect",
        "types",
        "gc",
        "ctypes",
        "cffi",
        "pdb",
        "bdb",
        "trace",
        "profile",
        "cProfile",
        "timeit",
        "doctest",
        "unittest",
        "pydoc",
        "linecache",
        "tokenize",
        "venv",
        "ensurepip",
        "pip",
        "setuptools",
        "distutils",
        "logging",
        "functools",
        "operator",
        # processes, threads, signals and terminals
        "os",
        "posix",
        "nt",
        "posixpath",
        "ntpath",
        "subprocess",
        "multiprocessing",
        "concurrent",
        "threading",
        "asyncio",
        "signal",
        "pty",
        "tty",
        "termios",
        "fcntl",
        "resource",
        "mmap",
        "sched",
        "webbrowser",
        "platform",
        "getpass",
        # files and archives
        "shutil",
        "io",
        "pathlib",
        "tempfile",
        "glob",
        "fileinput",
        "filecmp",
        "codecs",
        "tarfile",
        "zipfile",
        "gzip",
        "bz2",
        "lzma",
        "zlib",
        "sqlite3",
        "mailbox",
        # (de)serialisation that can run code
        "pickle",
        "pickletools",
        "copyreg",
        "shelve",
        "dbm",
        "marshal",
        "yaml",
        "jinja2",
        "dill",
        "cloudpickle",
        "jsonpickle",
        "joblib",
        # network
        "socket",
        "ssl",
        "select",
        "selectors",
        "socketserver",
        "http",
        "urllib",
        "urllib3",
        "ftplib",
        "smtplib",
        "poplib",
        "imaplib",
        "telnetlib",
        "xmlrpc",
        "wsgiref",
        "requests",
        "httpx",
        "aiohttp",
        "paramiko",
        "fabric",
        "pexpect",
        "sh",
        "plumbum",
        # credentials and shared state: Airflow, the LLM SDKs, the stores, this provider
        "airflow",
        "airflow_agent_provider",
        "openai",
        "anthropic",
        "redis",
        "sqlalchemy",
        "celery",
        "kombu",
    }
)

#: Parts of a denied package that are meant to be named: the provider's own example tools and schemas.
DENY_EXCEPTIONS: tuple[str, ...] = ("airflow_agent_provider.examples",)


def under(module: str, prefix: str) -> bool:
    """True when ``module`` is ``prefix`` or one of its submodules (``a.b`` is under ``a``, ``ab`` is not)."""
    return module == prefix or module.startswith(prefix + ".")


def denied(module: str) -> bool:
    """True when ``module`` may never provide tools or schemas (see :data:`DENIED_MODULES`)."""
    if module.split(".", 1)[0].startswith("_"):
        return True
    if any(under(module, exception) for exception in DENY_EXCEPTIONS):
        return False
    return any(under(module, prefix) for prefix in DENIED_MODULES)


def allowed(module: str, prefixes: Iterable[str]) -> bool:
    """True when ``module`` lies under one of ``prefixes`` and is not denied."""
    return not denied(module) and any(under(module, prefix) for prefix in prefixes)


def denied_message(module: str, what: str, setting: str | None = None) -> str:
    """The reason given for a denied ``module``; ``setting`` names the allow-list that cannot lift it."""
    message = (
        f"module {module!r} may never provide {what}: it can run commands, load code, reach files, the "
        "network or credentials"
    )
    if setting:
        message += f", and {setting} cannot allow it"
    return message


def defining_modules(obj: Any) -> list[str | None]:
    """
    The module of ``obj`` and of every layer it wraps (``functools.partial``, ``__wrapped__``).

    ``None`` stands for a layer that does not say where it was defined. Every layer must pass the
    rules: ``partial(os.system, ...)`` defined in an allowed module still runs ``os.system``.
    """
    modules: list[str | None] = []
    for _ in range(20):  # bounded: wrapper chains are short, and a cycle must not hang the parse
        if isinstance(obj, functools.partial):  # the partial object itself is "functools": look inside
            obj = obj.func
            continue
        module = getattr(obj, "__module__", None)
        modules.append(module if isinstance(module, str) and module else None)
        if getattr(obj, "__wrapped__", None) is not None:
            obj = obj.__wrapped__
        else:
            return modules
    modules.append(None)
    return modules


def refused_definition(obj: Any, prefixes: Iterable[str] | None) -> str | None:
    """
    Why ``obj`` (already imported) is refused, or None.

    Every module in :func:`defining_modules` must not be denied and, when ``prefixes`` is given, must
    lie under one of them. ``prefixes=None`` checks the deny list only (Python DAG authors are trusted
    with everything else).
    """
    prefixes = None if prefixes is None else tuple(prefixes)
    for module in defining_modules(obj):
        if module is None:
            return "it does not say which module defines it (__module__ is missing)"
        if denied(module):
            return f"it is defined in {module!r}, which may never provide code to a workflow"
        if prefixes is not None and not any(under(module, prefix) for prefix in prefixes):
            return f"it is defined in {module!r}, which is not an allowed module"
    return None
