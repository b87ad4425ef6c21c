"""Command-line options that describe a source: one argument group, shared by train.py, ``pack``, ``inspect``.

``--data`` itself may name its kind (``KIND:PATH``, ``amlvision.data.resolve``); these options say how to
read labels where the layout alone does not: label-file columns and delimiter, a class list, or a
regular expression that takes the label from each file name.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def _column(value: str) -> int | str:
    return int(value) if value.lstrip("-").isdigit() else value


def add_source_options(parser: argparse.ArgumentParser) -> None:
    """Add the group. A parser whose ``argument_default`` is ``SUPPRESS`` (train.py: flags override YAML)
    keeps unset flags out of the result; others get ``None``."""
    group = parser.add_argument_group("source options (label files, map files, class list, labels from file names)")
    group.add_argument("--labels-file", help="label file (CSV/TSV/whitespace) mapping image files or ids to labels")
    group.add_argument("--file-column", type=_column, help="column of the file name/id: header name or 0-based index")
    group.add_argument("--label-column", type=_column, help="column of the label: header name or 0-based index")
    group.add_argument("--delimiter", help="label-file delimiter: comma, tab, semicolon, whitespace or one character")
    header = group.add_mutually_exclusive_group()
    unset = {} if parser.argument_default == argparse.SUPPRESS else {"default": None}
    header.add_argument("--header", dest="has_header", action="store_true", help="first row is a header", **unset)
    header.add_argument("--no-header", dest="has_header", action="store_false", help="first row is data")
    group.add_argument("--file-suffix", help="suffix added to ids without one, e.g. .png (default: try common ones)")
    group.add_argument(
        "--classes", help="class names in index order: comma-separated, or a file with one name per line"
    )
    group.add_argument(
        "--label-from-name",
        metavar="REGEX",
        help="take each image's label from its file name: group 1 of REGEX searched in the name "
        "(default for flat folders: <label><sep><id>, e.g. crazing_1.jpg, cat.1.jpg)",
    )


def parse_classes(value: str | None) -> list[str] | None:
    if not value:
        return None
    if Path(value).is_file():
        return [line.strip() for line in Path(value).read_text(encoding="utf-8").splitlines() if line.strip()]
    return [name.strip() for name in value.split(",") if name.strip()]


def source_options(args: argparse.Namespace) -> dict[str, Any]:
    """Keyword arguments for ``resolve`` (``SourceOptions`` fields) from parsed ``add_source_options`` flags."""
    return {
        "labels_file": args.labels_file,
        "file_column": args.file_column,
        "label_column": args.label_column,
        "delimiter": args.delimiter,
        "has_header": args.has_header,
        "file_suffix": args.file_suffix,
        "class_names": parse_classes(args.classes),
        "label_from_name": args.label_from_name,
    }
