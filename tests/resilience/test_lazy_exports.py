"""The engine packages export their public API lazily, from one declaration each (``_lazy.attach``)."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

PACKAGES = (
    "airflow_agent_provider.cost",
    "airflow_agent_provider.limits",
    "airflow_agent_provider.resilience",
)
HEAVY = ("openai", "anthropic", "genai_prices", "redis")


@pytest.mark.parametrize("package", PACKAGES)
def test_every_exported_name_resolves_to_its_defining_module(package):
    module = importlib.import_module(package)
    assert module.__all__
    for name in module.__all__:
        value = getattr(module, name)
        assert value is not None
        assert name in dir(module)
    with pytest.raises(AttributeError, match="has no attribute 'not_exported'"):
        _ = module.not_exported


@pytest.mark.parametrize("package", [*PACKAGES, "airflow_agent_provider.definitions"])
def test_importing_a_package_is_cheap(package):
    code = (
        "import sys\n"
        f"import {package}\n"
        f"heavy = [m for m in {HEAVY!r} if m in sys.modules]\n"
        "assert not heavy, heavy\n"
        f"loaded = [m for m in sys.modules if m.startswith({package!r} + '.')]\n"
        "print(','.join(loaded))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    if package != "airflow_agent_provider.definitions":
        # A lazy package imports none of its own submodules until a name is used.
        assert proc.stdout.strip() == "", proc.stdout
