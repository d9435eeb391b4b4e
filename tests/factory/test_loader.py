"""Loading a folder of definitions as DAGs: a broken file is an import error naming it, others load."""

from __future__ import annotations

import shutil
from pathlib import Path

from airflow_agent_provider.factory.loader import INVALID_PLACEHOLDER_DAG_ID

REPO = Path(__file__).parents[2]


def _dag_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "dags"
    (folder / "workflows").mkdir(parents=True)
    shutil.copy(REPO / "dags" / "erp_workflows.py", folder / "erp_workflows.py")
    shutil.copy(REPO / "dags" / "workflows" / "quickstart.yaml", folder / "workflows" / "quickstart.yaml")
    return folder


def test_repo_dags_folder_loads_every_example_without_errors():
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(REPO / "dags"))
    assert bag.import_errors == {}
    assert {"erp_month_end", "quickstart"} <= set(bag.dag_ids)


def test_broken_definitions_are_import_errors_of_the_dag_file_and_others_still_load(tmp_path):
    from airflow.dag_processing.dagbag import DagBag

    folder = _dag_folder(tmp_path)
    (folder / "workflows" / "bad_type.yaml").write_text(
        "name: bad_type\nmodules:\n  HR:\n    agents:\n      - name: a\n        prompt: hi\n        max_tokens: lots\n"
    )
    (folder / "workflows" / "bad_syntax.yaml").write_text("name: x\nmodules: [\n")
    bag = DagBag(dag_folder=str(folder))
    assert "quickstart" in bag.dag_ids
    assert INVALID_PLACEHOLDER_DAG_ID not in bag.dag_ids
    assert len(bag.import_errors) == 1
    ((path, message),) = bag.import_errors.items()
    assert path.endswith("erp_workflows.py")
    assert "bad_type.yaml" in message
    assert "max_tokens" in message
    assert "bad_syntax.yaml" in message
    assert "line" in message


def test_no_placeholder_when_all_files_are_valid(tmp_path):
    from airflow_agent_provider.factory import load_workflow_dags

    folder = _dag_folder(tmp_path)
    dags = load_workflow_dags(folder / "workflows")
    assert list(dags) == ["quickstart"]
