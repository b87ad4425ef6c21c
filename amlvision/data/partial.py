"""Temporary ``.NAME.partial-HOST-PID-XXXX`` folders beside an output, and removal of dead ones.

Outputs are built in such a folder and renamed into place when complete. A process killed
mid-write leaves its partial folder behind; the next write of the same output removes it when it
belongs to a process of this host that no longer exists. Folders of live processes and of other
hosts (a shared network mount) are left alone.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from pathlib import Path


def _host() -> str:
    return "".join(c if c.isalnum() else "_" for c in socket.gethostname())[:40] or "host"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def remove_dead_partials(out: Path) -> list[Path]:
    """Delete ``.{out.name}.partial-*`` folders left by dead processes of this host; return them."""
    prefix = f".{out.name}.partial-{_host()}-"
    removed = []
    if not out.parent.is_dir():
        return removed
    for entry in out.parent.iterdir():
        if not entry.name.startswith(prefix) or not entry.is_dir():
            continue
        pid_text = entry.name[len(prefix) :].split("-", 1)[0]
        if pid_text.isdigit() and int(pid_text) != os.getpid() and not _alive(int(pid_text)):
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
    return removed


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def make_partial(out: Path) -> Path:
    """A new empty partial folder for ``out`` (after clearing dead ones), with ordinary permissions.

    ``mkdtemp`` makes 0700 folders; the finished output is renamed, not copied, so it would stay
    unreadable to other users and to containers running as another user. It gets 0777 minus umask.
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    remove_dead_partials(out)
    folder = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-{_host()}-{os.getpid()}-", dir=out.parent))
    folder.chmod(0o777 & ~_umask())
    return folder
