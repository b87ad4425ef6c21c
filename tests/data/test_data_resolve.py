"""``resolve``: named kinds, sniffing as the fallback, the kind registry, labels from file names, cheap fingerprints.

Real CIFAR-10 images throughout: the file-name layouts are derived from the shared subset.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from amlvision.cli import main as cli_main
from amlvision.data import fingerprint as fingerprint_module
from amlvision.data.fingerprint import file_fingerprint
from amlvision.data.names import NameRuleError
from amlvision.data.resolve import KINDS, Kind, SourceError, open_collection, register_kind, resolve
from amlvision.formats.packed import write_packed
from amlvision.pack import pack


def _flat_named(src: Path, dest: Path, name: str, per_class: int = 8) -> dict[str, str]:
    """Copy ``per_class`` images of each class of ``src/<class>/`` flat into ``dest`` as ``name.format(...)``."""
    dest.mkdir(parents=True)
    truth = {}
    for class_dir in sorted(p for p in src.iterdir() if p.is_dir()):
        for i, image in enumerate(sorted(class_dir.glob("*.png"))[:per_class], start=1):
            file = name.format(label=class_dir.name, id=i)
            shutil.copy2(image, dest / file)
            truth[file] = class_dir.name
    return truth


def _labels_by_file(images) -> dict[str, str]:
    return {p.name: images.class_names[k] for p, k in zip(images.paths, images.labels, strict=True)}


@pytest.mark.parametrize("pattern", ["{label}_{id}.png", "{label}.{id}.png", "{label}-{id}.png"])
def test_flat_folder_with_labels_in_file_names_is_recognised(small_cifar: Path, tmp_path: Path, pattern: str) -> None:
    truth = _flat_named(small_cifar / "train", tmp_path / "flat", pattern)
    dataset = resolve(tmp_path / "flat")
    assert dataset.kind == "names" and "before its last separator" in dataset.label_rule
    images = dataset.open("all")
    assert images.class_names == sorted(set(truth.values())) and len(images) == 80
    assert _labels_by_file(images) == truth


def test_multi_word_labels_stay_whole_and_split_folders_share_classes(small_cifar: Path, tmp_path: Path) -> None:
    """NEU-style ``rolled-in_scale_12.jpg``: the label is everything before the last separator."""
    root = tmp_path / "neu"
    _flat_named(small_cifar / "train", root / "train", "{label}-in_scale_{id}.png", per_class=3)
    _flat_named(small_cifar / "test", root / "test", "{label}-in_scale_{id}.png", per_class=2)
    dataset = resolve(root)
    assert dataset.kind == "names" and sorted(dataset.splits) == ["test", "train"]
    train, test = dataset.open("train"), dataset.open("test")
    assert train.class_names == test.class_names and train.class_names[0] == "airplane-in_scale"
    assert np.bincount(test.labels).tolist() == [2] * 10


def test_label_from_name_regex_covers_other_conventions(small_cifar: Path, tmp_path: Path) -> None:
    truth = _flat_named(small_cifar / "train", tmp_path / "odd", "IMG{id:04d}_cls-{label}_x.png", per_class=3)
    with pytest.raises(SourceError, match="no recognised layout"):
        resolve(tmp_path / "odd")  # no trailing id: not guessed
    dataset = resolve(tmp_path / "odd", label_from_name=r"_cls-([a-z]+)_")
    assert dataset.kind == "names" and "_cls-([a-z]+)_" in dataset.label_rule
    assert _labels_by_file(dataset.open("all")) == truth
    with pytest.raises(NameRuleError, match="exactly one group"):
        resolve(tmp_path / "odd", label_from_name=r"(a)(b)").collection()
    (tmp_path / "odd" / "stray.png").write_bytes((small_cifar / "train" / "cat").glob("*.png").__next__().read_bytes())
    with pytest.raises(NameRuleError, match=r"stray\.png: file name does not fit"):
        resolve(tmp_path / "odd", label_from_name=r"_cls-([a-z]+)_").collection()
    kept = resolve(tmp_path / "odd", label_from_name=r"_cls-([a-z]+)_", skip_bad=True).open("all")
    assert len(kept) == 30 and kept.skipped[0][0].endswith("stray.png")


def test_inspect_shows_how_labels_were_found(small_cifar: Path, tmp_path: Path, capsys) -> None:
    _flat_named(small_cifar / "train", tmp_path / "flat", "{label}_{id}.png", per_class=2)
    assert cli_main(["inspect", str(tmp_path / "flat"), "--workers", "1"]) == 0
    out = capsys.readouterr().out
    assert "recognised as: names; labels from: file name" in out and "crazing_1.jpg -> crazing" in out
    assert cli_main(["inspect", str(small_cifar), "--workers", "1", "--json"]) == 0
    assert '"label_rule": "class folder names' in capsys.readouterr().out


def test_named_kind_wins_over_sniffing_and_unknown_prefix_is_a_path(small_cifar: Path, tmp_path: Path) -> None:
    assert resolve(small_cifar).kind == "folders"
    named = resolve(f"folders:{small_cifar}")
    assert named.kind == "folders" and named.source == small_cifar and sorted(named.splits) == ["test", "train"]
    pack(named, "map", tmp_path / "m")
    # a map-file folder also holds class folders: sniffing picks the map files, a name can pick either
    assert resolve(tmp_path / "m").kind == "map"
    assert resolve(f"folders:{tmp_path / 'm'}").kind == "folders"
    via_map = resolve(f"map:{tmp_path / 'm' / 'test_map.txt'}").open("test")
    assert len(via_map) == 200
    with pytest.raises(FileNotFoundError, match="nope:x"):
        resolve("nope:x")


def test_packed_resolves_without_reading_images_and_open_collection_refuses_it(tmp_path: Path) -> None:
    images = np.arange(4 * 2 * 2 * 1, dtype=np.uint8).reshape(4, 2, 2, 1)
    write_packed(tmp_path / "p", {"train": (images, np.array([0, 1, 0, 1]))}, ["a", "b"])
    dataset = resolve(tmp_path / "p")
    assert (dataset.kind, dataset.splits, dataset.class_names, dataset.channels) == ("packed", ["train"], ["a", "b"], 1)
    assert dataset.open("train").arrays.shape == (4, 2, 2, 1)
    with pytest.raises(SourceError, match="is a packed dataset"):
        open_collection(tmp_path / "p")


def test_a_new_kind_is_one_registration(small_cifar: Path, tmp_path: Path) -> None:
    """A reader added from another module (as detection formats are): sniffed before the built-in folders."""
    (tmp_path / "toy").mkdir()
    (tmp_path / "toy" / "toy.marker").write_text("1")
    opened = []

    def open_toy(path: Path, options) -> dict:
        opened.append(path)
        return open_collection(small_cifar)

    kind = Kind("toy", "test kind", open_toy, lambda path, options: (path / "toy.marker").is_file(), task="detection")
    register_kind(kind, before="folders")
    try:
        assert list(KINDS).index("toy") == list(KINDS).index("folders") - 1
        dataset = resolve(tmp_path / "toy")
        assert dataset.kind == "toy" and dataset.task == "detection" and not opened  # opened lazily
        assert sorted(dataset.splits) == ["test", "train"] and opened == [tmp_path / "toy"]
        with pytest.raises(ValueError, match="registered already"):
            register_kind(kind)
    finally:
        KINDS.pop("toy", None)


def test_coco_kind_is_detection(shared_data: Path) -> None:
    annotations = shared_data / "coco-tiny" / "annotations" / "instances_val2017.json"
    dataset = resolve(annotations)
    assert (dataset.kind, dataset.task, dataset.splits) == ("coco", "detection", ["val2017"])
    boxes = dataset.open("val2017")
    assert len(boxes.class_names) > 0 and len(boxes.images) > 0
    with pytest.raises(SourceError, match="detection"):
        open_collection(annotations)
    assert resolve(shared_data / "coco-tiny").kind == "coco"  # annotations/ + train2017/: not class folders


def test_file_fingerprint_hashes_content_once_per_size_and_mtime(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AMLVISION_CACHE", str(tmp_path / "cache"))
    hashed: list[Path] = []
    real = fingerprint_module._content_sha256
    monkeypatch.setattr(fingerprint_module, "_content_sha256", lambda p: hashed.append(p) or real(p))
    archive = tmp_path / "a.bin"
    archive.write_bytes(os.urandom(1 << 16))
    first = file_fingerprint(archive)
    assert file_fingerprint(archive) == first and hashed == [archive]  # unchanged: not read again
    os.utime(archive, ns=(archive.stat().st_atime_ns, archive.stat().st_mtime_ns + 10**9))
    assert file_fingerprint(archive) == first and len(hashed) == 2  # touched: re-hashed, same content
    archive.write_bytes(os.urandom(1 << 16))
    assert file_fingerprint(archive) != first and len(hashed) == 3
