"""Labels taken from file names: a flat folder of ``crazing_1.jpg``, ``patches_17.jpg`` or Kaggle's ``cat.1.jpg``.

Many industrial defect sets (NEU surface defects: ``rolled-in_scale_12.jpg``) and Kaggle's dogs-vs-cats
put the class in the file name instead of a folder. ``NAME_RULE`` recognises ``<label><sep><id>``
(separator ``_``, ``.``, ``-`` or a space; the id is digits at the end of the stem). The label is
everything before the *last* separator, so multi-word labels (``rolled-in_scale``) stay whole. A folder
counts as such a layout only when every image file matches and there are at least two labels; any
other convention is given with ``--label-from-name REGEX`` (one group: the label, searched in the file name).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from amlvision.data.collection import LabeledImages
from amlvision.data.folders import is_image_name
from amlvision.data.labelfile import sort_labels

NAME_RULE = r"^(.+)[_.\- ]\d+$"  # applied to the file stem


class NameRuleError(ValueError):
    """A file name does not fit the label-from-name rule, or the rule has not exactly one group."""


def compile_rule(pattern: str) -> re.Pattern[str]:
    try:
        rule = re.compile(pattern)
    except re.error as exc:
        raise NameRuleError(f"--label-from-name {pattern!r}: not a regular expression ({exc})") from None
    if rule.groups != 1:
        raise NameRuleError(f"--label-from-name {pattern!r}: needs exactly one group (the label), has {rule.groups}")
    return rule


def flat_image_names(folder: Path) -> list[str]:
    """Sorted names of the image files directly in ``folder`` (hidden files excepted)."""
    with os.scandir(folder) as entries:
        return sorted(e.name for e in entries if e.is_file() and not e.name.startswith(".") and is_image_name(e.name))


def label_of(name: str, rule: re.Pattern[str] | None) -> str | None:
    """The label a file name carries: ``rule`` searched in the name, or ``NAME_RULE`` on its stem."""
    match = rule.search(name) if rule is not None else re.match(NAME_RULE, os.path.splitext(name)[0])
    return match.group(1) if match and match.group(1) else None


def has_name_labels(folder: Path) -> bool:
    """True when every image file directly in ``folder`` is ``<label><sep><id>`` and there are 2+ labels."""
    names = flat_image_names(folder)
    labels = {label_of(name, None) for name in names}
    return len(names) >= 2 and None not in labels and len(labels) >= 2


def describe_rule(pattern: str | None) -> str:
    """The rule as ``inspect`` prints it."""
    if pattern:
        return f"file name: label = group 1 of --label-from-name {pattern!r}"
    return f"file name: label = the stem before its last separator ({NAME_RULE}: crazing_1.jpg -> crazing)"


def read_named_folder(
    folder: str | Path, pattern: str | None = None, class_names: list[str] | None = None, *, skip_bad: bool = False
) -> LabeledImages:
    """Read a flat folder whose image file names carry the label (see module docstring)."""
    folder = Path(folder)
    rule = compile_rule(pattern) if pattern else None
    paths: list[Path] = []
    found: list[str] = []
    skipped: list[tuple[str, str]] = []
    for name in flat_image_names(folder):
        label = label_of(name, rule)
        if label is None:
            reason = f"file name does not fit the rule ({describe_rule(pattern)})"
            if not skip_bad:
                raise NameRuleError(f"{folder / name}: {reason}")
            skipped.append((str(folder / name), reason))
            continue
        paths.append(folder / name)
        found.append(label)
    if not paths:
        raise NameRuleError(f"{folder}: no image file fits the rule ({describe_rule(pattern)})")
    names = list(class_names) if class_names is not None else sort_labels(set(found))
    index = {name: i for i, name in enumerate(names)}
    unknown = sorted(set(found) - set(index))
    if unknown:
        raise NameRuleError(f"{folder}: labels {unknown} from file names are not among the classes {names}")
    return LabeledImages(
        class_names=names,
        labels=np.asarray([index[label] for label in found], dtype=np.int64),
        paths=paths,
        skipped=skipped,
        origin=str(folder),
    )
