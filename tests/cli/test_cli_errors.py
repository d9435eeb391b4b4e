"""Every ``airflow-agents`` command, given bad input, prints one clear line on stderr and exits non-zero.

Bad input: a missing folder, no deployment (an Airflow home whose metadata DB was never migrated),
a bad flag, a store or metadata DB that cannot be reached. Each case runs the real command in a
subprocess with its own ``AIRFLOW_HOME``; none may print a traceback, and a password in a store or
database URL must come out masked.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from airflow_agent_provider.deploy.processes import free_port

REPO = Path(__file__).resolve().parents[2]
PASSWORD = "pw-that-must-never-be-printed-7f3a"
MISSING = "no/such/folder"


def _cli(args: tuple[str, ...], home: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "OPENAI", "ANTHROPIC"))}
    return subprocess.run(
        [sys.executable, "-m", "airflow_agent_provider.cli.main", *args],
        check=False,  # the tests assert the exit code themselves
        capture_output=True,
        text=True,
        cwd=home,
        timeout=180,
        env={**clean, "AIRFLOW_HOME": str(home), **env},
    )


def _one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "Traceback" not in output, output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


CASES = [
    # a missing folder
    ("validate", ("validate", MISSING), "no/such/folder: no such file or directory"),
    ("pools-sync", ("pools", "sync", MISSING), "workflow folder no/such/folder does not exist"),
    ("demo", ("demo", "--dags-folder", MISSING), "DAGs folder no/such/folder does not exist"),
    # no deployment: the metadata DB was never created
    ("costs", ("costs", "some_dag"), "is not initialised (run `airflow db migrate`)"),
    ("status", ("status", "some_dag"), "is not initialised (run `airflow db migrate`)"),
    ("result", ("result", "some_dag"), "is not initialised (run `airflow db migrate`)"),
    (
        "pools-sync",
        ("pools", "sync", str(REPO / "dags" / "workflows")),
        "is not initialised (run `airflow db migrate`)",
    ),
    # bad flags and arguments
    ("validate", ("validate", "x.yaml", "--bogus"), "unrecognized arguments: --bogus"),
    ("validate", ("validate",), "the following arguments are required: paths"),
    ("costs", ("costs", "some_dag", "--bogus"), "unrecognized arguments: --bogus"),
    ("status", ("status", "--json"), "the following arguments are required: dag_id"),
    ("result", ("result", "a", "b", "c"), "unrecognized arguments: c"),
    ("pools-sync", ("pools", "sync", "--write"), "argument --write: expected one argument"),
    ("pools", ("pools",), "the following arguments are required: pools_command"),
    ("demo", ("demo", "--workflow"), "argument --workflow: expected one argument"),
    ("main", ("frobnicate",), "invalid choice: 'frobnicate'"),
    ("main", (), "the following arguments are required: command"),
]


@pytest.mark.parametrize(
    ("command", "args", "expected"), CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)]
)
def test_bad_input(tmp_path: Path, command: str, args: tuple[str, ...], expected: str) -> None:
    line = _one_line_error(_cli(args, tmp_path))
    assert expected in line, line


@pytest.mark.parametrize("args", [("costs", "some_dag", "run_1", "--json"), ("status", "some_dag", "run_1")])
def test_unreachable_store(tmp_path: Path, args: tuple[str, ...]) -> None:
    url = f"redis://:{PASSWORD}@127.0.0.1:{free_port()}/2"
    result = _cli(args, tmp_path, AIRFLOW__AGENT_PROVIDER__STORE_URL=url)
    line = _one_line_error(result)
    assert "cannot reach the agent store at redis://:***@127.0.0.1:" in line, line
    assert PASSWORD not in result.stdout + result.stderr


def test_unknown_store_scheme_is_one_masked_line(tmp_path: Path) -> None:
    result = _cli(
        ("costs", "some_dag", "run_1"),
        tmp_path,
        AIRFLOW__AGENT_PROVIDER__STORE_URL=f"mysql://agent:{PASSWORD}@db:3306/x",
    )
    line = _one_line_error(result)
    assert "unknown store URL scheme 'mysql'" in line
    assert PASSWORD not in result.stdout + result.stderr


@pytest.mark.parametrize("args", [("costs", "some_dag"), ("result", "some_dag"), ("status", "some_dag")])
def test_unreachable_metadata_db(tmp_path: Path, args: tuple[str, ...]) -> None:
    url = f"postgresql+psycopg2://airflow:{PASSWORD}@127.0.0.1:{free_port()}/airflow"
    result = _cli(args, tmp_path, AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=url)
    line = _one_line_error(result)
    assert "cannot use the Airflow metadata DB at postgresql+psycopg2://airflow:***@127.0.0.1:" in line, line
    assert "Connection refused" in line
    assert PASSWORD not in result.stdout + result.stderr


def test_validate_prints_every_problem_of_a_file(tmp_path: Path) -> None:
    """The DAG import error may shorten a long list; ``validate`` never does."""
    agents = "".join(
        f"      - {{name: a{i}, prompt: hi, model: gpt-5-mini, modle: x{i}}}\n" for i in range(60)
    )
    (tmp_path / "many.yaml").write_text(f"name: many\nmodules:\n  M:\n    agents:\n{agents}")
    result = _cli(("validate", str(tmp_path / "many.yaml")), tmp_path)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    problems = [line for line in result.stderr.splitlines() if line.startswith("  - ")]
    assert len(problems) == 60
    assert all(f"agents[{i}]" in problems[i] and "modle" in problems[i] for i in range(60))
    assert (
        result.stderr.splitlines()[0] == f"FAIL {tmp_path / 'many.yaml'}: 60 problems in workflow definition"
    )


def test_validate_an_empty_folder_fails(tmp_path: Path) -> None:
    line = _one_line_error(_cli(("validate", str(tmp_path)), tmp_path))
    assert "no workflow files" in line
