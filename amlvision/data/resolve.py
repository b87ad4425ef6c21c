"""``resolve``: turn ``--data`` into a typed ``Dataset`` exactly once; every later layer receives the value.

``--data`` may *name* its kind, ``KIND:PATH`` (``packed:DIR``, ``map:FILE``, ``ctf:DIR``, ``folders:DIR``,
``labels:FILE``, ``names:DIR``, ``cifar:DIR``; detection: ``coco:``, ``voc:``, ``cntk:``, ``yolo:``); a bare
path is sniffed, trying the kinds in registration order (as timm's reader factory falls back from a
named reader to guessing). An archive (``.tar``, ``.tar.gz``, ``.tgz``, ``.zip``) is extracted once into
the cache and its content resolved; its fingerprint stays the archive's. ``cifar10`` (not an existing
path) downloads the official batches.

Kinds live in ``KINDS``, a registry: a new format is one ``register_kind`` call, with a ``sniff`` test (or
none: then only ``KIND:PATH`` selects it); the detection formats of ``amlvision.detection.convert`` are
registered that way below.

A ``Dataset`` knows its kind, root, task, how labels were found (``label_rule``, shown by ``inspect``),
a cheap fingerprint (``amlvision.data.fingerprint``), and opens each split lazily and once.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from amlvision.data.archives import content_root, extract_cached, is_archive
from amlvision.data.cifar import find_cifar_folder, read_cifar_batches
from amlvision.data.collection import LabeledImages
from amlvision.data.ctfimages import ctf_files, looks_like_ctf, read_ctf_images
from amlvision.data.fingerprint import fingerprint
from amlvision.data.folders import is_class_tree, read_class_tree
from amlvision.data.images import decode, natural_channels
from amlvision.data.labelfile import is_label_file_name, sort_labels
from amlvision.data.layouts import (
    SourceError,
    label_options_given,
    map_files,
    read_label_files,
    read_map_files,
    read_split_folders,
    split_folders,
    top_label_files,
)
from amlvision.data.names import describe_rule, has_name_labels, read_named_folder
from amlvision.formats.datasetjson import read_dataset_json
from amlvision.formats.mapfile import looks_like_map_file
from amlvision.formats.packed import PackedDataset, is_packed
from amlvision.formats.splits import SPLIT_NAMES, split_of

__all__ = [
    "KINDS",
    "Dataset",
    "Kind",
    "SourceError",
    "SourceOptions",
    "open_collection",
    "register_kind",
    "resolve",
]

TASKS = ("classification", "detection")


@dataclass(frozen=True)
class SourceOptions:
    """How to read labels where the layout alone does not say (the ``--labels-file`` ... option group)."""

    labels_file: str | None = None
    file_column: int | str | None = None
    label_column: int | str | None = None
    delimiter: str | None = None
    has_header: bool | None = None
    file_suffix: str | None = None
    class_names: tuple[str, ...] | None = None
    label_from_name: str | None = None
    skip_bad: bool = False

    def label_file(self) -> dict[str, Any]:
        """Keyword arguments of ``read_label_file`` for the column / delimiter options."""
        keys = ("file_column", "label_column", "delimiter", "has_header", "file_suffix")
        return {key: getattr(self, key) for key in keys}

    @property
    def names(self) -> list[str] | None:
        return list(self.class_names) if self.class_names is not None else None

    def cache_key(self) -> dict[str, str]:
        """What changes the images or labels read (part of the packed-cache key)."""
        values = {k: getattr(self, k) for k in self.__dataclass_fields__ if k != "skip_bad"}
        return {k: str(v) for k, v in sorted(values.items()) if v is not None}


@dataclass(frozen=True)
class Kind:
    """One kind of dataset: how to recognise it (``sniff``), read it (``open``) and say its label rule."""

    name: str
    help: str
    open: Callable[[Path, SourceOptions], dict[str, Any]]
    sniff: Callable[[Path, SourceOptions], bool] | None = None
    rule: Callable[[Path, SourceOptions], str] = lambda path, options: ""
    list_splits: Callable[[Path, SourceOptions], list[str]] | None = None  # without reading the data
    task: str = "classification"


KINDS: dict[str, Kind] = {}


def register_kind(kind: Kind, *, before: str | None = None) -> Kind:
    """Add ``kind`` to the registry (sniffed after the kinds already there, or just before ``before``)."""
    if kind.task not in TASKS:
        raise ValueError(f"kind {kind.name!r}: task must be one of {TASKS}, got {kind.task!r}")
    if kind.name in KINDS:
        raise ValueError(f"kind {kind.name!r} is registered already")
    if before is None:
        KINDS[kind.name] = kind
        return kind
    if before not in KINDS:
        raise ValueError(f"no kind {before!r} to register {kind.name!r} before")
    items = list(KINDS.items())
    at = [name for name, _ in items].index(before)
    items.insert(at, (kind.name, kind))
    KINDS.clear()
    KINDS.update(items)
    return kind


@dataclass(eq=False)
class Dataset:
    """``--data`` resolved: what it is, where, how it is labelled, and its splits (opened lazily, once)."""

    kind: str
    root: Path  # what the kind reads (an archive's extracted content folder)
    source: Path  # what --data named (the archive itself)
    options: SourceOptions = field(default_factory=SourceOptions)
    label_rule: str = ""
    reader: Kind | None = field(default=None, repr=False)
    _opened: dict[str, Any] | None = field(default=None, repr=False)

    @property
    def task(self) -> str:
        return self.reader.task if self.reader else "classification"

    @cached_property
    def fingerprint(self) -> str:
        """Cheap identity of the data (archive: its content hash, remembered by size + mtime)."""
        return fingerprint(self.source)

    @cached_property
    def packed(self) -> PackedDataset:
        if self.kind != "packed":
            raise ValueError(f"{self.source}: a {self.kind} dataset, not a packed one")
        return PackedDataset(self.root)

    def collection(self) -> dict[str, Any]:
        """Every split: ``{split: LabeledImages}`` (classification) or ``{split: DetectionSet}`` (detection)."""
        if self._opened is None:
            assert self.reader is not None
            self._opened = self.reader.open(self.root, self.options)
        return self._opened

    @property
    def splits(self) -> list[str]:
        if self._opened is None and self.reader is not None and self.reader.list_splits is not None:
            return self.reader.list_splits(self.root, self.options)
        return list(self.collection())

    def open(self, split: str) -> Any:
        """One split (``LabeledImages`` or ``DetectionSet``); an error names the splits there are."""
        splits = self.collection()
        if split not in splits:
            raise ValueError(f"{self.source}: no split {split!r}; splits are {sorted(splits)}")
        return splits[split]

    @property
    def class_names(self) -> list[str]:
        if self.kind == "packed":
            return list(self.packed.class_names)
        first = next(iter(self.collection().values()), None)
        return list(first.class_names) if first is not None else []

    @cached_property
    def image_shape(self) -> tuple[int, int, int] | None:
        """``(H, W, C)`` of the first image as stored (``None`` when there is none)."""
        if self.kind == "packed":
            return tuple(self.packed.image_shape)
        for items in self.collection().values():
            if isinstance(items, LabeledImages) and len(items):
                if items.arrays is not None:
                    return tuple(items.arrays.shape[1:])
                img = decode(items.paths[0])
                return (img.size[1], img.size[0], natural_channels(img.mode))
        return None

    @property
    def channels(self) -> int:
        """1 when the data is gray (first image, by ``amlvision.data.images.natural_channels``), else 3."""
        shape = self.image_shape
        return 1 if shape is not None and shape[2] == 1 else 3

    def describe(self) -> dict[str, Any]:
        """What ``inspect`` and run logs print about the resolution."""
        return {
            "kind": self.kind,
            "task": self.task,
            "source": str(self.source),
            "root": str(self.root),
            "label_rule": self.label_rule,
        }


# ---------------------------------------------------------------- the kinds


def _packed_open(path: Path, options: SourceOptions) -> dict[str, LabeledImages]:
    packed = PackedDataset(path)
    return {
        split: LabeledImages(
            class_names=packed.class_names,
            labels=packed.labels(split),
            arrays=packed.images(split),
            origin=f"{path}:{split}",
        )
        for split in packed.splits
    }


def _cifar_open(path: Path, options: SourceOptions) -> dict[str, LabeledImages]:
    folder = find_cifar_folder(path)
    if folder is None:
        raise SourceError(f"{path}: no CIFAR-10 python batches (data_batch_1 ... test_batch, batches.meta)")
    return read_cifar_batches(folder)


def _ctf_sniff(path: Path, options: SourceOptions) -> bool:
    if path.is_file():
        return looks_like_ctf(path)
    return any(looks_like_ctf(file) for file in ctf_files(path))


def _ctf_open(path: Path, options: SourceOptions) -> dict[str, LabeledImages]:
    if path.is_file():
        return {split_of(path.stem) or "all": read_ctf_images(path, class_names=options.names)}
    result: dict[str, LabeledImages] = {}
    for file in (f for f in ctf_files(path) if looks_like_ctf(f)):
        split = split_of(file.stem) or "all"
        if split in result:
            raise SourceError(f"{file}: two CTF files map to split {split!r}; open one CTF file directly")
        result[split] = read_ctf_images(file, class_names=options.names)
    return result


def _ctf_splits(path: Path, options: SourceOptions) -> list[str]:
    if path.is_file():
        return [split_of(path.stem) or "all"]
    files = read_dataset_json(path, format="ctf").get("files")
    if files:
        return list(files)
    return [split_of(file.stem) or "all" for file in ctf_files(path) if looks_like_ctf(file)]


def _map_sniff(path: Path, options: SourceOptions) -> bool:
    if label_options_given(options.label_file()):
        return False
    return looks_like_map_file(path) if path.is_file() else bool(map_files(path))


def _map_open(path: Path, options: SourceOptions) -> dict[str, LabeledImages]:
    files = [path] if path.is_file() else map_files(path)
    if not files:
        raise SourceError(f"{path}: no CNTK map file (<split>_map.txt: path<TAB>label)")
    return read_map_files(files, options.names, options.skip_bad)


def _labels_files(path: Path, options: SourceOptions) -> tuple[list[Path], Path | None]:
    """The label files and the folder image names resolve against."""
    if options.labels_file is not None:
        labels = Path(options.labels_file)
        if not labels.is_file() and path.is_dir() and (path / labels).is_file():
            labels = path / labels
        if not labels.is_file():
            raise FileNotFoundError(f"{options.labels_file}: label file not found")
        return [labels], path if path.is_dir() else None
    if path.is_file():
        return [path], None
    return top_label_files(path), path


def _labels_sniff(path: Path, options: SourceOptions) -> bool:
    if options.labels_file is not None:
        return True
    if path.is_file():
        return is_label_file_name(path.name) or label_options_given(options.label_file())
    return bool(top_label_files(path))


def _labels_open(path: Path, options: SourceOptions) -> dict[str, LabeledImages]:
    files, image_root = _labels_files(path, options)
    if not files:
        raise SourceError(f"{path}: no label file (*.csv, *.tsv, or a text file with 'label' in its name)")
    return read_label_files(files, image_root, options.label_file(), options.names, options.skip_bad)


def _labels_rule(path: Path, options: SourceOptions) -> str:
    files, _ = _labels_files(path, options)
    columns = f"file column {options.file_column!r}" if options.file_column is not None else "file column auto"
    columns += f", label column {options.label_column!r}" if options.label_column is not None else ", label column auto"
    return f"label file {', '.join(f.name for f in files)} ({columns})"


def _folders_sniff(path: Path, options: SourceOptions) -> bool:
    """Split folders of class trees; or one class tree, unless label files beside it say more (Kaggle)."""
    if path.is_file():
        return False
    if split_folders(path):
        return True
    # one class tree, unless label files beside it say more (Kaggle), or its folders are train/, test/
    # of files named <label>_<id> (kind "names"): "train" and "test" are not classes
    return is_class_tree(path) and not top_label_files(path) and not _named_splits(path)


def _folders_open(path: Path, options: SourceOptions) -> dict[str, LabeledImages]:
    if split_folders(path):
        return read_split_folders(path, options.names, options.skip_bad)
    if not is_class_tree(path):
        raise SourceError(f"{path}: no class folders (root/<class>/<file> or train/<class>/<file>)")
    return {"all": read_class_tree(path, options.names, skip_bad=options.skip_bad)}


def _named_split_dirs(path: Path) -> dict[str, Path]:
    """``train/``, ``test/`` ... folders of a folder that holds no files of its own (else ``{}``)."""
    entries = [p for p in path.iterdir() if not p.name.startswith(".")]
    if any(p.is_file() for p in entries):
        return {}
    return {SPLIT_NAMES[p.name.lower()]: p for p in sorted(entries) if p.name.lower() in SPLIT_NAMES and p.is_dir()}


def _named_splits(path: Path) -> bool:
    split_dirs = _named_split_dirs(path)
    return bool(split_dirs) and all(has_name_labels(folder) for folder in split_dirs.values())


def _names_sniff(path: Path, options: SourceOptions) -> bool:
    if path.is_file():
        return False
    if options.label_from_name is not None or has_name_labels(path):
        return True
    return _named_splits(path)


def _names_open(path: Path, options: SourceOptions) -> dict[str, LabeledImages]:
    pattern, skip_bad = options.label_from_name, options.skip_bad
    split_dirs = _named_split_dirs(path)
    if not split_dirs:
        return {"all": read_named_folder(path, pattern, options.names, skip_bad=skip_bad)}
    names = options.names
    if names is None:  # one class index order for every split
        found = {n for d in split_dirs.values() for n in read_named_folder(d, pattern, skip_bad=skip_bad).class_names}
        names = sort_labels(found)
    return {split: read_named_folder(folder, pattern, names, skip_bad=skip_bad) for split, folder in split_dirs.items()}


def _detection_kind(fmt: str, help: str) -> Kind:
    """A detection format of ``amlvision.detection.convert`` (issue 11's readers) as a kind."""

    def sniff(path: Path, options: SourceOptions) -> bool:
        from amlvision.detection.convert import sniff_detection_format

        return sniff_detection_format(path) == fmt

    def open_splits(path: Path, options: SourceOptions) -> dict[str, Any]:
        from amlvision.detection.convert import read_detection_splits

        return read_detection_splits(path, fmt, options.names)  # the format's own split names (val2017)

    return Kind(
        fmt, help, open_splits, sniff, lambda path, options: f"{fmt} annotations: boxes per image", task="detection"
    )


register_kind(
    Kind(
        "packed",
        "a packed directory (amlvision pack --to packed)",
        _packed_open,
        lambda path, options: path.is_dir() and is_packed(path),
        lambda path, options: "stored labels (manifest.json class_names)",
        lambda path, options: PackedDataset(path).splits,
    )
)
register_kind(
    Kind(
        "cifar",
        "the CIFAR-10 python batches (cifar-10-batches-py/ or its parent)",
        _cifar_open,
        lambda path, options: path.is_dir() and find_cifar_folder(path) is not None,
        lambda path, options: "CIFAR-10 batches (batches.meta label_names)",
        lambda path, options: ["train", "test"],
    )
)
register_kind(
    Kind(
        "ctf",
        "CTF files of images (*.ctf, pack --to ctf, CNTK's Train_cntk_text.txt)",
        _ctf_open,
        _ctf_sniff,
        lambda path, options: "CTF |labels stream (class names from dataset.json / class_names.txt)",
        _ctf_splits,
    )
)
register_kind(
    Kind(
        "map",
        "a CNTK map file, or a folder of <split>_map.txt",
        _map_open,
        _map_sniff,
        lambda path, options: "CNTK map file class indexes (class names from class_names.txt)",
    )
)
register_kind(
    Kind(
        "folders",
        "class folders root/<class>/<file>, or split folders train/ test/ of them",
        _folders_open,
        _folders_sniff,
        lambda path, options: "class folder names (root/<class>/<file>)",
    )
)
register_kind(
    Kind("labels", "a label file (CSV/TSV/whitespace), or a folder with one", _labels_open, _labels_sniff, _labels_rule)
)
register_kind(
    Kind(
        "names",
        "a flat folder whose file names carry the label (crazing_1.jpg, cat.1.jpg)",
        _names_open,
        _names_sniff,
        lambda path, options: describe_rule(options.label_from_name),
    )
)
# Detection formats, sniffed before map files and folders: CNTK's class_map.txt looks like a map file,
# COCO's annotations/ + train2017/ and YOLO's images/ + labels/ like class folders.
for _fmt, _help in (
    ("coco", "COCO instances JSON, or a folder with annotations/instances_*.json (object detection)"),
    ("voc", "Pascal VOC (Annotations/, JPEGImages/), or a folder pair of images and XML files (object detection)"),
    ("cntk", "CNTK Faster R-CNN files: class_map.txt + <split>_img_file.txt / _roi_file.txt (object detection)"),
    ("yolo", "YOLO: images/ + labels/ (+ data.yaml), or Darknet files with classes.txt (object detection)"),
):
    register_kind(_detection_kind(_fmt, _help), before="map")


# ---------------------------------------------------------------- resolution


def split_spec(data: str | Path) -> tuple[str | None, str]:
    """``"map:train_map.txt"`` -> ``("map", "train_map.txt")``; a bare path -> ``(None, path)``."""
    text = os.fspath(data)
    kind, sep, rest = text.partition(":")
    if sep and kind in KINDS and rest:
        return kind, rest
    return None, text


def _sniff(root: Path, options: SourceOptions) -> Kind:
    if options.labels_file is not None:
        return KINDS["labels"]
    if options.label_from_name is not None:
        return KINDS["names"]
    for kind in KINDS.values():
        if kind.sniff is not None and kind.sniff(root, options):
            return kind
    if root.is_file():
        raise SourceError(f"{root}: not an archive, map file, CTF file, COCO JSON or label file (.csv, .tsv, .txt)")
    entries = sorted(os.listdir(root))[:10]
    raise SourceError(
        f"{root}: no recognised layout (class folders root/<class>/<file>, split folders train/ test/, "
        f"a label file, a CNTK map file, CIFAR-10 batches, file names like crazing_1.jpg, or an archive). "
        f"Found: {entries}. Name the kind as KIND:PATH ({', '.join(KINDS)})"
    )


def _download_cifar10() -> Path:
    from amlvision.data.download import DownloadError, fetch

    try:
        return Path(fetch("cifar10"))
    except DownloadError as exc:
        raise ValueError(f"--data cifar10: {exc}") from exc


def resolve(data: str | Path | Dataset, options: SourceOptions | None = None, **option_values: Any) -> Dataset:
    """``--data`` (``KIND:PATH``, a path, an archive or ``cifar10``) as a ``Dataset``; options as ``SourceOptions``.

    A ``Dataset`` passes through unchanged, so a caller handed one never resolves again.
    """
    if isinstance(data, Dataset):
        return data
    if options is None:
        if option_values.get("class_names") is not None:
            option_values["class_names"] = tuple(option_values["class_names"])
        options = SourceOptions(**option_values)
    elif option_values:
        raise TypeError("give SourceOptions or keyword options, not both")
    named, text = split_spec(data)
    source = Path(text)
    if text == "cifar10" and not source.exists():
        source = _download_cifar10()
    if not source.exists():
        raise FileNotFoundError(f"{text}: no such file or folder")
    root = source
    if is_archive(source):
        root = content_root(extract_cached(source), keep=frozenset(SPLIT_NAMES))
    kind = KINDS[named] if named else _sniff(root, options)
    return Dataset(
        kind=kind.name,
        root=root,
        source=source,
        options=options,
        label_rule=kind.rule(root, options),
        reader=kind,
    )


def open_collection(path: str | Path, **options: Any) -> dict[str, LabeledImages]:
    """``{split: LabeledImages}`` of a labelled image source (``resolve(path, **options).collection()``).

    A packed directory is refused: it is a finished dataset, opened with ``PackedDataset``.
    """
    dataset = resolve(path, **options)
    if dataset.kind == "packed":
        raise SourceError(
            f"{path} is a packed dataset, not a source; open it with amlvision.formats.packed.PackedDataset"
        )
    if dataset.task != "classification":
        raise SourceError(f"{path}: a {dataset.kind} dataset ({dataset.task}), not labelled images")
    return dataset.collection()
