"""Label files: CSV, TSV or whitespace-separated rows mapping an image file (or id) to a label.

Covers Kaggle's CIFAR-10 ``trainLabels.csv`` (``id,label`` header, ids without extension that
resolve to ``train/<id>.png``) as well as header-less ``file.png,label`` lists. Columns are chosen
by header name or 0-based position; the header is detected unless forced. Every error names the
label file and line.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np

from amlvision.data.collection import LabeledImages
from amlvision.data.folders import is_image_name

FILE_COLUMN_NAMES = ("file", "filename", "file_name", "image", "image_id", "img", "path", "id", "name", "fname")
LABEL_COLUMN_NAMES = ("label", "labels", "class", "class_name", "category", "target", "y")
_TRY_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".gif", ".webp")
DELIMITERS = {"comma": ",", "tab": "\t", "semicolon": ";", "whitespace": None, "space": None}


class LabelFileError(ValueError):
    """A label file is malformed or names an image/label that does not exist."""


def _detect_delimiter(first_line: str) -> str | None:
    for candidate in ("\t", ",", ";"):
        if candidate in first_line:
            return candidate
    return None  # whitespace


def _parse_delimiter(value: str | None, first_line: str) -> str | None:
    if value is None:
        return _detect_delimiter(first_line)
    if value in DELIMITERS:
        return DELIMITERS[value]
    if value in ("\\t", "\t"):
        return "\t"
    if len(value) != 1:
        raise LabelFileError(f"delimiter must be one character or one of {sorted(DELIMITERS)}, got {value!r}")
    return None if value == " " else value


def read_rows(path: Path, delimiter: str | None = None) -> list[tuple[int, list[str]]]:
    """Non-blank rows of ``path`` as ``(line_number, cells)``; ``delimiter=None`` auto-detects."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise LabelFileError(f"{path}: not a UTF-8 text file ({exc})") from exc
    lines = text.splitlines()
    first = next((line for line in lines if line.strip()), "")
    sep = _parse_delimiter(delimiter, first)
    rows: list[tuple[int, list[str]]] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        cells = line.split() if sep is None else next(csv.reader([line], delimiter=sep))
        rows.append((number, [c.strip() for c in cells]))
    return rows


class _Resolver:
    """Finds the image file a label-file cell refers to, inside one image folder."""

    def __init__(self, folder: Path, file_suffix: str | None):
        self.folder = folder
        self.file_suffix = file_suffix
        self._names: set[str] | None = None
        self._stems: dict[str, str | None] = {}

    def _index(self) -> set[str]:
        if self._names is None:
            with os.scandir(self.folder) as entries:
                self._names = {e.name for e in entries if e.is_file()}
            for name in sorted(self._names):
                if is_image_name(name):
                    stem = os.path.splitext(name)[0]
                    self._stems[stem] = None if stem in self._stems else name  # None: ambiguous
        return self._names

    def resolve(self, cell: str) -> Path | None:
        if not cell:
            return None
        if "/" in cell or "\\" in cell or os.path.isabs(cell):
            direct = self.folder / cell.replace("\\", "/")
            for candidate in (direct, *(direct.with_name(direct.name + s) for s in self._suffixes())):
                if candidate.is_file():
                    return candidate
            return None
        names = self._index()
        if cell in names:
            return self.folder / cell
        if self.file_suffix and cell + self.file_suffix in names:
            return self.folder / (cell + self.file_suffix)
        name = self._stems.get(cell)
        return self.folder / name if name else None

    def _suffixes(self) -> tuple[str, ...]:
        return (self.file_suffix,) if self.file_suffix else _TRY_SUFFIXES

    def tried(self, cell: str) -> str:
        return ", ".join([cell] + [cell + s for s in self._suffixes()])


def _column(
    spec: int | str | None, header: list[str] | None, defaults: tuple[str, ...], fallback: int, what: str, path: Path
) -> int:
    if spec is None:
        if header:
            lowered = [h.lower() for h in header]
            for name in defaults:
                if name in lowered:
                    return lowered.index(name)
        return fallback
    if isinstance(spec, int) or str(spec).lstrip("-").isdigit():
        return int(spec)
    if not header:
        raise LabelFileError(f"{path}: {what} column {spec!r} is a name but the file has no header row")
    lowered = [h.lower() for h in header]
    if spec.lower() not in lowered:
        raise LabelFileError(f"{path}: no {what} column named {spec!r}; header is {header}")
    return lowered.index(spec.lower())


def _looks_like_header(cells: list[str], file_col: int, label_col: int) -> bool:
    known = set(FILE_COLUMN_NAMES) | set(LABEL_COLUMN_NAMES)
    picked = [cells[i].lower() for i in (file_col, label_col) if i < len(cells)]
    return any(cell in known for cell in picked)


def _image_folder(
    base: Path, sample: list[list[str]], file_col: int, file_suffix: str | None, label_file: Path
) -> Path:
    """The folder whose files the label file names: ``base`` or one of its sub-folders (Kaggle's ``train/``).

    The folder where most of the sampled rows resolve wins; on a tie, a folder whose name starts the
    label file's name (``train/`` for ``trainLabels.csv``), then ``base``. Kaggle's ``train/`` and
    ``test/`` both hold ``1.png``, so resolving alone cannot decide.
    """
    subdirs = [base / d for d in sorted(os.listdir(base)) if (base / d).is_dir() and not d.startswith(".")]
    stem = label_file.stem.lower()

    def score(folder: Path) -> tuple[int, int, int]:
        resolver = _Resolver(folder, file_suffix)
        hits = sum(1 for cells in sample if file_col < len(cells) and resolver.resolve(cells[file_col]) is not None)
        named = int(folder != base and stem.startswith(folder.name.lower()))
        return hits, named, int(folder == base)

    best = max([base, *subdirs], key=score)
    return best if score(best)[0] else base


def sort_labels(labels: set[str]) -> list[str]:
    """Sorted unique labels; numerically when every label is an integer (``2`` before ``10``)."""
    if labels and all(label.lstrip("-").isdigit() for label in labels):
        return sorted(labels, key=int)
    return sorted(labels)


def read_label_file(
    path: str | Path,
    *,
    file_column: int | str | None = None,
    label_column: int | str | None = None,
    delimiter: str | None = None,
    has_header: bool | None = None,
    file_suffix: str | None = None,
    class_names: list[str] | None = None,
    image_root: str | Path | None = None,
    skip_bad: bool = False,
) -> LabeledImages:
    """Read a label file into ``LabeledImages`` (``origin`` records the image folder used)."""
    path = Path(path)
    rows = read_rows(path, delimiter)
    if not rows:
        raise LabelFileError(f"{path}: no rows")
    if file_suffix and not file_suffix.startswith("."):
        file_suffix = "." + file_suffix
    by_name = any(
        isinstance(s, str) and not s.lstrip("-").isdigit() for s in (file_column, label_column) if s is not None
    )
    first_cells = rows[0][1]
    detect = has_header is None
    if detect:
        has_header = by_name or _looks_like_header(
            first_cells,
            int(file_column) if file_column is not None else 0,
            int(label_column) if label_column is not None else 1,
        )
    header = first_cells if has_header else None
    body = rows[1:] if has_header else rows
    file_col = _column(file_column, header, FILE_COLUMN_NAMES, 0, "file", path)
    label_col = _column(label_column, header, LABEL_COLUMN_NAMES, 1 if file_col != 1 else 0, "label", path)
    base = Path(image_root) if image_root else path.parent
    folder = _image_folder(base, [cells for _, cells in body[:20]], file_col, file_suffix, path)
    if detect and not has_header and len(body) > 1:
        # A first row that names no image while the next one does is an unrecognised header row.
        probe = _Resolver(folder, file_suffix)
        cells0, cells1 = body[0][1], body[1][1]
        if (file_col >= len(cells0) or probe.resolve(cells0[file_col]) is None) and (
            file_col < len(cells1) and probe.resolve(cells1[file_col]) is not None
        ):
            body = body[1:]
    resolver = _Resolver(folder, file_suffix)
    need = max(file_col, label_col) + 1

    entries: list[tuple[int, Path, str]] = []
    skipped: list[tuple[str, str]] = []

    def bad(where: str, reason: str) -> None:
        if not skip_bad:
            raise LabelFileError(f"{where}: {reason}")
        skipped.append((where, reason))

    for number, cells in body:
        where = f"{path}:{number}"
        if len(cells) < need:
            bad(where, f"expected at least {need} columns, found {len(cells)}: {cells}")
            continue
        file_cell, label = cells[file_col], cells[label_col]
        image = resolver.resolve(file_cell)
        if image is None:
            bad(where, f"image {file_cell!r} not found in {folder} (tried {resolver.tried(file_cell)})")
            continue
        if not label:
            bad(where, "empty label")
            continue
        entries.append((number, image, label))

    names = sort_labels({label for _, _, label in entries}) if class_names is None else list(class_names)
    index = {name: i for i, name in enumerate(names)}
    paths: list[Path] = []
    labels: list[int] = []
    sources: list[str] = []
    for number, image, label in entries:
        if label not in index:
            bad(f"{path}:{number}", f"label {label!r} is not one of the classes {names}")
            continue
        paths.append(image)
        labels.append(index[label])
        sources.append(f"{path}:{number}")
    skipped.sort(key=lambda item: int(item[0].rsplit(":", 1)[1]))  # report in file order
    return LabeledImages(
        class_names=names,
        labels=np.asarray(labels, dtype=np.int64),
        paths=paths,
        sources=sources,
        skipped=skipped,
        origin=str(folder),
    )


def is_label_file_name(name: str) -> bool:
    return os.path.splitext(name)[1].lower() in (".csv", ".tsv", ".txt", ".lst")


__all__ = ["LabelFileError", "is_label_file_name", "read_label_file", "read_rows", "sort_labels"]
