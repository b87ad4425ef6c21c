"""``open_collection``: recognise a source layout on disk and read it into ``LabeledImages`` per split.

Recognised, in this order (first match wins):

1. an archive (``.tar``, ``.tar.gz``, ``.tgz``, ``.zip``): extracted once into the cache, then 2-7;
2. the CIFAR-10 python batches (``cifar-10-batches-py/`` or its parent);
   CTF files of images (``*.ctf``, a folder ``pack --to ctf`` wrote, or CNTK's ``Train_cntk_text.txt``);
3. a CNTK map file, or a folder of them (``train_map.txt``, ``test_map.txt``, ``map.txt``);
4. a label file (CSV/TSV/whitespace), given as the path or as ``labels_file=``;
5. split folders (``train/``, ``test/``, ``val/``) each holding a class-folder tree;
6. a folder with label files at its top (Kaggle: ``trainLabels.csv`` + ``train/<id>.png``);
7. a class-folder tree ``root/<class>/<file>`` (split ``"all"``).

A packed directory is not a collection: callers check ``amlvision.packed.is_packed`` first.
"""

from __future__ import annotations

import os
from pathlib import Path

from amlvision.data.archives import content_root, extract_cached, is_archive
from amlvision.data.cifar import find_cifar_folder, read_cifar_batches
from amlvision.data.collection import LabeledImages
from amlvision.data.ctfimages import ctf_files, looks_like_ctf, read_ctf_images
from amlvision.data.folders import class_folder_names, is_class_tree, read_class_tree
from amlvision.data.labelfile import is_label_file_name, read_label_file, sort_labels
from amlvision.mapfile import CLASS_NAMES_FILE, looks_like_map_file, read_map_file
from amlvision.packed import is_packed

SPLIT_NAMES = {
    "train": "train",
    "training": "train",
    "test": "test",
    "testing": "test",
    "val": "val",
    "valid": "val",
    "validation": "val",
}


class SourceError(ValueError):
    """A path is not a source layout amlvision recognises; the message says what was found."""


def split_of(name: str) -> str | None:
    """The split a file or folder name stands for (``trainLabels.csv`` -> ``train``), or None."""
    lowered = name.lower()
    if lowered in SPLIT_NAMES:
        return SPLIT_NAMES[lowered]
    for prefix, split in sorted(SPLIT_NAMES.items(), key=lambda kv: -len(kv[0])):
        if lowered.startswith(prefix):
            return split
    return None


def _label_options(options: dict) -> bool:
    keys = ("file_column", "label_column", "delimiter", "has_header", "file_suffix")
    return any(options.get(k) is not None for k in keys)


def _read_label_files(
    files: list[Path], image_root: Path | None, options: dict, class_names: list[str] | None, skip_bad: bool
) -> dict[str, LabeledImages]:
    def read_all(names: list[str] | None) -> dict[str, LabeledImages]:
        result: dict[str, LabeledImages] = {}
        for file in files:
            images = read_label_file(file, image_root=image_root, class_names=names, skip_bad=skip_bad, **options)
            split = split_of(Path(images.origin).name) or split_of(file.stem) or "all"
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


def _map_files(folder: Path) -> list[Path]:
    return [
        folder / name
        for name in sorted(os.listdir(folder))
        if name.lower().endswith(".txt") and "map" in name.lower() and looks_like_map_file(folder / name)
    ]


def _read_map_files(files: list[Path], class_names: list[str] | None, skip_bad: bool) -> dict[str, LabeledImages]:
    result: dict[str, LabeledImages] = {}
    for file in files:
        split = split_of(file.stem) or "all"
        if split in result:
            raise SourceError(f"{file}: two map files map to split {split!r}; open one map file directly")
        result[split] = read_map_file(file, class_names=class_names, skip_bad=skip_bad)
    return result


def _read_ctf_files(files: list[Path], class_names: list[str] | None) -> dict[str, LabeledImages]:
    result: dict[str, LabeledImages] = {}
    for file in files:
        split = split_of(file.stem) or "all"
        if split in result:
            raise SourceError(f"{file}: two CTF files map to split {split!r}; open one CTF file directly")
        result[split] = read_ctf_images(file, class_names=class_names)
    return result


def _split_folders(folder: Path) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for name in sorted(os.listdir(folder)):
        split = SPLIT_NAMES.get(name.lower())
        if split and (folder / name).is_dir() and is_class_tree(folder / name):
            if split in found:
                raise SourceError(f"{folder}: both {found[split].name}/ and {name}/ are split {split!r}")
            found[split] = folder / name
    return found


def _top_label_files(folder: Path) -> list[Path]:
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


def open_collection(
    path: str | Path,
    *,
    labels_file: str | Path | None = None,
    file_column: int | str | None = None,
    label_column: int | str | None = None,
    delimiter: str | None = None,
    has_header: bool | None = None,
    file_suffix: str | None = None,
    class_names: list[str] | None = None,
    skip_bad: bool = False,
) -> dict[str, LabeledImages]:
    """Read the source at ``path`` into ``{split: LabeledImages}`` (``"train"``, ``"test"``, ``"val"`` or ``"all"``)."""
    path = Path(path)
    options = {
        "file_column": file_column,
        "label_column": label_column,
        "delimiter": delimiter,
        "has_header": has_header,
        "file_suffix": file_suffix,
    }
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file or folder")
    if path.is_dir() and is_packed(path):
        raise SourceError(f"{path} is a packed dataset, not a source; open it with amlvision.packed.PackedDataset")
    if labels_file is not None:
        labels_path = Path(labels_file)
        if not labels_path.is_file() and path.is_dir() and (path / labels_path).is_file():
            labels_path = path / labels_path
        if not labels_path.is_file():
            raise FileNotFoundError(f"{labels_file}: label file not found")
        root = path if path.is_dir() else None
        return _read_label_files([labels_path], root, options, class_names, skip_bad)
    if path.is_file():
        if is_archive(path):
            root = content_root(extract_cached(path), keep=frozenset(SPLIT_NAMES))
            return open_collection(root, class_names=class_names, skip_bad=skip_bad, **options)
        if looks_like_ctf(path):
            return {split_of(path.stem) or "all": read_ctf_images(path, class_names=class_names)}
        if not _label_options(options) and looks_like_map_file(path):
            return _read_map_files([path], class_names, skip_bad)
        if is_label_file_name(path.name) or _label_options(options):
            return _read_label_files([path], None, options, class_names, skip_bad)
        raise SourceError(f"{path}: not an archive, map file or label file (.csv, .tsv, .txt)")

    cifar = find_cifar_folder(path)
    if cifar is not None:
        return read_cifar_batches(cifar)
    ctf = [file for file in ctf_files(path) if looks_like_ctf(file)]
    if ctf:
        return _read_ctf_files(ctf, class_names)
    map_files = [] if _label_options(options) else _map_files(path)
    if map_files:
        return _read_map_files(map_files, class_names, skip_bad)
    split_dirs = _split_folders(path)
    if split_dirs:
        names = class_names or sorted({n for d in split_dirs.values() for n in class_folder_names(d)})
        return {split: read_class_tree(d, names, skip_bad=skip_bad) for split, d in split_dirs.items()}
    label_files = _top_label_files(path)
    if label_files:
        return _read_label_files(label_files, path, options, class_names, skip_bad)
    if is_class_tree(path):
        return {"all": read_class_tree(path, class_names, skip_bad=skip_bad)}
    entries = sorted(os.listdir(path))[:10]
    raise SourceError(
        f"{path}: no recognised layout (class folders root/<class>/<file>, split folders train/ test/, "
        f"a label file, a CNTK map file, CIFAR-10 batches, or an archive). Found: {entries}"
    )
