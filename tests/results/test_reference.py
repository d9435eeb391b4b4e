"""The README's result reference is the one generated from the result models."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from airflow_agent_provider.results import reference

README = Path(__file__).parents[2] / "README.md"


def _section(text: str) -> str:
    start = text.index("### Outcomes and partial completion")
    return text[start : text.index("\n## ", start)]


def test_readme_holds_exactly_the_generated_tables():
    section = _section(README.read_text(encoding="utf-8"))
    assert section.count(reference.BEGIN) == 1
    assert reference.render() in section, (
        "README.md's result reference is stale: run "
        "`python -m airflow_agent_provider.results.reference --write README.md`"
    )


@pytest.mark.parametrize(("heading", "model"), reference.TABLES)
def test_every_field_of_the_typed_results_is_in_the_readme(heading, model):
    section = _section(README.read_text(encoding="utf-8"))
    assert f"**{heading}**" in section
    table = section.split(f"**{heading}**", 1)[1].split("\n\n", 2)[1]
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    assert [row.split("`")[1] for row in rows] == list(model.model_fields)
    missing = [name for name, info in model.model_fields.items() if not info.description]
    assert not missing, f"{model.__name__} fields without a description for the README: {missing}"


def test_type_names_read_like_the_json():
    from typing import Any, Literal

    assert reference.type_name(str | None) == "str or null"
    assert reference.type_name(Literal["a", "b"] | None) == '"a" or "b" or null'
    assert reference.type_name(dict[str, Any]) == "dict[str, any]"
    assert reference.type_name(list[float]) == "list[number]"


def test_check_and_write_from_the_command_line(tmp_path):
    stale = tmp_path / "README.md"
    stale.write_text(f"# x\n\n{reference.BEGIN}\nold table\n{reference.END}\n\nafter\n", encoding="utf-8")
    cmd = [sys.executable, "-m", "airflow_agent_provider.results.reference"]
    check = subprocess.run([*cmd, "--check", str(stale)], capture_output=True, text=True, check=False)
    assert check.returncode == 1
    assert "stale" in check.stderr
    subprocess.run([*cmd, "--write", str(stale)], check=True)
    text = stale.read_text(encoding="utf-8")
    assert reference.render() in text
    assert text.startswith("# x\n")
    assert text.endswith("\n\nafter\n")
    assert subprocess.run([*cmd, "--check", str(stale)], check=False).returncode == 0
    printed = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    assert printed.strip() == reference.render()


def test_a_file_without_the_block_is_an_error():
    with pytest.raises(ValueError, match="no generated result reference"):
        reference.replace_block("# nothing here\n", reference.render())
