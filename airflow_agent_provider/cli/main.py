"""
``airflow-agents``: the provider's command line.

Subcommands talk to the same places Airflow does (the metadata DB through Airflow's own models,
the shared store) and are meant for operators at a shell, not for task code.

Exit codes: 0 success, 1 the command failed (an invalid workflow file, no such run, a database or
store that cannot be reached: one line on stderr, secrets masked), 2 bad arguments.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path


def _format_failure(err: object) -> list[str]:
    """Every problem of a bad file, one per line (the DAG import error may shorten the list; this never does)."""
    problems = list(getattr(err, "problems", []) or [])
    path = getattr(err, "path", None) or "<workflow>"
    if not problems:
        return [f"FAIL {err}"]
    count = len(problems)
    return [
        f"FAIL {path}: {count} problem{'s' if count != 1 else ''} in workflow definition",
        *(f"  - {problem}" for problem in problems),
    ]


def _cmd_validate(args: argparse.Namespace) -> int:
    from airflow_agent_provider.cost.worst_case import describe, worst_case
    from airflow_agent_provider.definitions import WorkflowDefinitionError, load_workflow, load_workflows
    from airflow_agent_provider.definitions.loader import WORKFLOW_SUFFIXES

    failures = 0
    for raw in args.paths:
        path = Path(raw)
        if path.is_dir():
            if not any(p.is_file() and p.suffix in WORKFLOW_SUFFIXES for p in path.iterdir()):
                print(
                    f"FAIL {path}: no workflow files ({', '.join('*' + s for s in WORKFLOW_SUFFIXES)}) in this folder",
                    file=sys.stderr,
                )
                failures += 1
                continue
            workflows, errors = load_workflows(path)
        elif not path.exists():
            print(f"FAIL {path}: no such file or directory", file=sys.stderr)
            failures += 1
            continue
        else:
            workflows, errors = [], []
            try:
                workflows.append(load_workflow(path))
            except WorkflowDefinitionError as bad:
                errors.append(bad)
        for wf in workflows:
            agents = sum(1 for _ in wf.iter_agents())
            print(f"ok   {wf.source_path}: workflow {wf.name} ({len(wf.modules)} modules, {agents} agents)")
            if not args.no_costs:
                print("\n".join(describe(worst_case(wf), wf.cost_budget)))
        for err in errors:
            print("\n".join(_format_failure(err)), file=sys.stderr)
        failures += len(errors)
    return 1 if failures else 0


def _existing_dir(raw: str, what: str) -> Path:
    path = Path(raw)
    if not path.is_dir():
        raise FileNotFoundError(f"{what} {path} does not exist (or is not a directory)")
    return path


def _cmd_demo(args: argparse.Namespace) -> int:
    from airflow_agent_provider.cli.demo import run_demo

    return run_demo(
        dags_folder=_existing_dir(args.dags_folder, "DAGs folder"),
        airflow_home=Path(args.airflow_home) if args.airflow_home else None,
        only=args.workflow,
    )


def _cmd_result(args: argparse.Namespace) -> int:
    from airflow_agent_provider.cli.runs import print_run_result

    return print_run_result(args.dag_id, args.run_id, as_json=args.json)


def _cmd_pools_sync(args: argparse.Namespace) -> int:
    from airflow_agent_provider.cli.pools import run_pools_sync

    return run_pools_sync(
        _existing_dir(args.folder, "workflow folder"),
        Path(args.write) if args.write else None,
        dry_run=args.dry_run,
    )


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
    from airflow_agent_provider.security.redact import scrub_value

    snapshot = scrub_value(run_snapshot(store, args.dag_id, run_id))
    print(json.dumps(snapshot, indent=2, default=str) if args.json else format_snapshot(snapshot))
    return 0


PROG = "airflow-agents"

VALIDATE_DESCRIPTION = """\
Validate workflow definitions (every problem of a file, one per line) and print, for each valid
workflow, the most one run can cost, in three figures:

  realtime                  every agent a real-time call: the price without batch delivery
  as declared               agents with delivery: batch at the providers' batch price (genai-prices'
                            batch rate, else half the real-time price), the others real-time
  batch where possible      what switching every agent that can be batched would cost (agents with
                            tools or repeat_until must stay real-time and count at real-time prices)

The bound assumes every call uses max_tokens, every upstream answer is inlined into the prompt, tool
agents use all max_rounds and repeat_until agents all max_iterations, priced at the dearer of the
model and its fallbacks. Retries are not included (a run's cost_budget caps them). A for_each
expression is counted as one item; models without a price are listed and left out.
"""


def build_parser() -> argparse.ArgumentParser:
    from airflow_agent_provider.cli.errors import OneLineParser

    parser = OneLineParser(prog=PROG, description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser(
        "validate",
        help="validate workflow definition files or folders, and print each one's worst-case cost per run",
        description=VALIDATE_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("paths", nargs="+", help="YAML files or folders of them")
    p.add_argument("--no-costs", action="store_true", help="only validate; do not price the workflows")
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

    p = sub.add_parser(
        "status", help="a run's snapshot from the store: spend, reservations, breakers, pauses"
    )
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
    from airflow_agent_provider.cli.errors import run

    args = build_parser().parse_args(argv)
    # stdout carries the command's data (tables, JSON); the provider's info logs would mix into it.
    logging.getLogger("airflow_agent_provider").setLevel(logging.WARNING)
    command = " ".join(w for w in (args.command, getattr(args, "pools_command", None)) if w)
    return run(f"{PROG} {command}", lambda: args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
