"""The one atomic-directory helper: build an output in ``.NAME.partial-HOST-PID-XXXX``, then rename it into place.

``atomic_dir`` is how every output folder of amlvision appears (packed datasets, ``pack --to ctf|map``,
extracted archives, test data and the cached test model): a folder that exists is complete. A process killed
mid-write leaves its partial folder behind; the next write of the same output removes it when it
belongs to a process of this host that no longer exists. Folders of live processes and of other
hosts (a shared network mount) are left alone.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
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


@contextlib.contextmanager
def atomic_dir(out: str | Path, *, overwrite: bool = False, keep_existing: bool = False) -> Iterator[Path]:
    """Yield an empty partial folder for ``out``; rename it to ``out`` when the block ends without error.

    ``out`` already there: an error, unless ``overwrite`` (the old folder is replaced, never half-deleted
    in place) or ``keep_existing`` (a cache: another process finished first, its result is kept and
    ours discarded). On an exception the partial folder is removed and ``out`` is untouched.
    """
    out = Path(out)
    if out.exists() and not (overwrite or keep_existing):
        raise FileExistsError(f"{out} already exists (pass overwrite=True / --overwrite to replace it)")
    tmp = make_partial(out)
    try:
        yield tmp
        if out.exists() and overwrite:
            old = out.with_name(f".{out.name}.old-{os.getpid()}")
            out.rename(old)
            tmp.rename(out)
            shutil.rmtree(old)
        else:
            try:
                tmp.rename(out)
            except OSError:
                if not (keep_existing and out.is_dir()):  # not a lost race with another process: a real failure
                    raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
