"""
The provider's own settings (``[agent_provider]`` in airflow.cfg), read at the edge.

The engines (definitions, llm, ...) never read configuration themselves: they take plain values as
arguments. This module is where those values come from when the caller does not pass them: the
``AIRFLOW__AGENT_PROVIDER__*`` environment variable first (what Airflow itself would use), then Airflow's
``conf`` in a process that has imported Airflow (airflow.cfg, secrets backends, the defaults declared in
provider info), else airflow.cfg read directly (see :func:`get_option`): importing Airflow only to read
a setting would cost seconds in a process that has not, such as ``airflow-agents validate``.

The options are documented in :func:`airflow_agent_provider.get_provider_info.get_provider_info`.
"""

from __future__ import annotations

import configparser
import os
import re
import sys
from pathlib import Path

from airflow_agent_provider.exceptions import ProviderConfigError as ProviderConfigError

SECTION = "agent_provider"

#: Module prefixes tools and ``output_schema`` models may come from when nothing is configured.
DEFAULT_ALLOWED_TOOL_MODULES = "airflow_agent_provider.examples"
#: Largest workflow file (bytes) the loader reads when nothing is configured: 1 MiB.
DEFAULT_MAX_WORKFLOW_FILE_BYTES = 1024 * 1024

ALLOWED_TOOL_MODULES_OPTION = "allowed_tool_modules"
MAX_WORKFLOW_FILE_BYTES_OPTION = "max_workflow_file_bytes"

_MODULE_PREFIX = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


def setting_name(option: str) -> str:
    """``[agent_provider] option (AIRFLOW__AGENT_PROVIDER__OPTION)``: how errors name a setting."""
    return f"[{SECTION}] {option} ({env_var(option)})"


def env_var(option: str) -> str:
    return f"AIRFLOW__{SECTION.upper()}__{option.upper()}"


def get_option(option: str, default: str) -> str:
    """
    The raw value of ``[agent_provider] option``: environment, then Airflow's config, then ``default``.

    In a process that has imported Airflow (the dag-processor, workers, the triggerer) Airflow's
    ``conf`` answers, with everything it supports. A process that has not (``airflow-agents validate``,
    the engines' tests) reads airflow.cfg itself instead of paying seconds for importing Airflow; the
    ``_cmd``/``_secret`` variants are then not consulted.
    """
    value = os.environ.get(env_var(option))
    if value is not None:
        return value
    if "airflow" in sys.modules:
        try:
            from airflow.configuration import conf

            return str(conf.get(SECTION, option, fallback=default))
        except Exception:  # e.g. a broken secrets backend: fall back to the safe default
            return default
    value = _from_config_file(option)
    return default if value is None else value


def _config_file() -> Path:
    """Where Airflow reads airflow.cfg: ``$AIRFLOW_CONFIG``, else ``$AIRFLOW_HOME/airflow.cfg``."""
    if os.environ.get("AIRFLOW_CONFIG"):
        return Path(os.path.expanduser(os.environ["AIRFLOW_CONFIG"]))
    home = os.environ.get("AIRFLOW_HOME") or os.path.join("~", "airflow")
    return Path(os.path.expanduser(home)) / "airflow.cfg"


def _from_config_file(option: str) -> str | None:
    parser = configparser.RawConfigParser(interpolation=None, strict=False)
    try:
        parser.read(_config_file(), encoding="utf-8")
        return parser.get(SECTION, option, fallback=None)
    except (OSError, configparser.Error, UnicodeDecodeError):  # unreadable: Airflow would fail louder
        return None


def parse_module_prefixes(value: str, option: str = ALLOWED_TOOL_MODULES_OPTION) -> tuple[str, ...]:
    """
    ``"a.b, c"`` -> ``("a.b", "c")``. An empty value allows no module at all.

    :raises ProviderConfigError: an entry is not a dotted module name (wildcards are not supported:
        a prefix already covers its submodules).
    """
    prefixes = []
    for raw in value.split(","):
        entry = raw.strip()
        if not entry:
            continue
        if not _MODULE_PREFIX.fullmatch(entry):
            raise ProviderConfigError(
                f"{setting_name(option)} has an invalid entry {entry!r}: give dotted module names such as "
                "'my_company.agent_tools', separated by commas (a name covers its submodules)"
            )
        prefixes.append(entry)
    return tuple(dict.fromkeys(prefixes))


def allowed_tool_modules() -> tuple[str, ...]:
    """The module prefixes tools and output schemas may come from (``[agent_provider] allowed_tool_modules``)."""
    return parse_module_prefixes(get_option(ALLOWED_TOOL_MODULES_OPTION, DEFAULT_ALLOWED_TOOL_MODULES))


def max_workflow_file_bytes() -> int:
    """The largest workflow file the loader reads (``[agent_provider] max_workflow_file_bytes``)."""
    raw = get_option(MAX_WORKFLOW_FILE_BYTES_OPTION, str(DEFAULT_MAX_WORKFLOW_FILE_BYTES)).strip()
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value <= 0:
        raise ProviderConfigError(
            f"{setting_name(MAX_WORKFLOW_FILE_BYTES_OPTION)} must be a positive number of bytes, got {raw!r}"
        )
    return value
