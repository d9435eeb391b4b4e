"""
Files only their owner may read: the deployment's secrets, state, Redis config and env file.

One way to write them, so that none is ever readable by another local user, not even for a moment:
the content goes into a temporary file in the same directory that is created with mode 0600 (and
set to 0600 whatever the umask), and is then renamed over the target. A reader sees the old file
or the new one, never a half-written one, and an existing file's content is replaced whole.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

PRIVATE_MODE = 0o600


def write_private(path: str | Path, text: str) -> None:
    """Replace ``path`` with ``text``, readable and writable by the owner only (0600), atomically."""
    target = Path(path)
    tmp = target.with_name(f"{target.name}.tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()  # a leftover of an interrupted write: O_EXCL below must create a fresh file
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_MODE)
    try:
        os.fchmod(fd, PRIVATE_MODE)  # the umask may have removed the owner's bits
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


__all__ = ["PRIVATE_MODE", "write_private"]
