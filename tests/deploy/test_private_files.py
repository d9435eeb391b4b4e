from __future__ import annotations

import os
import stat

from airflow_agent_provider.deploy._private_files import write_private


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_a_new_file_is_created_readable_by_the_owner_only(tmp_path):
    target = tmp_path / "secrets.json"
    old_umask = os.umask(0o077 | 0o200)  # even a umask that removes the owner's write bit
    try:
        write_private(target, '{"k": "v"}')
    finally:
        os.umask(old_umask)
    assert target.read_text() == '{"k": "v"}'
    assert _mode(target) == 0o600


def test_an_existing_file_is_replaced_whole_and_made_private(tmp_path):
    target = tmp_path / "airflow.env"
    target.write_text("OLD=1\n" * 100)
    target.chmod(0o644)
    write_private(target, "NEW=2\n")
    assert target.read_text() == "NEW=2\n"
    assert _mode(target) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["airflow.env"]  # no temporary file left


def test_a_leftover_temporary_file_does_not_leak_its_mode(tmp_path):
    target = tmp_path / "state.json"
    leftover = tmp_path / "state.json.tmp"
    leftover.write_text("half-written")
    leftover.chmod(0o666)
    write_private(target, "{}")
    assert target.read_text() == "{}"
    assert _mode(target) == 0o600
    assert not leftover.exists()
