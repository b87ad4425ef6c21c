"""Every conversion between COCO, VOC, CNTK and YOLO on coco-tiny (both splits), pack atomicity, the CLI."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

from amlvision.cli import main
from amlvision.detection.annotations import DetectionSet
from amlvision.detection.convert import FORMATS, pack_detection, read_detection_splits, sniff_detection_format

# Largest box-edge change a round trip through each format may cause, in pixels (docs/detection.md):
# COCO and CNTK write the shortest float32 text (x, y, w, h in COCO: float32 arithmetic), VOC integer
# pixels, YOLO six decimals of the image size.
TOLERANCE = {"coco": 1e-3, "cntk": 1e-3, "voc": 0.5, "yolo": lambda im: 1e-6 * max(im.width, im.height) + 1e-4}
HAS_CROWD = {"coco": True, "voc": True, "cntk": False, "yolo": False}


def _tolerance(fmt: str, image) -> float:
    value = TOLERANCE[fmt]
    return value(image) if callable(value) else value


def _assert_same(
    original: dict[str, DetectionSet], converted: dict[str, DetectionSet], formats: list[str], same_bytes: bool = False
):
    """``converted`` holds ``original``'s data after passing through ``formats``: classes, images, boxes."""
    assert sorted(converted) == sorted(original)
    crowd_kept = all(HAS_CROWD[f] for f in formats)
    for split, ds in original.items():
        back = converted[split]
        assert back.class_names == ds.class_names and not back.invalid
        by_name = {im.path.name: im for im in back.images}
        assert sorted(by_name) == sorted(im.path.name for im in ds.images)
        for image in ds.images:
            other = by_name[image.path.name]
            assert (other.width, other.height) == (image.width, image.height)
            keep = np.ones(len(image.labels), bool) if crowd_kept else ~image.iscrowd
            assert other.labels.tolist() == image.labels[keep].tolist()
            if crowd_kept:
                assert other.iscrowd.tolist() == image.iscrowd.tolist()
            if len(other.boxes):
                tolerance = sum(_tolerance(f, image) for f in formats)
                assert np.abs(other.boxes - image.boxes[keep]).max() <= tolerance, (split, image.path.name, formats)
            if same_bytes:
                assert Path(other.path).read_bytes() == Path(image.path).read_bytes()
            else:
                assert Path(other.path).stat().st_size == Path(image.path).stat().st_size


@pytest.mark.parametrize("fmt", FORMATS)
def test_coco_tiny_to_each_format_and_back(coco_tiny_splits, derived, fmt: str):
    assert sniff_detection_format(derived[fmt]) == fmt
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _assert_same(coco_tiny_splits, read_detection_splits(derived[fmt]), [fmt], same_bytes=True)


@pytest.mark.parametrize("source", FORMATS)
@pytest.mark.parametrize("target", FORMATS)
def test_every_conversion_between_formats(coco_tiny_splits, derived, tmp_path: Path, source: str, target: str):
    out = pack_detection(derived[source], target, tmp_path / target).out
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _assert_same(coco_tiny_splits, read_detection_splits(out), [source, target])


def test_second_round_trips_are_exact(derived, tmp_path: Path):
    """Once rounded to VOC's integer pixels, VOC -> COCO -> VOC changes nothing; CNTK -> CNTK neither."""
    for fmt, via in (("voc", "coco"), ("cntk", "cntk")):
        first = read_detection_splits(derived[fmt])
        middle = pack_detection(derived[fmt], via, tmp_path / f"{fmt}-{via}").out
        again = read_detection_splits(pack_detection(middle, fmt, tmp_path / f"{fmt}-again").out)
        for split in first:
            for a, b in zip(first[split].images, again[split].images, strict=True):
                np.testing.assert_array_equal(a.boxes, b.boxes)
                assert a.labels.tolist() == b.labels.tolist() and a.difficult.tolist() == b.difficult.tolist()


def test_pack_is_atomic(coco_tiny: Path, derived, tmp_path: Path):
    out = tmp_path / "voc"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError):
        pack_detection(coco_tiny, "voc", out)
    assert [p.name for p in out.iterdir()] == ["keep.txt"]

    # a source whose image is missing fails while writing: nothing appears, no partial folder stays
    broken = tmp_path / "broken"
    pack_detection(derived["yolo"], "coco", broken)
    doc = json.loads((broken / "annotations/instances_val2017.json").read_text())
    doc["images"][3]["file_name"] = "missing.jpg"
    (broken / "annotations/instances_val2017.json").write_text(json.dumps(doc))
    target = tmp_path / "never"
    with pytest.raises(OSError):
        pack_detection(broken, "cntk", target)
    assert not target.exists() and [p.name for p in tmp_path.iterdir() if "never" in p.name] == []


def test_cli_pack_and_inspect(coco_tiny: Path, coco_tiny_splits, tmp_path: Path, capsys):
    out = tmp_path / "voc"
    assert main(["pack", str(coco_tiny), "--to", "voc", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "train2017: 80 images, 705 boxes" in printed and "val2017: 80 images, 815 boxes" in printed
    assert main(["pack", str(coco_tiny), "--to", "voc", "--out", str(out)]) == 1
    assert "already exists" in capsys.readouterr().err

    assert main(["inspect", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["format"] == "voc" and summary["task"] == "detection"
    assert summary["splits"]["train2017"]["missing_images"] == []
    val = summary["splits"]["val2017"]
    ds = coco_tiny_splits["val2017"]
    assert val["images"] == 80 and val["boxes"] == 815 and val["crowd"] == 11
    assert sum(val["boxes_per_class"].values()) == 815 and val["boxes_per_class"]["person"] == sum(
        int((im.labels == ds.class_names.index("person")).sum()) for im in ds.images
    )
    assert sum(val["sizes"].values()) == 815 and min(val["sizes"].values()) > 0


def test_classification_sources_are_not_taken_for_detection_data(kaggle_sample: Path, tmp_path: Path):
    """inspect and pack pick the detection path only for detection layouts."""
    assert sniff_detection_format(kaggle_sample) is None
    tree = tmp_path / "photos" / "cat"
    tree.mkdir(parents=True)
    (tree / "a.png").write_bytes(b"")
    assert sniff_detection_format(tmp_path / "photos") is None
    (tmp_path / "dataset.json").write_text('{"splits": {"train": "train"}}')
    assert sniff_detection_format(tmp_path / "dataset.json") is None


def test_flat_pair_named_images_and_labels_is_voc_not_yolo(derived, tmp_path: Path):
    root = tmp_path / "pair"
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    for xml in sorted((derived["voc"] / "Annotations").glob("*.xml"))[:3]:
        (root / "labels" / xml.name).write_bytes(xml.read_bytes())
        image = derived["voc"] / "JPEGImages" / f"{xml.stem}.jpg"
        (root / "images" / image.name).write_bytes(image.read_bytes())
    assert sniff_detection_format(root) == "voc"
    ds = read_detection_splits(root)["train"]
    assert len(ds.images) == 3 and ds.num_boxes > 0 and not ds.invalid


def test_inspect_size_buckets_match_the_raw_coco_boxes(coco_tiny: Path, capsys):
    """small/medium/large counted from the JSON's own w*h with COCO's bounds, independently of the reader."""
    assert main(["inspect", str(coco_tiny), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["format"] == "coco" and sorted(summary["splits"]) == ["train2017", "val2017"]
    for split, report in summary["splits"].items():
        raw = json.loads((coco_tiny / "annotations" / f"instances_{split}.json").read_text())
        areas = np.array([a["bbox"][2] * a["bbox"][3] for a in raw["annotations"]])
        expected = {
            "small": int((areas < 32**2).sum()),
            "medium": int(((areas >= 32**2) & (areas < 96**2)).sum()),
            "large": int((areas >= 96**2).sum()),
        }
        assert report["sizes"] == expected
        names = {c["id"]: c["name"] for c in raw["categories"]}
        per_class = {name: 0 for name in names.values()}
        for a in raw["annotations"]:
            per_class[names[a["category_id"]]] += 1
        assert report["boxes_per_class"] == per_class
        assert report["images_without_boxes"] == [] and report["invalid"] == [] and report["missing_images"] == []


def test_inspect_names_annotated_images_missing_on_disk(derived, tmp_path: Path, capsys):
    copy = pack_detection(derived["coco"], "coco", tmp_path / "coco").out
    gone = sorted((copy / "val2017").glob("*.jpg"))[:2]
    for path in gone:
        path.unlink()
    assert main(["inspect", str(copy)]) == 0
    report = capsys.readouterr().out
    assert "annotated images missing on disk: 2" in report and all(str(p) in report for p in gone)


def test_cli_classes_option_gives_the_class_list(derived, tmp_path: Path, capsys):
    """--classes fixes the class order; boxes of other classes are reported as unknown, then pack skips them."""
    pair = tmp_path / "pair"
    (pair / "xml").mkdir(parents=True)
    (pair / "jpg").mkdir()
    for xml in sorted((derived["voc"] / "Annotations").glob("*.xml"))[:5]:
        (pair / "xml" / xml.name).write_bytes(xml.read_bytes())
        image = derived["voc"] / "JPEGImages" / f"{xml.stem}.jpg"
        (pair / "jpg" / image.name).write_bytes(image.read_bytes())
    everything = read_detection_splits(pair)["train"]
    persons = sum(int((im.labels == everything.class_names.index("person")).sum()) for im in everything.images)
    assert 0 < persons < everything.num_boxes

    assert main(["inspect", str(pair), "--classes", "person", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)["splits"]["train"]
    assert report["boxes_per_class"] == {"person": persons}
    assert len(report["invalid"]) == everything.num_boxes - persons
    assert all("unknown class" in item["reason"] for item in report["invalid"])
    with pytest.warns(UserWarning, match="unknown class"):  # pack warns about each box it leaves out
        assert main(["pack", str(pair), "--to", "yolo", "--out", str(tmp_path / "yolo"), "--classes", "person"]) == 0
    assert (tmp_path / "yolo" / "classes.txt").read_text() == "person\n"


def test_written_coco_loads_in_pycocotools_and_evaluates(derived, coco_tiny_splits, tmp_path: Path, capsys):
    """The JSON write_coco makes (here from the VOC copy) is what pycocotools' COCO and COCOeval expect."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    coco_dir = pack_detection(derived["voc"], "coco", tmp_path / "coco").out
    gt = COCO(str(coco_dir / "annotations" / "instances_val2017.json"))
    assert len(gt.anns) == coco_tiny_splits["val2017"].num_boxes
    detections = [
        {"image_id": a["image_id"], "category_id": a["category_id"], "bbox": a["bbox"], "score": 1.0}
        for a in gt.anns.values()
        if not a["iscrowd"]
    ]
    evaluation = COCOeval(gt, gt.loadRes(detections), "bbox")
    evaluation.evaluate()
    evaluation.accumulate()
    evaluation.summarize()
    capsys.readouterr()
    assert evaluation.stats[0] == pytest.approx(1.0)  # AP@[.5:.95] of perfect predictions
