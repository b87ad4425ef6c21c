"""Source layouts on disk, read by ``open_collection`` from real CIFAR-10 images."""

from __future__ import annotations

import shutil
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from amlvision.data.cifar import CifarFormatError, read_cifar_batches, write_cifar_batches
from amlvision.data.labelfile import LabelFileError
from amlvision.data.resolve import SourceError, open_collection
from amlvision.formats.mapfile import MapFileError, write_map_file
from amlvision.formats.packed import write_packed

CIFAR_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def _pixels(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def _kaggle_rows(kaggle_sample: Path) -> list[tuple[str, str]]:
    return [tuple(line.split(",")) for line in (kaggle_sample / "trainLabels.csv").read_text().split()]


@pytest.fixture()
def kaggle_copy(kaggle_sample: Path, tmp_path: Path) -> Path:
    """The Kaggle sample in a writable folder (the shared one is read-only)."""
    root = tmp_path / "kaggle"
    shutil.copytree(kaggle_sample, root)
    return root


def test_split_class_folders(cifar_subset: Path) -> None:
    splits = open_collection(cifar_subset)
    assert sorted(splits) == ["test", "train"]
    assert splits["train"].class_names == CIFAR_CLASSES == splits["test"].class_names
    assert set(splits["train"].counts().values()) == {150} and set(splits["test"].counts().values()) == {50}
    train = splits["train"]
    for i in (0, 777, 1499):
        assert train.paths[i].parent.name == CIFAR_CLASSES[train.labels[i]]
        np.testing.assert_array_equal(train.load(i), _pixels(train.paths[i]))


def test_class_tree_without_splits_and_non_images_reported(cifar_subset: Path, tmp_path: Path) -> None:
    root = tmp_path / "tree"
    for name in ("cat", "dog"):
        shutil.copytree(cifar_subset / "test" / name, root / name)
    (root / "dog" / "notes.txt").write_text("not an image")
    (root / "notes.txt").write_text("class notes: not a label file")  # must not be taken for one
    (root / "stray.png").write_bytes((root / "cat" / sorted(p.name for p in (root / "cat").iterdir())[0]).read_bytes())
    splits = open_collection(root)
    assert list(splits) == ["all"]
    images = splits["all"]
    assert images.class_names == ["cat", "dog"] and images.counts() == {"cat": 50, "dog": 50}
    reasons = dict(images.skipped)
    assert reasons[str(root / "dog" / "notes.txt")] == "not an image file (by suffix)"
    assert "not inside a class folder" in reasons[str(root / "stray.png")]
    assert "not inside a class folder" in reasons[str(root / "notes.txt")]


def test_kaggle_sample_headerless_file_names(kaggle_sample: Path) -> None:
    rows = _kaggle_rows(kaggle_sample)
    images = open_collection(kaggle_sample)["train"]
    assert len(images) == len(rows) == 200 and images.class_names == CIFAR_CLASSES
    for i, (name, label) in enumerate(rows):
        assert images.paths[i] == kaggle_sample / "train" / name
        assert images.class_names[images.labels[i]] == label
    np.testing.assert_array_equal(images.load(5), _pixels(kaggle_sample / "train" / rows[5][0]))


def test_kaggle_header_with_ids_without_extension(kaggle_copy: Path) -> None:
    rows = _kaggle_rows(kaggle_copy)
    (kaggle_copy / "trainLabels.csv").write_text(
        "id,label\n" + "".join(f"{name.removesuffix('.png')},{label}\n" for name, label in rows)
    )
    # The real Kaggle folder also has an unlabelled test/ and placeholder labels for it.
    shutil.copytree(kaggle_copy / "train", kaggle_copy / "test")  # same ids as train/: only the name decides
    (kaggle_copy / "sampleSubmission.csv").write_text("id,label\n1,cat\n")
    splits = open_collection(kaggle_copy)
    assert list(splits) == ["train"]
    images = splits["train"]
    assert [p.name for p in images.paths] == [name for name, _ in rows]
    assert [images.class_names[k] for k in images.labels] == [label for _, label in rows]
    assert images.sources[0].endswith("trainLabels.csv:2")  # line numbers count the header


def test_label_file_columns_by_name_and_position_tsv_and_whitespace(kaggle_copy: Path) -> None:
    rows = _kaggle_rows(kaggle_copy)
    expected = [label for _, label in rows]
    tsv = kaggle_copy / "labels.tsv"
    tsv.write_text("label\tscore\tfile\n" + "".join(f"{lab}\t0.5\t{name}\n" for name, lab in rows))
    by_name = open_collection(kaggle_copy, labels_file=tsv, file_column="file", label_column="label")["train"]
    assert [by_name.class_names[k] for k in by_name.labels] == expected
    by_position = open_collection(tsv, file_column=2, label_column=0, has_header=True)["train"]  # images in train/
    np.testing.assert_array_equal(by_position.labels, by_name.labels)
    spaces = kaggle_copy / "train" / "list.txt"
    spaces.write_text("".join(f"{name}   {lab}\n" for name, lab in rows))
    ws = open_collection(spaces, delimiter="whitespace")["train"]
    np.testing.assert_array_equal(ws.labels, by_name.labels)


def test_forced_no_header_treats_first_row_as_data(kaggle_copy: Path) -> None:
    (kaggle_copy / "trainLabels.csv").write_text("1.png,label\n2.png,cat\n")
    with pytest.raises(LabelFileError, match="not one of the classes"):
        open_collection(kaggle_copy, has_header=False, class_names=CIFAR_CLASSES)
    images = open_collection(kaggle_copy, has_header=True)["train"]
    assert len(images) == 1 and images.class_names == ["cat"]


def test_label_file_errors_name_file_and_line(kaggle_copy: Path) -> None:
    csv = kaggle_copy / "trainLabels.csv"
    lines = csv.read_text().splitlines()
    csv.write_text("\n".join(lines[:3] + ["999999.png,cat"] + lines[3:]) + "\n")
    with pytest.raises(LabelFileError, match=r"trainLabels\.csv:4: image '999999\.png' not found"):
        open_collection(kaggle_copy)
    csv.write_text("\n".join(lines[:2] + ["3.png,unicorn"] + lines[3:]) + "\n")
    with pytest.raises(LabelFileError, match=r"trainLabels\.csv:3: label 'unicorn' is not one of the classes"):
        open_collection(kaggle_copy, class_names=CIFAR_CLASSES)
    csv.write_text("\n".join(lines[:1] + ["2.png"] + lines[2:]) + "\n")
    with pytest.raises(LabelFileError, match=r"trainLabels\.csv:2: expected at least 2 columns"):
        open_collection(kaggle_copy)


def test_label_file_skip_bad_reports_each_item(kaggle_copy: Path) -> None:
    csv = kaggle_copy / "trainLabels.csv"
    lines = csv.read_text().splitlines()
    csv.write_text("\n".join(lines[:2] + ["999999.png,cat", "3.png,unicorn", "4.png"] + lines[4:]) + "\n")
    images = open_collection(kaggle_copy, class_names=CIFAR_CLASSES, skip_bad=True)["train"]
    assert len(images) == 200 - 2  # rows 3 and 4 replaced by three bad rows
    assert [where.rsplit(":", 1)[1] for where, _ in images.skipped] == ["3", "4", "5"]


def test_unknown_class_folder_with_fixed_classes(cifar_subset: Path) -> None:
    with pytest.raises(ValueError, match="truck.*not one of the known classes"):
        open_collection(cifar_subset, class_names=CIFAR_CLASSES[:-1])


def test_map_file_relative_paths_and_errors(cifar_subset: Path, tmp_path: Path) -> None:
    folder = tmp_path / "maps"
    shutil.copytree(cifar_subset / "test" / "cat", folder / "images" / "cat")
    names = sorted(p.name for p in (folder / "images" / "cat").iterdir())
    write_map_file(folder / "test_map.txt", [(f"images/cat/{n}", 3) for n in names])
    images = open_collection(folder / "test_map.txt")["test"]
    assert images.paths[0] == folder / "images" / "cat" / names[0] and set(images.labels) == {3}
    assert images.class_names == ["0", "1", "2", "3"]
    np.testing.assert_array_equal(images.load(0), _pixels(folder / "images" / "cat" / names[0]))
    (folder / "test_map.txt").write_text(f"images/cat/{names[0]}\t3\nimages/cat/{names[1]} 3\n")
    with pytest.raises(MapFileError, match=r"test_map\.txt:2: expected 'path<TAB>label'"):
        open_collection(folder / "test_map.txt")
    (folder / "test_map.txt").write_text(f"images/cat/{names[0]}\t3\nimages/cat/gone.png\t3\n")
    with pytest.raises(MapFileError, match=r"test_map\.txt:2: image file .*gone\.png not found"):
        open_collection(folder / "test_map.txt")
    (folder / "test_map.txt").write_text(f"images/cat/{names[0]}\t1\nimages/cat/{names[1]}\t3\n")
    with pytest.raises(MapFileError, match=r"test_map\.txt:2: label 3 is outside the 2 classes"):
        open_collection(folder / "test_map.txt", class_names=["a", "b"])
    kept = open_collection(folder / "test_map.txt", class_names=["a", "b"], skip_bad=True)["test"]
    assert len(kept) == 1 and kept.skipped[0][0].endswith("test_map.txt:2")


def _cifar_batches(cifar_subset: Path, folder: Path) -> tuple[dict, dict]:
    splits = open_collection(cifar_subset)
    arrays = {s: (np.stack([splits[s].load(i) for i in range(len(splits[s]))]), splits[s].labels) for s in splits}
    write_cifar_batches(folder, arrays["train"], arrays["test"], CIFAR_CLASSES)
    return arrays, splits


def test_cifar_python_batches_pixel_exact(cifar_subset: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("AMLVISION_CACHE", str(tmp_path / "cache"))  # the archive is extracted there
    folder = tmp_path / "cifar-10-batches-py"
    arrays, _ = _cifar_batches(cifar_subset, folder)
    assert sorted(p.name for p in folder.iterdir()) == [
        "batches.meta",
        "data_batch_1",
        "data_batch_2",
        "data_batch_3",
        "data_batch_4",
        "data_batch_5",
        "test_batch",
    ]
    for source in (folder, tmp_path):  # the batch folder itself, or its parent
        splits = open_collection(source)
        for split in ("train", "test"):
            assert splits[split].class_names == CIFAR_CLASSES
            np.testing.assert_array_equal(splits[split].arrays, arrays[split][0])
            np.testing.assert_array_equal(splits[split].labels, arrays[split][1])
    # The archive form, as cifar-10-python.tar.gz holds it.
    archive = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(folder, arcname="cifar-10-batches-py")
    from_archive = open_collection(archive)
    np.testing.assert_array_equal(from_archive["test"].arrays, arrays["test"][0])


def test_cifar_batch_errors(cifar_subset: Path, tmp_path: Path) -> None:
    folder = tmp_path / "cifar-10-batches-py"
    _cifar_batches(cifar_subset, folder)
    (folder / "data_batch_3").unlink()
    with pytest.raises(CifarFormatError, match="data_batch_3: missing"):
        read_cifar_batches(folder)
    (folder / "data_batch_3").write_bytes(b"cos\nsystem\n(S'echo pwned'\ntR.")  # a pickle that would run code
    with pytest.raises(CifarFormatError, match="data_batch_3: not a CIFAR-10 python batch.*refusing"):
        read_cifar_batches(folder)


@pytest.mark.parametrize("kind", ["tar.gz", "zip"])
def test_archives_are_extracted_once(cifar_subset: Path, tmp_path: Path, monkeypatch, kind: str) -> None:
    monkeypatch.setenv("AMLVISION_CACHE", str(tmp_path / "cache"))
    archive = tmp_path / f"subset.{kind}"
    files = sorted((cifar_subset / "test").rglob("*.png"))[:120]
    if kind == "zip":
        with zipfile.ZipFile(archive, "w") as zf:
            for f in files:
                zf.write(f, f"subset/test/{f.parent.name}/{f.name}")
    else:
        with tarfile.open(archive, "w:gz") as tar:
            for f in files:
                tar.add(f, arcname=f"subset/test/{f.parent.name}/{f.name}")
    first = open_collection(archive)["test"]
    assert len(first) == 120 and first.class_names == ["airplane", "automobile", "bird"]
    for i in (0, 60, 119):
        original = cifar_subset / "test" / first.paths[i].parent.name / first.paths[i].name
        np.testing.assert_array_equal(first.load(i), _pixels(original))
    extracted = list((tmp_path / "cache" / "extracted").iterdir())
    assert len(extracted) == 1 and not extracted[0].name.startswith(".")
    stamp = extracted[0].stat().st_mtime_ns
    second = open_collection(archive)["test"]
    assert second.paths == first.paths and extracted[0].stat().st_mtime_ns == stamp


def test_packed_dir_and_unknown_layouts_are_refused(tmp_path: Path) -> None:
    write_packed(tmp_path / "p", {"train": (np.zeros((1, 2, 2, 3), np.uint8), np.zeros(1))}, ["a"])
    with pytest.raises(SourceError, match="is a packed dataset"):
        open_collection(tmp_path / "p")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "x.bin").write_bytes(b"1")
    with pytest.raises(SourceError, match="no recognised layout"):
        open_collection(tmp_path / "empty")
    with pytest.raises(FileNotFoundError):
        open_collection(tmp_path / "nowhere")
