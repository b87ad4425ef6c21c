"""CNTK map files and the OpenCV XML mean file, checked against the layout CNTK's MeanTransformer reads."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from amlvision.formats.mapfile import MapFileError, looks_like_map_file, read_map_file, write_map_file
from amlvision.formats.meanxml import read_mean_file, write_mean_file


def test_mean_file_layout_is_hwc_bgr_as_cntk_reads_it(tmp_path: Path) -> None:
    h, w = 2, 3
    mean = np.zeros((h, w, 3), np.float32)
    for y in range(h):
        for x in range(w):
            mean[y, x] = (100 * y + 10 * x + 1, 100 * y + 10 * x + 2, 100 * y + 10 * x + 3)  # R, G, B
    path = tmp_path / "mean.xml"
    write_mean_file(path, mean)
    assert path.read_text().startswith('<?xml version="1.0"?>\n<opencv_storage>')
    root = ET.parse(path).getroot()
    assert [root.findtext(t) for t in ("Channel", "Row", "Col")] == ["3", "2", "3"]
    matrix = root.find("MeanImg")
    assert matrix.get("type_id") == "opencv-matrix"
    assert [matrix.findtext(t) for t in ("rows", "cols", "dt")] == ["1", "18", "f"]
    values = [float(v) for v in matrix.findtext("data").split()]
    # cv::Mat::reshape(3, Row): pixel (0,0) B G R, then pixel (0,1) ... row by row.
    assert values[:6] == [3, 2, 1, 13, 12, 11]
    assert values[9:12] == [103, 102, 101]
    np.testing.assert_array_equal(read_mean_file(path), mean)


def test_mean_file_float32_values_survive_exactly(tmp_path: Path) -> None:
    mean = np.random.default_rng(0).uniform(0, 255, (32, 32, 3)).astype(np.float32)
    write_mean_file(tmp_path / "m.xml", mean)
    np.testing.assert_array_equal(read_mean_file(tmp_path / "m.xml"), mean)
    gray = mean[:, :, :1]
    write_mean_file(tmp_path / "g.xml", gray)
    np.testing.assert_array_equal(read_mean_file(tmp_path / "g.xml"), gray)


def test_reads_cntk_example_style_pretty_printed_file(tmp_path: Path) -> None:
    # As CNTK's CIFAR-10 scripts write it: minidom pretty-printing, %e numbers.
    data = " ".join(f"{v:e}" for v in np.arange(12, dtype=np.float64) / 3)
    (tmp_path / "m.xml").write_text(
        '<?xml version="1.0" ?>\n<opencv_storage>\n  <Channel>3</Channel>\n  <Row>2</Row>\n  <Col>2</Col>\n'
        '  <MeanImg type_id="opencv-matrix">\n    <rows>1</rows>\n    <cols>12</cols>\n    <dt>f</dt>\n'
        f"    <data>{data}</data>\n  </MeanImg>\n</opencv_storage>\n"
    )
    mean = read_mean_file(tmp_path / "m.xml")
    assert mean.shape == (2, 2, 3)
    np.testing.assert_allclose(mean[0, 0], [2 / 3, 1 / 3, 0], rtol=1e-6)  # B G R on disk -> R G B


def test_inconsistent_mean_file_is_refused_like_cntk(tmp_path: Path) -> None:
    write_mean_file(tmp_path / "m.xml", np.ones((4, 4, 3), np.float32))
    text = (tmp_path / "m.xml").read_text().replace("<Row>4</Row>", "<Row>5</Row>")
    (tmp_path / "m.xml").write_text(text)
    with pytest.raises(MapFileError, match=r"m\.xml: Channel\*Row\*Col = 60 but MeanImg holds 1x48x1"):
        read_mean_file(tmp_path / "m.xml")
    (tmp_path / "bad.xml").write_text("<opencv_storage><Channel>3")
    with pytest.raises(MapFileError, match=r"bad\.xml: not valid XML"):
        read_mean_file(tmp_path / "bad.xml")


def test_map_file_round_trip_and_key_column(tmp_path: Path) -> None:
    for name in ("a.png", "b.png"):
        (tmp_path / name).write_bytes(b"")
    write_map_file(tmp_path / "map.txt", [("a.png", 0), ("b.png", 2)])
    assert (tmp_path / "map.txt").read_text() == "a.png\t0\nb.png\t2\n"
    assert looks_like_map_file(tmp_path / "map.txt")
    images = read_map_file(tmp_path / "map.txt")
    assert images.paths == [tmp_path / "a.png", tmp_path / "b.png"] and list(images.labels) == [0, 2]
    (tmp_path / "keyed.txt").write_text("0\ta.png\t1\n1\tb.png\t0\n")
    keyed = read_map_file(tmp_path / "keyed.txt", class_names=["x", "y"])
    assert list(keyed.labels) == [1, 0] and keyed.class_names == ["x", "y"]
    (tmp_path / "neg.txt").write_text("a.png\t-1\n")
    with pytest.raises(MapFileError, match=r"neg\.txt:1: label '-1' is not a non-negative integer"):
        read_map_file(tmp_path / "neg.txt")
    with pytest.raises(MapFileError, match="cannot contain tabs"):
        write_map_file(tmp_path / "x.txt", [("a\tb.png", 0)])
