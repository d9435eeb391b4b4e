"""
``python -m airflow_agent_provider.deploy.local up|down|status``: the command line of the native launcher.

See :mod:`airflow_agent_provider.deploy.local` for what the actions do and their exit codes.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from typing import Any

from airflow_agent_provider.deploy._private_files import write_private
from airflow_agent_provider.deploy.local import DEFAULT_DIR, SECRETS_FILE, LocalDeployment


def _print_status(report: dict[str, dict[str, Any]]) -> None:
    print(f"{'component':<24}{'pid':>8}  {'running':<8}{'healthy':<8}ports")
    for name, row in report.items():
        ports = ", ".join(f"{k}={v}" for k, v in row["ports"].items())
        print(f"{name:<24}{row['pid']:>8}  {str(row['running']):<8}{str(row['healthy']):<8}{ports}")


PROG = "python -m airflow_agent_provider.deploy.local"


def main(argv: list[str] | None = None) -> int:
    from airflow_agent_provider.cli.errors import OneLineParser, run

    parser = OneLineParser(prog=PROG, description="Run the provider's multi-process deployment natively.")
    parser.add_argument("action", choices=["up", "down", "status"])
    parser.add_argument("--dir", default=DEFAULT_DIR, help=f"working directory (default {DEFAULT_DIR})")
    parser.add_argument("--workers", type=int, default=2, help="Celery workers (default 2)")
    parser.add_argument("--concurrency", type=int, default=2, help="task slots per worker (default 2)")
    parser.add_argument("--llm-latency", type=float, default=0.0, help="seconds per LLM answer (default 0)")
    parser.add_argument("--dags-folder", default="dags", help="DAGs folder (default ./dags)")
    args = parser.parse_args(argv)
    if args.workers < 1 or args.concurrency < 1 or args.llm_latency < 0:
        parser.error("--workers and --concurrency must be at least 1, --llm-latency at least 0")
    return run(f"{PROG} {args.action}", lambda: _run_action(args))


def _run_action(args: argparse.Namespace) -> int:
    dep = LocalDeployment(
        args.dir,
        workers=args.workers,
        dags_folder=args.dags_folder,
        llm_latency=args.llm_latency,
        concurrency=args.concurrency,
    )
    if args.action == "up":
        dep.up()
        _print_status(dep.status())
        print(f"\nAPI/UI: {dep.api_url}  (user admin, password in {dep.dir / SECRETS_FILE})")
        print(f"LLM server: {dep.state['urls']['llm']}   logs: {dep.logs}")
        print(f"airflow CLI: set -a; . {dep.dir / 'airflow.env'}; set +a; airflow dags list")
        _write_env_file(dep)
        return 0
    if dep._state is None:
        what = "nothing to stop" if args.action == "down" else "nothing to report"
        print(
            f"{PROG} {args.action}: no deployment recorded in {dep.dir} ({what}; see --dir)", file=sys.stderr
        )
        return 1
    if args.action == "status":
        report = dep.status()
        _print_status(report)
        return 0 if all(r["healthy"] for r in report.values()) else 1
    report = dep.down()
    print(f"stopped: {', '.join(report['stopped']) or 'nothing'}")
    if report["ports_open"] or report["still_running"]:
        print(
            f"{PROG} down: still open ports: {report['ports_open']}, still running: {report['still_running']}",
            file=sys.stderr,
        )
        return 1
    return 0


def _write_env_file(dep: LocalDeployment) -> None:
    """``DIR/airflow.env``: the deployment's Airflow settings, to source in a shell (0600: secrets)."""
    lines = [f"{k}={shlex.quote(v)}" for k, v in dep.env.items() if k.startswith("AIRFLOW")]
    path = dep.dir / "airflow.env"
    write_private(path, "\n".join(lines) + "\n")


__all__ = ["PROG", "main"]
