"""Benchmark: parsing the DAG file of four 500-agent workflows, against dag-factory and a trivial DAG.

Run: ``python bench/bench_parse.py [--agents 500] [--workflows 4] [--modules 4] [--rounds 3]``
(``pip install -e '.[bench]'`` first: dag-factory is the bench extra).

Generates, in a temp folder, ``--workflows`` workflow files of ``--agents`` agents in ``--modules``
modules each (chains of ten dependent agents, a shared rate limit, a run budget, retries), the same
shape as dag-factory YAML (the same task groups, tasks and edges, one ``BashOperator`` per agent plus
the final result task), and a trivial DAG file (one ``EmptyOperator``). Then, each in a **fresh
subprocess** so that import costs count, and alternating inside every round:

* (a) full parse: a real ``DagBag`` of a dags folder holding our DAG file (``dags/erp_workflows.py``)
  and the workflows, as the dag-processor does it (no parsing context);
* (b) the same ``DagBag`` over dag-factory's DAG file (``load_yaml_dags``) and its YAML;
* (c) the one-DAG parse of a task start: our folder with ``_AIRFLOW_PARSING_CONTEXT_DAG_ID`` set to
  one 500-agent workflow, against the trivial DAG file;
* (d) the dag-processor's callback-only parse (Airflow's own ``_parse_file`` with one task callback
  request, as it runs for every task that ends in the triggerer): a success request against our
  folder (builds nothing, ``factory/callback_parse.py``), the same with that look-up switched off
  (every workflow built, as before it), and against the trivial file; and a failure request (builds
  the one workflow it names).

Each figure is the time of ``DagBag(...)`` after Airflow itself is imported (common to all and not
what a DAG file can change); the median of ``--rounds`` is printed with the whole process's wall
time. Also printed: serializing the DAGs (what the dag-processor does next), and the heavy modules
the parse left in ``sys.modules``. The provider is byte-compiled first, as a wheel install leaves
it (Airflow and dag-factory, installed from wheels, are). Goals (issue 12): (a) <= 0.5 x (b); (c) <= 0.5 s above the
trivial file. Figures are printed, never asserted; the machine is shared, so read medians.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

_CHILD = r"""
import json, os, sys, time
t0 = time.perf_counter()
from airflow.dag_processing.dagbag import DagBag
t1 = time.perf_counter()
callback = os.environ.get("BENCH_CALLBACK")  # "<state> <file> <dag_id>": a callback-only parse
if callback:
    import uuid
    from pathlib import Path

    import structlog
    from airflow.callbacks.callback_requests import TaskCallbackRequest
    from airflow.dag_processing.processor import DagFileParseRequest, _parse_file

    if os.environ.get("BENCH_CALLBACK_BUILD_ALL"):  # as every callback parse did before callback_parse.py
        import airflow_agent_provider.factory as factory

        factory.dag_ids_for_callbacks = lambda: None
    state, file, dag_id = callback.split()
    ti = dict(id=uuid.uuid4(), task_id="M0.a0", dag_id=dag_id, run_id="r", try_number=1,
              dag_version_id=uuid.uuid4())
    request = TaskCallbackRequest(filepath=Path(file).name, bundle_name="dags-folder",
                                  bundle_version=None, ti=ti, task_callback_type=state)
    t1 = time.perf_counter()  # the parse alone, as DagBag(...) below
    _parse_file(DagFileParseRequest(file=file, bundle_path=Path(sys.argv[1]), bundle_name="dags-folder",
                                    callback_requests=[request]), structlog.get_logger())
    t2 = time.perf_counter()
    module = next(m for m in list(sys.modules.values()) if getattr(m, "__file__", None) == file)
    from airflow.sdk import DAG
    bag = type("Bag", (), {"dags": {k: v for k, v in vars(module).items() if isinstance(v, DAG)},
                           "import_errors": {}})()
else:
    bag = DagBag(dag_folder=sys.argv[1])
    t2 = time.perf_counter()
serialize = None
if os.environ.get("BENCH_SERIALIZE"):
    from airflow.serialization.serialized_objects import DagSerialization
    for dag in bag.dags.values():
        DagSerialization.to_dict(dag)
    serialize = time.perf_counter() - t2
print(json.dumps({
    "airflow_import_s": t1 - t0,
    "dagbag_s": t2 - t1,
    "serialize_s": serialize,
    "dags": len(bag.dags),
    "tasks": sum(len(d.tasks) for d in bag.dags.values()),
    "import_errors": len(bag.import_errors),
    "first_error": next(iter(bag.import_errors.values()), "")[-1500:],
    "heavy": [m for m in ("openai", "anthropic", "genai_prices", "redis") if m in sys.modules],
}))
"""


def _agent_names(agents: int, modules: int) -> list[list[str]]:
    per = agents // modules
    return [[f"a{index}" for index in range(per)] for _ in range(modules)]


def workflow_yaml(name: str, agents: int, modules: int) -> str:
    """One of our workflows: ``modules`` modules, chains of ten dependent agents."""
    lines = [
        f"name: {name}",
        "schedule: null",
        "cost_budget: 50.0",
        "rate_limits:",
        "  openai: {requests_per_minute: 6000, tokens_per_minute: 5000000, max_concurrent: 200}",
        "defaults:",
        "  provider: openai",
        "  model: gpt-5-mini",
        "  max_tokens: 512",
        "  retries: {attempts: 2, base_delay: 5s}",
        "modules:",
    ]
    for module, names in enumerate(_agent_names(agents, modules)):
        lines += [f"  M{module}:", f"    description: module {module}", "    agents:"]
        for index, agent in enumerate(names):
            lines += [
                f"      - name: {agent}",
                f"        prompt: Check item {index} of module {module} in one line.",
            ]
            if index % 10:
                lines.append(f"        dependencies: [{names[index - 1]}]")
    return "\n".join(lines) + "\n"


def dag_factory_yaml(name: str, agents: int, modules: int) -> str:
    """The same shape for dag-factory: task groups, one BashOperator per agent, the result task."""
    lines = [
        f"{name}:",
        "  schedule: null",
        "  start_date: 2026-01-01",
        "  default_args: {owner: bench, retries: 2}",
        "  task_groups:",
    ]
    groups = _agent_names(agents, modules)
    for module in range(len(groups)):
        lines.append(f"    M{module}: {{tooltip: module {module}}}")
    lines.append("  tasks:")
    every = []
    for module, names in enumerate(groups):
        for index, agent in enumerate(names):
            task = f"M{module}_{agent}"
            every.append(task)
            lines += [
                f"    {task}:",
                "      operator: airflow.providers.standard.operators.bash.BashOperator",
                f"      bash_command: echo Check item {index} of module {module} in one line.",
                f"      task_group_name: M{module}",
            ]
            if index % 10:
                lines.append(f"      dependencies: [M{module}_{names[index - 1]}]")
    lines += [
        "    workflow_result:",
        "      operator: airflow.providers.standard.operators.empty.EmptyOperator",
        "      trigger_rule: all_done",
        f"      dependencies: [{', '.join(every)}]",
    ]
    return "\n".join(lines) + "\n"


TRIVIAL_DAG = """from airflow.sdk import DAG
from airflow.providers.standard.operators.empty import EmptyOperator

with DAG("trivial", schedule=None):
    EmptyOperator(task_id="t")
"""

DAG_FACTORY_FILE = """# Airflow DAG file (DagBag's safe mode reads only files that mention both words).
from pathlib import Path

from dagfactory import load_yaml_dags

load_yaml_dags(globals_dict=globals(), dags_folder=str(Path(__file__).parent / "configs"))
"""


def make_folders(base: Path, agents: int, workflows: int, modules: int) -> dict[str, Path]:
    ours = base / "ours"
    (ours / "workflows").mkdir(parents=True)
    shutil.copy(REPO / "dags" / "erp_workflows.py", ours / "erp_workflows.py")
    factory = base / "dag_factory"
    (factory / "configs").mkdir(parents=True)
    (factory / "dag_factory_dags.py").write_text(DAG_FACTORY_FILE)
    for index in range(workflows):
        (ours / "workflows" / f"fleet_{index}.yaml").write_text(
            workflow_yaml(f"fleet_{index}", agents, modules)
        )
        (factory / "configs" / f"fleet_{index}.yaml").write_text(
            dag_factory_yaml(f"fleet_{index}", agents, modules)
        )
    trivial = base / "trivial"
    trivial.mkdir()
    (trivial / "trivial.py").write_text(TRIVIAL_DAG)
    return {"ours": ours, "dag_factory": factory, "trivial": trivial}


def run_child(
    folder: Path,
    home: Path,
    dag_id: str | None = None,
    serialize: bool = False,
    callback: str | None = None,
    build_all: bool = False,
) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("_AIRFLOW_PARSING_CONTEXT")}
    env.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__DAGS_FOLDER=str(folder),
        AIRFLOW__DAG_FACTORY__ENABLE_TELEMETRY="False",
        DO_NOT_TRACK="1",
        # A loaded machine must not turn a slow parse into an import error (the default is 30 s).
        AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT="900",
        SCARF_NO_ANALYTICS="true",
    )
    if dag_id is not None:
        env["_AIRFLOW_PARSING_CONTEXT_DAG_ID"] = dag_id
        env["_AIRFLOW_PARSING_CONTEXT_TASK_ID"] = "M0.a0"
    if serialize:
        env["BENCH_SERIALIZE"] = "1"
    if callback is not None:
        env["BENCH_CALLBACK"] = callback
    if build_all:
        env["BENCH_CALLBACK_BUILD_ALL"] = "1"
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, str(folder)],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
        check=False,  # a failed parse is raised below with the child's stderr
    )
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"parse of {folder} failed:\n{proc.stderr[-4000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    if result["import_errors"]:
        raise RuntimeError(
            f"parse of {folder} recorded {result['import_errors']} import error(s):\n{result['first_error']}"
        )
    result["process_s"] = wall
    return result


def _commit() -> str:
    try:
        head = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + (" (with uncommitted changes)" if dirty else "")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=500, help="agents per workflow (default 500)")
    parser.add_argument("--workflows", type=int, default=4, help="workflow files (default 4)")
    parser.add_argument(
        "--modules", type=int, default=4, help="modules (task groups) per workflow (default 4)"
    )
    parser.add_argument("--rounds", type=int, default=3, help="rounds; medians are printed (default 3)")
    args = parser.parse_args()
    import importlib.util

    with_dag_factory = importlib.util.find_spec("dagfactory") is not None
    if not with_dag_factory:
        print("dag-factory is not installed (pip install -e '.[bench]'): its figures are left out")

    # A wheel install byte-compiles the provider (pip does), as it did Airflow and dag-factory here; an
    # editable install under PYTHONDONTWRITEBYTECODE=1 (set on this machine) would compile ours from
    # source at every parse (about 0.3 s of the one-DAG figure) and measure that instead.
    compileall.compile_dir(str(REPO / "airflow_agent_provider"), quiet=1)

    base = Path(tempfile.mkdtemp(prefix="bench-parse-"))
    try:
        folders = make_folders(base, args.agents, args.workflows, args.modules)
        ours_file = folders["ours"] / "erp_workflows.py"
        trivial_file = folders["trivial"] / "trivial.py"
        home = base / "airflow-home"
        home.mkdir()
        cases = {
            "full_ours": lambda: run_child(folders["ours"], home, serialize=True),
            "full_dag_factory": lambda: run_child(folders["dag_factory"], home, serialize=True),
            "one_dag_ours": lambda: run_child(folders["ours"], home, dag_id="fleet_0"),
            "trivial": lambda: run_child(folders["trivial"], home, dag_id="trivial"),
            "cb_success_ours": lambda: run_child(
                folders["ours"], home, callback=f"success {ours_file} fleet_0"
            ),
            "cb_success_before": lambda: run_child(
                folders["ours"], home, callback=f"success {ours_file} fleet_0", build_all=True
            ),
            "cb_failed_ours": lambda: run_child(
                folders["ours"], home, callback=f"failed {ours_file} fleet_0"
            ),
            "cb_success_trivial": lambda: run_child(
                folders["trivial"], home, callback=f"success {trivial_file} trivial"
            ),
        }
        if not with_dag_factory:
            del cases["full_dag_factory"]
        runs: dict[str, list[dict]] = {name: [] for name in cases}
        for _ in range(args.rounds):
            for name, case in cases.items():
                runs[name].append(case())
    finally:
        shutil.rmtree(base, ignore_errors=True)

    def med(name: str, key: str) -> float:
        values = [r[key] for r in runs[name] if r.get(key) is not None]
        return statistics.median(values) if values else float("nan")

    print(
        f"commit {_commit()}; {args.workflows} workflows x {args.agents} agents in {args.modules} modules; "
        f"median of {args.rounds} fresh processes each"
    )
    print(
        f"{'case':<18} {'DagBag s':>9} {'serialize s':>12} {'process s':>10} {'dags':>5} {'tasks':>6} "
        f"{'errors':>6}  heavy modules"
    )
    for name in cases:
        last = runs[name][-1]
        print(
            f"{name:<18} {med(name, 'dagbag_s'):>9.2f} {med(name, 'serialize_s'):>12.2f} "
            f"{med(name, 'process_s'):>10.2f} {last['dags']:>5} {last['tasks']:>6} {last['import_errors']:>6}  "
            f"{' '.join(last['heavy']) or '-'}"
        )
    one, trivial = med("one_dag_ours", "dagbag_s"), med("trivial", "dagbag_s")
    if with_dag_factory:
        full, factory = med("full_ours", "dagbag_s"), med("full_dag_factory", "dagbag_s")
        print(f"full parse / dag-factory:        {full / factory:.2f}x  (goal <= 0.5x)")
        print(
            f"  with serialization:            "
            f"{(full + med('full_ours', 'serialize_s')) / (factory + med('full_dag_factory', 'serialize_s')):.2f}x"
        )
    print(f"one-DAG parse - trivial DAG:     {one - trivial:+.2f} s  (goal <= +0.5 s)")
    print(
        f"  whole process, one-DAG - trivial: {med('one_dag_ours', 'process_s') - med('trivial', 'process_s'):+.2f} s"
    )
    print(
        f"callback-only parse (success), ours: {med('cb_success_ours', 'dagbag_s'):.3f} s "
        f"(building every workflow as before: {med('cb_success_before', 'dagbag_s'):.3f} s; "
        f"trivial DAG file: {med('cb_success_trivial', 'dagbag_s'):.3f} s)"
    )
    print(
        f"callback-only parse (failure), ours, builds one workflow: {med('cb_failed_ours', 'dagbag_s'):.2f} s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
