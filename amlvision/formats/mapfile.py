"""CNTK ImageDeserializer map files and ``class_names.txt``.

Map file (one sample per line, tab-separated, as CNTK's ImageDeserializer reads it)::

    train/cat/0001.png<TAB>3

An optional leading sequence-key column (``key<TAB>path<TAB>label``) is accepted too. Labels are
0-based class indexes. Relative paths resolve against the map file's folder, so a packed map
directory can be moved as a whole. Class names, which the map file cannot hold, live in
``class_names.txt`` beside it (one per line, index order) when amlvision writes one.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

CLASS_NAMES_FILE = "class_names.txt"


class MapFileError(ValueError):
    """A map or mean file is malformed; the message names the file and line."""


@dataclass
class MapEntries:
    """The rows of one map file: image paths, int64 class indexes into ``class_names``, ``file:line`` of each.

    ``amlvision.data`` turns it into ``LabeledImages`` (the same field names).
    """

    class_names: list[str]
    labels: np.ndarray
    paths: list[Path]
    sources: list[str]
    skipped: list[tuple[str, str]] = field(default_factory=list)
    origin: str = ""

    def __len__(self) -> int:
        return len(self.labels)


def read_class_names(path: str | Path) -> list[str]:
    return [line.rstrip("\r\n") for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]


def write_class_names(path: str | Path, class_names: list[str]) -> None:
    bad = [name for name in class_names if "\n" in name or "\r" in name or not name.strip()]
    if bad:
        raise ValueError(f"class names cannot be empty or contain line breaks: {bad}")
    Path(path).write_text("".join(f"{name}\n" for name in class_names), encoding="utf-8")


def looks_like_map_file(path: str | Path) -> bool:
    """True when the first non-blank line is ``path<TAB>integer`` (optionally with a key column)."""
    try:
        with open(path, encoding="utf-8-sig") as fh:
            for line in fh:
                if line.strip():
                    cells = line.rstrip("\r\n").split("\t")
                    return len(cells) in (2, 3) and cells[-1].strip().isdigit()
    except (OSError, UnicodeDecodeError):
        return False
    return False


def read_map_file(
    path: str | Path, *, class_names: list[str] | None = None, skip_bad: bool = False, check_files: bool = True
) -> MapEntries:
    """Read a CNTK map file; every error names ``file:line``."""
    path = Path(path)
    folder = path.parent
    paths: list[Path] = []
    labels: list[int] = []
    sources: list[str] = []
    skipped: list[tuple[str, str]] = []

    def bad(where: str, reason: str) -> None:
        if not skip_bad:
            raise MapFileError(f"{where}: {reason}")
        skipped.append((where, reason))

    with open(path, encoding="utf-8-sig") as fh:
        for number, line in enumerate(fh, start=1):
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            where = f"{path}:{number}"
            cells = line.split("\t")
            if len(cells) not in (2, 3):
                bad(where, f"expected 'path<TAB>label' (or 'key<TAB>path<TAB>label'), found {len(cells)} field(s)")
                continue
            name, label_text = cells[-2].strip(), cells[-1].strip()
            if not label_text.isdigit():
                bad(where, f"label {label_text!r} is not a non-negative integer class index")
                continue
            image = Path(name) if os.path.isabs(name) else folder / name
            if check_files and not image.is_file():
                bad(where, f"image file {image} not found")
                continue
            paths.append(image)
            labels.append(int(label_text))
            sources.append(where)
    if class_names is None:
        names_file = folder / CLASS_NAMES_FILE
        if names_file.is_file():
            class_names = read_class_names(names_file)
        else:
            class_names = [str(i) for i in range(max(labels, default=-1) + 1)]
    keep = [i for i, label in enumerate(labels) if label < len(class_names)]
    for i in sorted(set(range(len(labels))) - set(keep)):
        bad(sources[i], f"label {labels[i]} is outside the {len(class_names)} classes {class_names}")
    return MapEntries(
        class_names=list(class_names),
        labels=np.asarray([labels[i] for i in keep], dtype=np.int64),
        paths=[paths[i] for i in keep],
        sources=[sources[i] for i in keep],
        skipped=skipped,
        origin=str(path),
    )


def write_map_file(path: str | Path, entries: list[tuple[str, int]]) -> None:
    """Write ``(relative_path, label)`` rows; paths must not contain tabs or line breaks."""
    with open(path, "w", encoding="utf-8", newline="\n") as fh:
        for name, label in entries:
            if any(c in name for c in "\t\r\n"):
                raise MapFileError(f"{name!r}: a map-file path cannot contain tabs or line breaks")
            fh.write(f"{name}\t{int(label)}\n")
