"""
Starting and stopping long-running processes by *session*, without touching anything else.

Every component is started as the leader of a new session. Airflow moves task processes into their
own process groups, and Celery forks pool processes, so a process group does not cover everything a
component started; the session does (a ``setpgid`` does not leave the session), even for children
that were re-parented to init. Stopping a component therefore means: SIGTERM the leader's group for
a graceful shutdown, wait, then SIGKILL whatever is still in the session. A recorded start time
guards against signalling an unrelated process that reuses a pid much later.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any


@dataclass
class Proc:
    """A started component, as recorded in the state file."""

    name: str
    pid: int
    start_time: int
    log: str
    ports: dict[str, int]
    cmd: list[str]
    #: Postgres needs SIGINT (fast shutdown): SIGTERM would wait for every client to disconnect.
    stop_signal: int = signal.SIGTERM

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Proc:
        return cls(**data)


def _stat(pid: int) -> tuple[str, int, int, int] | None:
    """(state, ppid, session id, start time in clock ticks) from /proc, or None if gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    fields = raw[raw.rindex(")") + 2 :].split()
    return fields[0], int(fields[1]), int(fields[3]), int(fields[19])


def start_time(pid: int) -> int:
    info = _stat(pid)
    return info[3] if info else -1


def session_members(sid: int) -> list[int]:
    """Live (non-zombie) processes of session ``sid``."""
    members = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            info = _stat(int(entry))
            if info and info[2] == sid and info[0] != "Z":
                members.append(int(entry))
    return members


def leader_matches(proc: Proc) -> bool:
    """False when ``proc.pid`` is now another process (pid reuse) or gone."""
    return start_time(proc.pid) == proc.start_time


def members(proc: Proc) -> list[int]:
    """
    Live processes of the component's session.

    Linux does not hand out a pid that is still some session's id, so if ``proc.pid`` now belongs to
    a process started at another time, the recorded session is certainly gone.
    """
    info = _stat(proc.pid)
    if info is not None and info[3] != proc.start_time:
        return []
    return session_members(proc.pid)


def alive(proc: Proc) -> bool:
    """Whether anything of the component's session still runs."""
    return bool(members(proc))


def spawn(
    name: str,
    cmd: list[str],
    env: dict[str, str],
    log_path: Path,
    *,
    cwd: Path | None = None,
    ports: dict[str, int] | None = None,
    user: str | None = None,
) -> tuple[Proc, subprocess.Popen[bytes]]:
    """Start ``cmd`` as a new session leader, stdout and stderr appended to ``log_path``."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        popen = subprocess.Popen(
            cmd,
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            user=user,
        )
    return Proc(name, popen.pid, start_time(popen.pid), str(log_path), dict(ports or {}), list(cmd)), popen


def resolve_argv(cmd: Iterable[str], env: dict[str, str]) -> list[str]:
    """``cmd`` with its program resolved: ``python`` is this interpreter, anything else found on ``env``'s PATH."""
    argv = list(cmd)
    if argv[0] == "python":
        argv[0] = sys.executable
    else:
        argv[0] = shutil.which(argv[0], path=env["PATH"]) or argv[0]
    return argv


def signal_session(proc: Proc, sig: int) -> None:
    """Send ``sig`` to every live member of the component's session."""
    for pid in members(proc):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def stop(proc: Proc, timeout: float = 15.0, popen: subprocess.Popen[bytes] | None = None) -> None:
    """Signal the leader's group (SIGTERM), wait up to ``timeout``, then SIGKILL the rest of the session."""
    if leader_matches(proc):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, proc.stop_signal)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _reap(popen)
        if not members(proc):
            break
        time.sleep(0.1)
    kill_session(proc, popen)


def stop_all(
    procs: list[Proc],
    popens: dict[str, subprocess.Popen[bytes]],
    timeout: float = 15.0,
    last: frozenset[str] = frozenset(),
) -> None:
    """
    Stop ``procs``: all but ``last`` together, then ``last`` one by one in reverse start order.

    Airflow's components stop together (a Celery worker's warm shutdown need not wait for the
    scheduler's), then the services they use: the LLM server, Redis, Postgres last. Stopping
    one by one took ~20 s per stack.
    """
    apps = [p for p in reversed(procs) if p.name not in last]
    with ThreadPoolExecutor(max_workers=max(1, len(apps))) as pool:
        list(pool.map(lambda proc: stop(proc, timeout=timeout, popen=popens.get(proc.name)), apps))
    for proc in reversed(procs):
        if proc.name in last:
            stop(proc, timeout=timeout, popen=popens.get(proc.name))
    for popen in popens.values():
        with contextlib.suppress(subprocess.TimeoutExpired):
            popen.wait(timeout=1)


def kill_session(proc: Proc, popen: subprocess.Popen[bytes] | None = None, timeout: float = 5.0) -> None:
    """SIGKILL everything in the session and wait until it is gone."""
    deadline = time.monotonic() + timeout
    while members(proc) and time.monotonic() < deadline:
        signal_session(proc, signal.SIGKILL)
        _reap(popen)
        time.sleep(0.05)
    _reap(popen)


def _reap(popen: subprocess.Popen[bytes] | None) -> None:
    if popen is not None:
        popen.poll()


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def wait_until(
    check: Any, timeout: float, what: str, *, interval: float = 0.25, proc: Proc | None = None
) -> None:
    """Poll ``check()`` until truthy; fail early when ``proc`` died, with its log's tail."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except Exception:  # a check that raises simply is not ready yet
            pass
        if proc is not None and not members(proc):
            raise RuntimeError(f"{what}: process exited\n{log_tail(proc.log)}")
        time.sleep(interval)
    raise TimeoutError(
        f"{what}: not ready after {timeout:.0f} s" + (f"\n{log_tail(proc.log)}" if proc else "")
    )


def log_tail(path: str, lines: int = 30) -> str:
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""
