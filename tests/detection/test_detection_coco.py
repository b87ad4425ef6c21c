"""read_coco against pycocotools on real COCO 2017 annotations, and on hand-written COCO files."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from pycocotools.coco import COCO

from amlvision.detection.coco import CocoFormatError, read_coco, write_coco


@pytest.mark.parametrize("split", ["train2017", "val2017"])
def test_read_coco_matches_pycocotools_on_coco_tiny(coco_tiny: Path, split: str, capsys):
    json_path = coco_tiny / "annotations" / f"instances_{split}.json"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ds = read_coco(json_path)
    reference = COCO(str(json_path))
    capsys.readouterr()

    assert ds.category_ids == sorted(reference.getCatIds())
    assert ds.category_ids[-1] == 90 and len(ds.category_ids) == 80  # COCO's ids have gaps
    assert ds.class_names == [reference.cats[c]["name"] for c in ds.category_ids]
    assert [im.image_id for im in ds.images] == [im["id"] for im in reference.dataset["images"]]
    assert ds.num_boxes == len(reference.anns) and not ds.invalid
    for image in ds.images:
        assert image.path == coco_tiny / split / reference.imgs[image.image_id]["file_name"]
        assert image.path.is_file()
        anns = reference.imgToAnns[image.image_id]
        expected = np.array([[x, y, x + w, y + h] for x, y, w, h in (a["bbox"] for a in anns)], np.float32)
        clipped = np.minimum(expected.reshape(-1, 4), [1e9, 1e9, image.width, image.height])  # < 1 px overhangs
        np.testing.assert_allclose(image.boxes, clipped)
        assert [ds.category_ids[i] for i in image.labels] == [a["category_id"] for a in anns]
        assert image.iscrowd.tolist() == [bool(a["iscrowd"]) for a in anns]
    crowd = sum(int(im.iscrowd.sum()) for im in ds.images)
    assert crowd == sum(a["iscrowd"] for a in reference.anns.values()) > 0


def _hand_written(tmp_path: Path) -> Path:
    doc = {
        "info": {"year": 2017},
        "images": [
            {"id": 7, "file_name": "a.jpg", "width": 100, "height": 50},
            {"id": 9, "file_name": "b.jpg", "width": 200, "height": 100},
            {"id": 11, "file_name": "empty.jpg", "width": 64, "height": 64},
        ],
        "annotations": [
            {"id": 1, "image_id": 7, "category_id": 18, "bbox": [10, 5, 20, 10], "iscrowd": 0,
             "segmentation": [[10, 5, 30, 5, 30, 15]], "area": 100.0},
            {"id": 2, "image_id": 9, "category_id": 3, "bbox": [0.5, 0.25, 199.5, 99.75], "iscrowd": 1,
             "segmentation": {"counts": [0, 5, 3], "size": [100, 200]}},
            {"id": 3, "image_id": 9, "category_id": 3, "bbox": [-0.6, 0, 10, 10.4]},  # overhang < 1 px: clipped
            {"id": 4, "image_id": 7, "category_id": 18, "bbox": [10, 5, 0, 10]},  # zero width
            {"id": 5, "image_id": 7, "category_id": 18, "bbox": [90, 5, 20, 10]},  # right edge at 110 > 100
            {"id": 6, "image_id": 7, "category_id": 99, "bbox": [1, 1, 2, 2]},  # unknown category
            {"id": 7, "image_id": 404, "category_id": 3, "bbox": [1, 1, 2, 2]},  # unknown image
            {"id": 8, "image_id": 9, "category_id": 3, "bbox": [1, 2, "3"]},  # not 4 numbers
        ],
        "categories": [{"id": 18, "name": "dog"}, {"id": 3, "name": "car"}],
    }  # fmt: skip
    path = tmp_path / "annotations" / "instances_mini.json"
    path.parent.mkdir()
    path.write_text(json.dumps(doc))
    return path


def test_read_coco_hand_written_file(tmp_path: Path):
    path = _hand_written(tmp_path)
    with pytest.warns(UserWarning) as caught:
        ds = read_coco(path)
    assert ds.class_names == ["car", "dog"] and ds.category_ids == [3, 18]  # id order, contiguous labels
    a, b, empty = ds.images
    assert a.path == tmp_path / "mini" / "a.jpg" and (a.width, a.height) == (100, 50)
    np.testing.assert_array_equal(a.boxes, [[10, 5, 30, 15]])
    assert a.labels.tolist() == [1]
    np.testing.assert_allclose(b.boxes, [[0.5, 0.25, 200, 100], [0, 0, 9.4, 10.4]], atol=1e-6)
    assert b.iscrowd.tolist() == [True, False]
    assert len(empty.labels) == 0 and empty.boxes.shape == (0, 4)  # images without boxes stay

    assert [(i.index, i.reason.split(" ")[0]) for i in ds.invalid] == [
        (3, "zero"),
        (4, "box"),
        (5, "unknown"),
        (6, "unknown"),
        (7, "bbox"),
    ]
    assert "outside the 100x50 image" in ds.invalid[1].reason
    assert "category_id 99" in ds.invalid[2].reason and "image_id 404" in ds.invalid[3].reason
    messages = [str(w.message) for w in caught]
    assert len(messages) == 5
    for item, message in zip(ds.invalid, messages, strict=True):
        assert str(path) in message and f"annotations[{item.index}]" in message


@pytest.mark.parametrize(
    ("content", "field"),
    [
        ('{"images": {}, "annotations": [], "categories": []}', "$.images"),
        ('{"images": [], "categories": []}', "annotations"),
        ('{"images": [{"id": 1, "file_name": "a.jpg"}], "annotations": [], "categories": []}', "images[0]"),
        ('{"images": [], "annotations": [], "categories": [{"name": "x"}]}', "categories[0]"),
        ("[1, 2]", "object"),
        ('{"images": [', "cannot read"),
        ('{"images": [], "categories": [], "annotations": [{"segmentation": ' + "[" * 100_000, "recursion"),
    ],
)
def test_malformed_coco_file_is_an_error_naming_file_and_field(tmp_path: Path, content: str, field: str):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(CocoFormatError) as error:
        read_coco(path, images_dir=tmp_path)
    assert str(path) in str(error.value) and field in str(error.value)


def test_write_coco_round_trip_keeps_ids_flags_and_empty_images(tmp_path: Path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = read_coco(_hand_written(tmp_path))
    ds.images[0].difficult[:] = True
    out = tmp_path / "out.json"
    write_coco(ds, out)
    again = read_coco(out, images_dir=tmp_path / "mini")
    assert again.category_ids == [3, 18] and again.class_names == ds.class_names and not again.invalid
    assert [im.image_id for im in again.images] == [7, 9, 11]
    for x, y in zip(ds.images, again.images, strict=True):
        np.testing.assert_allclose(x.boxes, y.boxes, atol=1e-3)
        assert x.labels.tolist() == y.labels.tolist()
        assert x.iscrowd.tolist() == y.iscrowd.tolist() and x.difficult.tolist() == y.difficult.tolist()
