"""Archives (``.tar``, ``.tar.gz``, ``.tgz``, ``.zip``) of any source layout, extracted once into a cache.

The cache folder is ``$AMLVISION_CACHE`` (default ``~/.cache/amlvision``); each archive gets a folder
keyed by its resolved path, size and modification time, so a changed archive is extracted afresh.
Extraction goes to a temporary folder that is renamed into place only when complete: an interrupted
extraction is never mistaken for a finished one. Tar members are extracted with the ``data`` filter
(no absolute paths, no links out of the folder, no device files).
"""

from __future__ import annotations

import hashlib
import os
import tarfile
import zipfile
from pathlib import Path

from amlvision.formats.atomic import atomic_dir

ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar", ".zip", ".tar.bz2", ".tar.xz")


class ArchiveError(ValueError):
    """An archive cannot be read or extracted."""


def cache_root() -> Path:
    env = os.environ.get("AMLVISION_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "amlvision"


def is_archive(path: str | Path) -> bool:
    name = str(path).lower()
    return Path(path).is_file() and name.endswith(ARCHIVE_SUFFIXES)


def archive_stem(path: Path) -> str:
    name = path.name
    for suffix in ARCHIVE_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def file_key(path: Path) -> str:
    """Cheap identity of a file: resolved path, size and mtime (content hashing is left to callers)."""
    stat = path.stat()
    text = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _extract_into(archive: Path, dest: Path) -> None:
    try:
        if archive.name.lower().endswith(".zip"):
            with zipfile.ZipFile(archive) as zf:
                bad = zf.testzip()
                if bad is not None:
                    raise ArchiveError(f"{archive}: member {bad!r} fails its CRC check")
                zf.extractall(dest)  # zipfile strips absolute paths and '..' components
        else:
            with tarfile.open(archive) as tar:
                tar.extractall(dest, filter="data")
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError) as exc:
        raise ArchiveError(f"{archive}: cannot extract ({type(exc).__name__}: {exc})") from exc


def content_root(folder: Path, keep: frozenset[str] = frozenset()) -> Path:
    """Descend through folders that hold exactly one sub-folder and nothing else (``archive/top/...``).

    A single sub-folder whose lower-cased name is in ``keep`` (e.g. ``test``) is not descended into.
    """
    while True:
        entries = [e for e in folder.iterdir() if not e.name.startswith(".") and e.name != "__MACOSX"]
        if len(entries) == 1 and entries[0].is_dir() and entries[0].name.lower() not in keep:
            folder = entries[0]
        else:
            return folder


def extract_cached(archive: str | Path, cache_dir: str | Path | None = None) -> Path:
    """Extract ``archive`` once (atomically) and return the folder it was extracted into."""
    archive = Path(archive)
    base = Path(cache_dir) if cache_dir else cache_root() / "extracted"
    dest = base / f"{archive_stem(archive)}-{file_key(archive)}"
    if not dest.is_dir():
        with atomic_dir(dest, keep_existing=True) as tmp:  # a lost race keeps the other process's copy
            _extract_into(archive, tmp)
    return dest
