"""CNTK Faster R-CNN files, hand-written in both of CNTK's box forms, with real coco-tiny images.

The lines follow microsoft/CNTK Examples/Image/Detection: ``utils/annotations/annotations_helper.py``
writes ``class_map.txt`` (``name<TAB>index``), ``train_img_file.txt`` (``seq<TAB>path<TAB>0``) and
``train_roi_file.txt`` (``seq |roiAndLabel x1 y1 x2 y2 label ...``); the older
``FasterRCNN/Data/Pascal/*_rois_topleft_wh_rel.txt`` hold ``x y w h`` relative to the image size.
"""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest

from amlvision.detection.cntk import CntkFormatError, cntk_splits, read_class_map, read_cntk
from amlvision.detection.convert import sniff_detection_format
from amlvision.detection.files import image_size


@pytest.fixture
def grocery_like(tmp_path: Path, coco_tiny: Path) -> tuple[Path, list[tuple[int, int]]]:
    root = tmp_path / "Grocery"
    (root / "positive").mkdir(parents=True)
    sizes = []
    for i, image in enumerate(sorted((coco_tiny / "train2017").glob("*.jpg"))[:3]):
        shutil.copy(image, root / "positive" / f"img{i}.jpg")
        sizes.append(image_size(image))
    (root / "class_map.txt").write_text("__background__\t0\navocado\t1\norange\t2\nbutter\t3\n")
    (root / "train_img_file.txt").write_text("".join(f"{i}\tpositive/img{i}.jpg\t0\n" for i in range(3)))
    return root, sizes


def test_absolute_form_as_annotations_helper_writes_it(grocery_like):
    root, sizes = grocery_like
    (root / "train_roi_file.txt").write_text(
        "0 |roiAndLabel 10.0 20.0 110.0 220.0 1.0 30.0 40.0 50.5 60.25 3.0\n"
        "1 |roiAndLabel\n"  # an image without boxes
        "2 |roiAndLabel 0.0 0.0 64.0 48.0 2.0\n"
    )
    assert sniff_detection_format(root) == "cntk" and cntk_splits(root) == ["train"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ds = read_cntk(root, "train")
    assert ds.class_names == ["avocado", "orange", "butter"] and ds.category_ids == [1, 2, 3]
    assert [im.path for im in ds.images] == [root / "positive" / f"img{i}.jpg" for i in range(3)]
    assert [(im.width, im.height) for im in ds.images] == sizes
    np.testing.assert_array_equal(ds.images[0].boxes, [[10, 20, 110, 220], [30, 40, 50.5, 60.25]])
    assert ds.images[0].labels.tolist() == [0, 2] and len(ds.images[1].labels) == 0
    assert ds.images[2].labels.tolist() == [1]


def test_older_relative_x_y_w_h_form(grocery_like):
    """Values from FasterRCNN/Data/Pascal/trainval2007_rois_topleft_wh_rel.txt, line 0 (Pascal's 000005.jpg)."""
    root, sizes = grocery_like
    (root / "class_map.txt").unlink()
    (root / "train.imgMap.txt").write_text("".join(f"{i}\tpositive/img{i}.jpg\t0\n" for i in range(2)))
    (root / "train.GTRois.txt").write_text(
        "0 |roiAndLabel 0.5260 0.5627 0.1220 0.3413 9 0.3300 0.7040 0.1760 0.2880 9 \n"
        "1\t|roiAndLabel  0.617 0.213 0.106 0.083 1\n"  # the Grocery file's tab-separated variant
    )
    with pytest.raises(CntkFormatError, match="pass class_names"):
        read_cntk(root, "train")
    pascal = ["aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow"]
    ds = read_cntk(root, "train", class_names=["__background__", *pascal])
    (w, h), (w1, h1) = sizes[0], sizes[1]
    expected = [[0.526 * w, 0.5627 * h, 0.648 * w, 0.904 * h], [0.33 * w, 0.704 * h, 0.506 * w, 0.992 * h]]
    np.testing.assert_allclose(ds.images[0].boxes, expected, rtol=1e-5)
    assert [ds.class_names[i] for i in ds.images[0].labels] == ["chair", "chair"]
    np.testing.assert_allclose(ds.images[1].boxes, [[0.617 * w1, 0.213 * h1, 0.723 * w1, 0.296 * h1]], rtol=1e-5)


def test_broken_line_unknown_class_and_outside_box_are_skipped_with_warnings(grocery_like):
    root, sizes = grocery_like
    w, h = sizes[0]
    roi = root / "train_roi_file.txt"
    roi.write_text(
        f"0 |roiAndLabel 10 20 110 220 1 10 10 20 20 7 {w - 10} 10 {w + 40} 30 2\n"
        "1 |roiAndLabel 10 20 110 220\n"  # four values: the line is broken, the image is left out
        "2 |roiAndLabel 5 5 25 25 2\n"
    )
    with pytest.warns(UserWarning) as caught:
        ds = read_cntk(root, "train")
    assert [im.path.name for im in ds.images] == ["img0.jpg", "img2.jpg"]
    assert ds.images[0].labels.tolist() == [0]
    assert [(i.source, i.index) for i in ds.invalid] == [
        (f"{roi}:2", -1),
        (f"{roi}: seq 0 box 1", 1),
        (f"{roi}: seq 0 box 2", 2),
    ]
    assert "unknown class index 7" in ds.invalid[1].reason and "outside" in ds.invalid[2].reason
    assert all(i.source in str(m.message) for i, m in zip(ds.invalid, caught, strict=True))


def test_malformed_class_map_and_image_list_are_errors_naming_file_and_line(grocery_like):
    root, _ = grocery_like
    (root / "train_roi_file.txt").write_text("0 |roiAndLabel\n")
    (root / "class_map.txt").write_text("__background__\t0\navocado one\n")
    with pytest.raises(CntkFormatError, match=r"class_map.txt:2"):
        read_class_map(root / "class_map.txt")
    (root / "class_map.txt").write_text("__background__\t0\navocado\t1\n")
    (root / "train_img_file.txt").write_text("zero positive/img0.jpg\n")
    with pytest.raises(CntkFormatError, match=r"train_img_file.txt:1"):
        read_cntk(root, "train")
