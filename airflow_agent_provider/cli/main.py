"""``airflow-agents``: the provider's command line.

Subcommands talk to the same places Airflow does (the metadata DB through Airflow's own models,
the shared store) and are meant for operators at a shell, not for task code.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path


def _cmd_validate(args: argparse.Namespace) -> int:
    from airflow_agent_provider.definitions import WorkflowDefinitionError, load_workflow, load_workflows

    failures = 0
    for raw in args.paths:
        path = Path(raw)
        if path.is_dir():
            workflows, errors = load_workflows(path)
        else:
            workflows, errors = [], []
            try:
                workflows.append(load_workflow(path))
            except WorkflowDefinitionError as err:
                errors.append(err)
        for wf in workflows:
            agents = sum(1 for _ in wf.iter_agents())
            print(f"ok   {wf.source_path}: workflow {wf.name} ({len(wf.modules)} modules, {agents} agents)")
        for err in errors:
            print(f"FAIL {err}", file=sys.stderr)
        failures += len(errors)
    return 1 if failures else 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from airflow_agent_provider.cli.demo import run_demo

    return run_demo(
        dags_folder=Path(args.dags_folder),
        airflow_home=Path(args.airflow_home) if args.airflow_home else None,
        only=args.workflow,
    )


def _cmd_result(args: argparse.Namespace) -> int:
    from airflow_agent_provider.cli.runs import print_run_result

    return print_run_result(args.dag_id, args.run_id, as_json=args.json)


def _cmd_pools_sync(args: argparse.Namespace) -> int:
    from airflow_agent_provider.cli.pools import run_pools_sync

    return run_pools_sync(Path(args.folder), Path(args.write) if args.write else None, dry_run=args.dry_run)


def _cmd_costs(args: argparse.Namespace) -> int:
    from airflow_agent_provider.cli.costs import print_costs

    return print_costs(args.dag_id, args.run_id, as_json=args.json)


def _cmd_status(args: argparse.Namespace) -> int:
    import json

    from airflow_agent_provider.cli.costs import latest_run_id
    from airflow_agent_provider.hooks.store import get_store
    from airflow_agent_provider.observability.snapshots import format_snapshot, run_snapshot

    store = get_store()
    run_id = args.run_id or latest_run_id(store, args.dag_id)
    if run_id is None:
        print(f"no run of DAG {args.dag_id!r}", file=sys.stderr)
        return 1
    snapshot = run_snapshot(store, args.dag_id, run_id)
    print(json.dumps(snapshot, indent=2, default=str) if args.json else format_snapshot(snapshot))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="airflow-agents", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("validate", help="validate workflow definition files or folders")
    p.add_argument("paths", nargs="+", help="YAML files or folders of them")
    p.set_defaults(func=_cmd_validate)

    p = sub.add_parser(
        "demo",
        help="run the example workflows through Airflow on the embedded defaults and print a per-agent table",
    )
    p.add_argument("--dags-folder", default="dags", help="folder with erp_workflows.py and workflows/")
    p.add_argument("--airflow-home", default=None, help="default: $AIRFLOW_HOME, else ./.airflow-demo")
    p.add_argument("--workflow", action="append", help="only this workflow (repeatable)")
    p.set_defaults(func=_cmd_demo)

    p = sub.add_parser("pools", help="Airflow pools derived from the definitions' concurrency limits")
    pools_sub = p.add_subparsers(dest="pools_command", required=True)
    ps = pools_sub.add_parser("sync", help="create or update the pools in the metadata DB")
    ps.add_argument("folder", nargs="?", default="dags/workflows", help="folder of workflow definitions")
    ps.add_argument("--write", metavar="FILE", help="write an `airflow pools import` file instead")
    ps.add_argument("--dry-run", action="store_true", help="only print the pools")
    ps.set_defaults(func=_cmd_pools_sync)

    p = sub.add_parser("costs", help="a run's spend per module and agent, from the shared store's ledger")
    p.add_argument("dag_id")
    p.add_argument("run_id", nargs="?", help="default: the latest run")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_costs)

    p = sub.add_parser("status", help="a run's snapshot from the store: spend, reservations, breakers, pauses")
    p.add_argument("dag_id")
    p.add_argument("run_id", nargs="?", help="default: the latest run")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_status)

    p = sub.add_parser("result", help="print the result table of a workflow run from the metadata DB")
    p.add_argument("dag_id")
    p.add_argument("run_id", nargs="?", help="default: the latest run")
    p.add_argument("--json", action="store_true", help="print the whole result as JSON")
    p.set_defaults(func=_cmd_result)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # stdout carries the command's data (tables, JSON); the provider's info logs would mix into it.
    logging.getLogger("airflow_agent_provider").setLevel(logging.WARNING)
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
