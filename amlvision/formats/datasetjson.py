"""``dataset.json``: what ``pack --to ctf|map`` writes beside its files (format, class names, shape, files).

One reader with one error policy: a missing file is "no metadata" (CNTK's own CTF files have none),
a file that is there but is not a JSON object is an error naming the file — never silently ignored.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

DATASET_JSON = "dataset.json"


class DatasetJsonError(ValueError):
    """``dataset.json`` exists but cannot be used; the message names the file."""


def dataset_json_path(path: str | Path) -> Path:
    """The ``dataset.json`` that describes ``path`` (a folder, or a file inside that folder)."""
    path = Path(path)
    return (path if path.is_dir() else path.parent) / DATASET_JSON


def read_dataset_json(path: str | Path, *, format: str | None = None) -> dict[str, Any]:
    """The metadata describing ``path`` (folder or a file in it); ``{}`` when there is none.

    ``format``: only metadata of that format (``"ctf"``, ``"map"``) counts; another format's is ``{}``.
    """
    meta_file = dataset_json_path(path)
    if not meta_file.is_file():
        return {}
    try:
        meta = json.loads(meta_file.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise DatasetJsonError(f"{meta_file}: invalid JSON ({exc})") from None
    if not isinstance(meta, dict):
        raise DatasetJsonError(f"{meta_file}: expected a JSON object, got {type(meta).__name__}")
    if format is not None and meta.get("format") != format:
        return {}
    return meta


def write_dataset_json(folder: str | Path, meta: dict[str, Any]) -> Path:
    out = Path(folder) / DATASET_JSON
    out.write_text(json.dumps(meta, indent=2), encoding="utf-8")
    return out
