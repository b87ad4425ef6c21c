"""Pascal VOC reader on hand-written XML with real coco-tiny images: VOC layout, flat pair, bad files."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest

from amlvision.cli import main
from amlvision.detection.checks import WHOLE_FILE
from amlvision.detection.convert import read_detection_splits, sniff_detection_format, voc_pair_folders
from amlvision.detection.files import image_size
from amlvision.detection.voc import VocFormatError, read_voc, read_voc_pair


def _xml(filename: str, size: tuple[int, int] | None, objects: list[tuple]) -> str:
    size_xml = f"<size><width>{size[0]}</width><height>{size[1]}</height><depth>3</depth></size>" if size else ""
    body = "".join(
        f"<object><name>{name}</name><pose>Left</pose><truncated>1</truncated><difficult>{difficult}</difficult>"
        f"<bndbox><xmin>{b[0]}</xmin><ymin>{b[1]}</ymin><xmax>{b[2]}</xmax><ymax>{b[3]}</ymax></bndbox></object>"
        for name, b, difficult in objects
    )
    return f"<annotation><folder>VOC2007</folder><filename>{filename}</filename>{size_xml}{body}</annotation>"


@pytest.fixture
def real_images(coco_tiny: Path) -> list[Path]:
    return sorted((coco_tiny / "val2017").glob("*.jpg"))[:4]


def test_voc_layout_with_splits_difficult_and_one_based_pixels(tmp_path: Path, real_images: list[Path]):
    root = tmp_path / "VOC2007"
    for sub in ("Annotations", "JPEGImages", "ImageSets/Main"):
        (root / sub).mkdir(parents=True)
    stems = []
    for i, image in enumerate(real_images[:3]):
        stem = f"{i:06d}"
        stems.append(stem)
        shutil.copy(image, root / "JPEGImages" / f"{stem}.jpg")
        w, h = image_size(image)
        objects = [("dog", (1, 1, w, h), 0), ("person", (11, 21, 40, 60), 1)] if i < 2 else []
        # i == 1: <size> missing, the reader takes it from the image header; <filename> stale on purpose
        (root / "Annotations" / f"{stem}.xml").write_text(_xml("stale.jpg", (w, h) if i != 1 else None, objects))
    (root / "ImageSets/Main/train.txt").write_text("000000\n000001\n")
    (root / "ImageSets/Main/val.txt").write_text("000002\n")
    (root / "ImageSets/Main/dog_train.txt").write_text("000000  1\n000001 -1\n")  # per-class list: not a split

    assert sniff_detection_format(root) == "voc"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        splits = read_detection_splits(root)
    assert sorted(splits) == ["train", "val"]
    train, val = splits["train"], splits["val"]
    assert train.class_names == ["dog", "person"] == val.class_names  # sorted names found, shared by splits
    first = train.images[0]
    w, h = image_size(real_images[0])
    assert first.path == root / "JPEGImages/000000.jpg" and (first.width, first.height) == (w, h)
    # VOC is 1-based inclusive: xmin=1 is x1=0, xmax=w is x2=w (the whole image)
    np.testing.assert_array_equal(first.boxes, [[0, 0, w, h], [10, 20, 40, 60]])
    assert first.labels.tolist() == [0, 1] and first.difficult.tolist() == [False, True]
    assert (train.images[1].width, train.images[1].height) == image_size(real_images[1])
    assert len(val.images) == 1 and len(val.images[0].labels) == 0  # an image without objects stays
    with pytest.raises(VocFormatError, match="no split 'test'"):
        read_voc(root, "test")


def _broken_pair(tmp_path: Path, real_images: list[Path]) -> tuple[Path, Path]:
    """A flat photos/ + labels_xml/ pair of real images with exactly three bad entries (a box outside
    part0, an unknown class in part1, a broken part2.xml); part3 has no boxes. Returns (root, xml folder)."""
    root = tmp_path / "inspection"
    (root / "photos").mkdir(parents=True)
    (root / "labels_xml").mkdir()
    (root / "labels.txt").write_text("scratch\ndent\n")
    sizes = []
    for i, image in enumerate(real_images):
        shutil.copy(image, root / "photos" / f"part{i}.jpg")
        sizes.append(image_size(image))
    (w0, h0), (w1, h1) = sizes[0], sizes[1]
    xml = root / "labels_xml"
    (xml / "part0.xml").write_text(
        _xml("part0.jpg", (w0, h0), [("scratch", (5, 5, 50, 50), 0), ("dent", (w0 - 20, 10, w0 + 30, 40), 0)])
    )
    (xml / "part1.xml").write_text(
        _xml("part1.jpg", (w1, h1), [("rust", (5, 5, 50, 50), 0), ("dent", (100, 100, 150, 180), 0)])
    )
    (xml / "part2.xml").write_text("<annotation><object><name>scratch</name><bndbox><xmin>1")  # broken
    (xml / "part3.xml").write_text(_xml("part3.jpg", sizes[3], []))
    return root, xml


def test_flat_pair_skips_exactly_the_broken_xml_the_outside_box_and_the_unknown_class(
    tmp_path: Path, real_images: list[Path], capsys
):
    """The acceptance case: a folder pair with a broken XML, a box outside its image and an unknown class."""
    root, xml = _broken_pair(tmp_path, real_images)

    assert sniff_detection_format(root) == "voc"
    assert voc_pair_folders(root) == (root / "photos", xml)
    with pytest.warns(UserWarning) as caught:
        ds = read_detection_splits(root)["train"]
    assert ds.class_names == ["scratch", "dent"]
    assert [im.path.name for im in ds.images] == ["part0.jpg", "part1.jpg", "part3.jpg"]
    np.testing.assert_array_equal(ds.images[0].boxes, [[4, 4, 50, 50]])
    np.testing.assert_array_equal(ds.images[1].boxes, [[99, 99, 150, 180]])
    assert ds.images[1].labels.tolist() == [1]
    skipped = [(Path(i.source.split(":")[0]).name, i.index, i.reason) for i in ds.invalid]
    assert [(name, index) for name, index, _ in skipped] == [("part0.xml", 1), ("part1.xml", 0), ("part2.xml", -1)]
    assert "outside" in skipped[0][2] and "unknown class 'rust'" in skipped[1][2] and "XML" in skipped[2][2]
    messages = [str(w.message) for w in caught]
    assert len(messages) == 3
    assert "part0.xml: object[1]" in messages[0] and "part1.xml: object[0]" in messages[1]
    assert str(xml / "part2.xml") in messages[2]

    # inspect lists every skipped box or file by file and index
    assert main(["inspect", str(root)]) == 0
    report = capsys.readouterr().out
    assert "invalid boxes or files skipped: 3" in report and "images without boxes: 1" in report
    assert all(f"{item.source}: {item.reason}" in report for item in ds.invalid)
    assert "scratch" in report and "dent" in report


def test_hostile_xml_is_a_skipped_file_not_an_expansion(tmp_path: Path, real_images: list[Path]):
    """A billion-laughs file (entities expanding to 10^9 'lol's) is skipped as broken, in bounded memory."""
    shutil.copy(real_images[0], tmp_path / "bomb.jpg")
    entities = '<!ENTITY lol0 "lol">' + "".join(f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10))
    (tmp_path / "bomb.xml").write_text(
        f'<?xml version="1.0"?><!DOCTYPE lolz [{entities}]>'
        "<annotation><object><name>&lol9;</name></object></annotation>"
    )
    with pytest.warns(UserWarning, match="bomb.xml"):
        ds = read_voc_pair(tmp_path, tmp_path)
    assert ds.images == [] and ds.invalid[0].index == WHOLE_FILE and "DTD" in ds.invalid[0].reason


def test_flat_pair_with_bad_entries_trains_skipping_exactly_those(tmp_path: Path, real_images: list[Path]):
    """train.py on the same broken pair: detection is read from the data, the three bad entries are skipped
    with warnings naming them, and the run ends with metrics and a checked model.onnx."""
    import json

    from amlvision.training.config import parse_config
    from amlvision.training.loop import train

    root, xml = _broken_pair(tmp_path, real_images)

    outputs = tmp_path / "out"
    argv = ["--data", str(root), "--outputs", str(outputs), "--epochs", "1", "--batch-size", "2"]
    argv += ["--min-size", "128", "--max-size", "192", "--val-fraction", "0.34", "--threads", "2", "--progress", "log"]
    with pytest.warns(UserWarning) as caught:
        cfg = parse_config(argv)
        assert cfg.task == "detection" and cfg.resolved is not None and cfg.resolved.kind == "voc"
        train(cfg)
    messages = [str(w.message) for w in caught if "object[" in str(w.message) or "part2.xml" in str(w.message)]
    assert len(messages) == 3, messages
    assert "part0.xml: object[1]" in messages[0] and "part1.xml: object[0]" in messages[1]
    assert str(xml / "part2.xml") in messages[2]
    metrics = json.loads((outputs / "metrics.json").read_text())
    assert metrics["task"] == "detection" and metrics["export"]["exported"]
    assert json.loads((outputs / "labels.json").read_text()) == ["scratch", "dent"]
    assert (outputs / "model.onnx").is_file()
