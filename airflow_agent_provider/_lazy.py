"""
Lazy package exports (PEP 562), declared once: the ``if TYPE_CHECKING:`` imports of the package.

A package's ``__init__`` lists its public names as ``from <module> import Name as Name`` under
``TYPE_CHECKING`` (what type checkers and IDEs read); :func:`attach` reads that same block from the
source to build ``__all__`` and a module ``__getattr__`` that imports each name on first use. So the
list exists once, and importing one submodule (as a DAG file does through the operators) does not
import every sibling and what they need. The same idea as ``lazy_loader.attach_stub``, without a
separate stub file.
"""

from __future__ import annotations

import ast
import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Any


def _declared_exports(init_file: str) -> dict[str, str]:
    """``name -> module`` for every ``from module import name`` under ``if TYPE_CHECKING:``."""
    tree = ast.parse(Path(init_file).read_text(encoding="utf-8"), filename=init_file)
    exports: dict[str, str] = {}
    for node in tree.body:
        if not (
            isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"
        ):
            continue
        for statement in node.body:
            if isinstance(statement, ast.ImportFrom) and statement.module and statement.level == 0:
                for alias in statement.names:
                    exports[alias.asname or alias.name] = statement.module
    return exports


def attach(package: str, init_file: str) -> tuple[Callable[[str], Any], Callable[[], list[str]], list[str]]:
    """
    ``(__getattr__, __dir__, __all__)`` for ``package``, from the ``TYPE_CHECKING`` imports of ``init_file``.

    :raises ValueError: the block declares no name (the package would export nothing by mistake).
    """
    exports = _declared_exports(init_file)
    if not exports:
        raise ValueError(f"{package}: no 'if TYPE_CHECKING:' imports to export in {init_file}")
    namespace = importlib.import_module(package).__dict__

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted({*namespace, *exports})

    return __getattr__, __dir__, sorted(exports)
