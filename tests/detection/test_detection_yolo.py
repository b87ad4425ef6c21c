"""YOLO txt labels, hand-written in Ultralytics' and Darknet's layouts, with real coco-tiny images."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest

from amlvision.detection.convert import read_detection_splits, sniff_detection_format
from amlvision.detection.files import image_size
from amlvision.detection.yolo import YoloFormatError, read_class_names, read_yolo


@pytest.fixture
def images(coco_tiny: Path) -> list[Path]:
    return sorted((coco_tiny / "val2017").glob("*.jpg"))[:3]


def test_ultralytics_layout_with_splits(tmp_path: Path, images: list[Path]):
    root = tmp_path / "ds"
    for split, chosen in (("train", images[:2]), ("val", images[2:])):
        (root / "images" / split).mkdir(parents=True)
        (root / "labels" / split).mkdir(parents=True)
        for image in chosen:
            shutil.copy(image, root / "images" / split / image.name)
    (root / "data.yaml").write_text("path: .\ntrain: images/train\nval: images/val\nnames:\n  0: bolt\n  1: nut\n")
    (root / "labels/train" / f"{images[0].stem}.txt").write_text("1 0.5 0.5 0.25 0.5\n0 0.1 0.2 0.2 0.4\n")
    (root / "labels/val" / f"{images[2].stem}.txt").write_text("")  # empty label file: background image

    assert sniff_detection_format(root) == "yolo"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        splits = read_detection_splits(root)
    assert sorted(splits) == ["train", "val"] and splits["train"].class_names == ["bolt", "nut"]
    first = next(im for im in splits["train"].images if im.path.name == images[0].name)
    w, h = image_size(images[0])
    assert (first.width, first.height) == (w, h)
    np.testing.assert_allclose(first.boxes, [[0.375 * w, 0.25 * h, 0.625 * w, 0.75 * h], [0, 0, 0.2 * w, 0.4 * h]])
    assert first.labels.tolist() == [1, 0]
    second = next(im for im in splits["train"].images if im.path.name == images[1].name)
    assert len(second.labels) == 0  # no label file: no boxes
    assert len(splits["val"].images) == 1 and len(splits["val"].images[0].labels) == 0


def test_darknet_side_by_side_with_invalid_lines(tmp_path: Path, images: list[Path]):
    shutil.copy(images[0], tmp_path / "a.jpg")
    (tmp_path / "obj.names").write_text("bolt\nnut\n")
    label = tmp_path / "a.txt"
    label.write_text(
        "0 0.5 0.5 0.2 0.2\n"
        "2 0.5 0.5 0.2 0.2\n"  # unknown class
        "1 0.95 0.5 0.3 0.2\n"  # right edge at 1.10 of the width: outside
        "1 0.5 0.5 0 0.2\n"  # zero width
        "0 0.1 0.1 0.1 0.1 0.3 0.3\n"  # a segmentation polygon line
        "x 0.5 0.5 0.2 0.2\n"
    )
    assert read_class_names(tmp_path / "obj.names") == ["bolt", "nut"]
    with pytest.warns(UserWarning) as caught:
        ds = read_yolo(tmp_path)
    assert ds.images[0].labels.tolist() == [0]
    assert [i.index for i in ds.invalid] == [1, 2, 3, 4, 5]
    reasons = [i.reason for i in ds.invalid]
    assert "unknown class 2" in reasons[0] and "outside" in reasons[1] and "zero" in reasons[2]
    assert "7 fields" in reasons[3]
    assert all(f"{label}: box {i.index}" in str(m.message) for i, m in zip(ds.invalid, caught, strict=True))


def test_names_file_is_required_and_checked(tmp_path: Path, images: list[Path]):
    shutil.copy(images[0], tmp_path / "a.jpg")
    with pytest.raises(YoloFormatError, match="no class-names file"):
        read_yolo(tmp_path)
    (tmp_path / "data.yaml").write_text("names: 3\n")
    with pytest.raises(YoloFormatError, match="data.yaml: field 'names'"):
        read_yolo(tmp_path)


def test_roboflow_layout_named_by_data_yaml(tmp_path: Path, images: list[Path]):
    """train/images + train/labels, valid/images + valid/labels, with data.yaml's '../train/images' paths."""
    for folder, image in (("train", images[0]), ("valid", images[1])):
        (tmp_path / folder / "images").mkdir(parents=True)
        (tmp_path / folder / "labels").mkdir()
        shutil.copy(image, tmp_path / folder / "images" / image.name)
        (tmp_path / folder / "labels" / f"{image.stem}.txt").write_text("0 0.5 0.5 0.5 0.5\n")
    (tmp_path / "data.yaml").write_text("train: ../train/images\nval: ../valid/images\nnc: 1\nnames: ['crack']\n")
    assert sniff_detection_format(tmp_path) == "yolo"
    splits = read_detection_splits(tmp_path)
    assert sorted(splits) == ["train", "val"]
    for split, image in (("train", images[0]), ("val", images[1])):
        (only,) = splits[split].images
        w, h = image_size(image)
        assert only.path.name == image.name
        np.testing.assert_allclose(only.boxes, [[0.25 * w, 0.25 * h, 0.75 * w, 0.75 * h]])
