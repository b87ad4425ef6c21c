"""A cheap fingerprint of a source: size + mtime decide whether the content hash must be recomputed.

Caches (packed copies, extractions) are keyed by what the data *is*, so a copied or touched but
identical archive still finds its cache. Hashing 135 MB on every ``make train`` only to learn that
nothing changed is waste: the content sha256 of a file is remembered under ``$AMLVISION_CACHE/
fingerprints/`` keyed by (resolved path, size, mtime), and a file whose size and mtime are unchanged
is not read at all. A folder's fingerprint is its files' relative paths, sizes and mtimes (``stat``
only, never the bytes).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from amlvision.data.archives import cache_root

_BLOCK = 1 << 24


def _content_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def file_fingerprint(path: str | Path) -> str:
    """sha256 of the file's bytes, read only when its (path, size, mtime) has not been seen before."""
    path = Path(path)
    stat = path.stat()
    key = hashlib.sha256(f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:32]
    record = cache_root() / "fingerprints" / key
    try:
        known = record.read_text().strip()
        if len(known) == 64:
            return known
    except OSError:
        pass
    value = _content_sha256(path)
    try:
        record.parent.mkdir(parents=True, exist_ok=True)
        tmp = record.with_name(f".{key}.{os.getpid()}")
        tmp.write_text(value)
        os.replace(tmp, record)
    except OSError:  # a read-only cache only costs the next run a re-hash
        pass
    return value


def folder_fingerprint(folder: str | Path) -> str:
    """sha256 of every file's relative path, size and mtime below ``folder`` (no file is read)."""
    folder = Path(folder)
    digest = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames.sort()
        for name in sorted(filenames):
            stat = os.stat(os.path.join(dirpath, name))
            rel = os.path.relpath(os.path.join(dirpath, name), folder)
            digest.update(f"{rel}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def fingerprint(path: str | Path) -> str:
    """``file_fingerprint`` of a file (an archive, a label file), ``folder_fingerprint`` of a folder."""
    path = Path(path)
    return file_fingerprint(path) if path.is_file() else folder_fingerprint(path)
