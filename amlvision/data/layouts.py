"""The readers of each source layout, one function per layout, each returning ``{split: LabeledImages}``.

Which layout a path is gets decided once, by ``amlvision.data.resolve`` (a named kind, or sniffing);
these functions only read. The tests for "is it this layout?" used by the sniffing live here too.
"""

from __future__ import annotations

import os
from pathlib import Path

from amlvision.data.collection import LabeledImages
from amlvision.data.ctfimages import read_ctf_images
from amlvision.data.folders import class_folder_names, is_class_tree, read_class_tree
from amlvision.data.labelfile import is_label_file_name, read_label_file, sort_labels
from amlvision.formats.mapfile import CLASS_NAMES_FILE, looks_like_map_file, read_map_file
from amlvision.formats.splits import SPLIT_NAMES, split_of


class SourceError(ValueError):
    """A path is not a source layout amlvision recognises; the message says what was found."""


def read_map_images(path: Path, class_names: list[str] | None = None, skip_bad: bool = False) -> LabeledImages:
    """One CNTK map file as ``LabeledImages``."""
    entries = read_map_file(path, class_names=class_names, skip_bad=skip_bad)
    return LabeledImages(
        class_names=entries.class_names,
        labels=entries.labels,
        paths=entries.paths,
        sources=entries.sources,
        skipped=entries.skipped,
        origin=entries.origin,
    )


def _split_of_image_folder(folder: Path, label_file: Path) -> str | None:
    """The split the image folder a label file uses stands for: Kaggle's ``train/`` beside ``trainLabels.csv``.

    The label file's own folder counts only by its exact name (``train/labels.csv``): a prefix match
    would take ``testing_data/labels.txt`` (or pytest's ``test_x0/``) for a test split.
    """
    if folder.resolve() == label_file.parent.resolve():
        return SPLIT_NAMES.get(folder.name.lower())
    return split_of(folder.name)


def label_options_given(options: dict) -> bool:
    keys = ("file_column", "label_column", "delimiter", "has_header", "file_suffix")
    return any(options.get(k) is not None for k in keys)


def read_label_files(
    files: list[Path], image_root: Path | None, options: dict, class_names: list[str] | None, skip_bad: bool
) -> dict[str, LabeledImages]:
    def read_all(names: list[str] | None) -> dict[str, LabeledImages]:
        result: dict[str, LabeledImages] = {}
        for file in files:
            images = read_label_file(file, image_root=image_root, class_names=names, skip_bad=skip_bad, **options)
            split = _split_of_image_folder(Path(images.origin), file) or split_of(file.stem) or "all"
            if split in result:
                raise SourceError(f"{file}: two label files map to split {split!r}; pass labels_file= to pick one")
            result[split] = images
        return result

    splits = read_all(class_names)
    if class_names is None and len(splits) > 1:
        union = sort_labels({name for images in splits.values() for name in images.class_names})
        if any(images.class_names != union for images in splits.values()):
            splits = read_all(union)  # one class index order for every split
    return splits


def map_files(folder: Path) -> list[Path]:
    return [
        folder / name
        for name in sorted(os.listdir(folder))
        if name.lower().endswith(".txt") and "map" in name.lower() and looks_like_map_file(folder / name)
    ]


def read_map_files(files: list[Path], class_names: list[str] | None, skip_bad: bool) -> dict[str, LabeledImages]:
    result: dict[str, LabeledImages] = {}
    for file in files:
        split = split_of(file.stem) or "all"
        if split in result:
            raise SourceError(f"{file}: two map files map to split {split!r}; open one map file directly")
        result[split] = read_map_images(file, class_names, skip_bad)
    return result


def read_ctf_files(files: list[Path], class_names: list[str] | None) -> dict[str, LabeledImages]:
    result: dict[str, LabeledImages] = {}
    for file in files:
        split = split_of(file.stem) or "all"
        if split in result:
            raise SourceError(f"{file}: two CTF files map to split {split!r}; open one CTF file directly")
        result[split] = read_ctf_images(file, class_names=class_names)
    return result


def split_folders(folder: Path) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for name in sorted(os.listdir(folder)):
        split = SPLIT_NAMES.get(name.lower())
        if split and (folder / name).is_dir() and is_class_tree(folder / name):
            if split in found:
                raise SourceError(f"{folder}: both {found[split].name}/ and {name}/ are split {split!r}")
            found[split] = folder / name
    return found


def top_label_files(folder: Path) -> list[Path]:
    """Label files found without being named: ``*.csv``/``*.tsv``, or any text file with "label" in its name.

    Other ``.txt`` files (notes, class lists) are not guessed at; pass them with ``labels_file=``. Kaggle's
    ``sampleSubmission.csv`` (placeholder labels for the unlabelled ``test/``) is never taken for labels.
    """
    found = []
    for name in sorted(os.listdir(folder)):
        lowered = name.lower()
        if not (folder / name).is_file() or not is_label_file_name(name) or name == CLASS_NAMES_FILE:
            continue
        if "submission" in lowered:  # Kaggle's sampleSubmission.csv holds placeholder labels, not truth
            continue
        if lowered.endswith((".csv", ".tsv")) or "label" in lowered:
            found.append(folder / name)
    return found


def read_split_folders(folder: Path, class_names: list[str] | None, skip_bad: bool) -> dict[str, LabeledImages]:
    """``train/``, ``test/``, ``val/`` class-folder trees with one class index order across them."""
    split_dirs = split_folders(folder)
    names = class_names or sorted({n for d in split_dirs.values() for n in class_folder_names(d)})
    return {split: read_class_tree(d, names, skip_bad=skip_bad) for split, d in split_dirs.items()}
