"""The deployments' dag-processor keeps a file's parse time across a callback-only parse.

Each case runs in a fresh interpreter with Airflow's real ``DagFileProcessorManager`` over a real DAG
file: the file was parsed in full a moment ago, then a parse that only ran callbacks finishes (what
the triggerer causes for every task that ends there), and the manager refills its queue. Without the
fix (Airflow 3.3 as released) the file is queued for a full parse at once; with it, it waits for
``min_file_process_interval`` as after any parse. The process stand-in carries only the three
attributes the manager reads from a finished parse; a real one would need a forked parse.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.fixtures.python_json import run_python_json

_SCRIPT = r"""
import json, sys, time
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

from airflow.dag_processing.manager import DagFileInfo, DagFileProcessorManager, DagFileStat
from airflow.utils import timezone

if sys.argv[2] == "fixed":
    from airflow_agent_provider.deploy.dag_processor import keep_stats_of_callback_parses

    assert keep_stats_of_callback_parses() and keep_stats_of_callback_parses()  # idempotent

folder = Path(sys.argv[1])
file = DagFileInfo(rel_path=Path("erp_workflows.py"), bundle_name="dags-folder", bundle_path=folder)
manager = DagFileProcessorManager(max_runs=-1, file_process_interval=600)
parsed_at = timezone.utcnow() - timedelta(seconds=5)
manager._file_stats[file] = DagFileStat(num_dags=4, last_finish_time=parsed_at, last_duration=2.0, run_count=1)

def finish(had_callbacks, parsing_result):
    proc = SimpleNamespace(had_callbacks=had_callbacks, parsing_result=parsing_result, start_time=time.monotonic() - 0.1)
    manager.handle_parsing_result(file, proc)

finish(True, None)  # a callback-only parse: Airflow's _parse_file returns no result for one
stat = manager._file_stats[file]
manager.prepare_file_queue({"dags-folder": {file}})
print(json.dumps({
    "queued": [str(f.rel_path) for f in manager._file_queue],
    "last_finish_time_kept": stat.last_finish_time == parsed_at,
    "num_dags": stat.num_dags,
    "run_count": stat.run_count,
    "last_duration_s": round(stat.last_duration, 1),
}))
"""


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("bundle")
    (folder / "erp_workflows.py").write_text("# airflow dag\n")
    os.utime(folder / "erp_workflows.py", (0, 0))  # not modified since the last parse
    return folder


def _run(bundle: Path, variant: str) -> dict:
    result: dict = run_python_json(_SCRIPT, str(bundle), variant, env=dict(os.environ), timeout=240)
    return result


def test_airflow_alone_reparses_the_whole_file_after_every_callback_only_parse(bundle):
    # The upstream behaviour the fix is for; when this fails, Airflow has fixed it and the fix can go.
    result = _run(bundle, "airflow")
    assert result["queued"] == ["erp_workflows.py"]
    assert result["last_finish_time_kept"] is False
    assert result["num_dags"] == 0


def test_with_the_fix_a_callback_only_parse_keeps_the_stat_and_queues_nothing(bundle):
    result = _run(bundle, "fixed")
    assert result == {
        "queued": [],
        "last_finish_time_kept": True,
        "num_dags": 4,
        "run_count": 1,
        "last_duration_s": 0.1,  # the callback parse's own duration
    }
