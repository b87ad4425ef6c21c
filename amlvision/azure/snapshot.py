"""What Azure ML would upload as the run's snapshot of the source folder, and whether it fits.

Azure ML zips the source directory minus the paths its ignore file names (``.amlignore``, else
``.gitignore``) and refuses snapshots over 300 MB or 2,000 files. Checking here catches a
forgotten data folder or virtual environment before an upload that would fail minutes later.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from azureml._project.ignore_file import get_project_ignore_file
from azureml._restclient.constants import SNAPSHOT_MAX_FILES, SNAPSHOT_MAX_SIZE_BYTES


@dataclass(frozen=True)
class Snapshot:
    files: int
    bytes: int
    ignore_file: str | None
    largest: list[tuple[str, int]]

    def problems(self) -> list[str]:
        out = []
        if self.bytes > SNAPSHOT_MAX_SIZE_BYTES:
            limit_mb = SNAPSHOT_MAX_SIZE_BYTES // 2**20
            out.append(
                f"snapshot is {self.bytes / 2**20:.0f} MB, over Azure ML's {limit_mb} MB limit; "
                f"add the largest paths to .amlignore: {self.largest}"
            )
        if self.files > SNAPSHOT_MAX_FILES:
            out.append(f"snapshot has {self.files} files, over Azure ML's {SNAPSHOT_MAX_FILES}-file limit")
        return out


def measure_snapshot(source_directory: Path) -> Snapshot:
    """Walk ``source_directory`` as Azure ML's snapshot does, skipping ignored folders without entering them."""
    ignore = get_project_ignore_file(str(source_directory))
    has_ignore = bool(ignore.exists())
    files, total, sizes = 0, 0, []
    for dirpath, dirnames, filenames in os.walk(source_directory):
        rel_dir = os.path.relpath(dirpath, source_directory)
        kept = []
        for d in dirnames:
            rel = os.path.normpath(os.path.join(rel_dir, d))
            if d == ".git" or (has_ignore and ignore.is_file_excluded(rel + "/")):
                continue
            kept.append(d)
        dirnames[:] = kept
        for name in filenames:
            rel = os.path.normpath(os.path.join(rel_dir, name))
            if has_ignore and ignore.is_file_excluded(rel):
                continue
            size = os.path.getsize(os.path.join(dirpath, name))
            files, total = files + 1, total + size
            sizes.append((rel, size))
    sizes.sort(key=lambda item: -item[1])
    return Snapshot(files=files, bytes=total, ignore_file=ignore.get_path() if has_ignore else None, largest=sizes[:5])
