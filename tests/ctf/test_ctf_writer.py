"""Writers: CNTK's CIFAR-10 layout byte for byte, general round trips, and atomicity."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import sparse as sp

from amlvision import ctf
from amlvision.ctf import writer
from amlvision.ctf.writer import format_uint8_rows

from .helpers import dense, sparse


def test_image_lines_match_cntk_cifar_tutorial_layout(tmp_path):
    image = np.arange(2 * 2 * 3, dtype=np.uint8).reshape(1, 2, 2, 3) * 20  # H=2, W=2, RGB
    path = tmp_path / "Train_cntk_text.txt"
    ctf.write_images(path, image, [2], num_classes=4)
    # channel-major: all R of the 2x2 image, then all G, then all B
    assert path.read_text() == "|labels 0 0 1 0 |features 0 60 120 180 20 80 140 200 40 100 160 220\n"
    ctf.write_images(path, image, [3], num_classes=4, label_format="sparse")
    assert path.read_text().startswith("|labels 3:1 |features 0 60 ")


def test_uint8_formatting_covers_every_value():
    rows = np.arange(256, dtype=np.uint8).reshape(2, 128)
    text, ends = format_uint8_rows(rows)
    got = [text[ends[i] : ends[i + 1] - 1].decode() for i in range(2)]
    assert got == [" ".join(map(str, range(128))), " ".join(map(str, range(128, 256)))]


def test_image_writer_validates_inputs(tmp_path):
    images = np.zeros((2, 4, 4, 3), dtype=np.uint8)
    with pytest.raises(ValueError, match="uint8"):
        ctf.write_images(tmp_path / "x.ctf", images.astype(np.float32), [0, 1], 2)
    with pytest.raises(ValueError, match=r"\[0, 2\)"):
        ctf.write_images(tmp_path / "x.ctf", images, [0, 2], 2)
    with pytest.raises(ValueError, match="2 integers"):
        ctf.write_images(tmp_path / "x.ctf", images, [0], 2)


def test_general_writer_round_trip_with_multi_sample_sequences(tmp_path):
    rng = np.random.default_rng(1)
    streams = {"x": dense("feat", 3), "y": sparse("lab", 6), "n": dense("ints", 2)}
    sequences = []
    for seq_id in (4, 9, 10):
        steps = int(rng.integers(1, 4))
        sequences.append(
            (
                seq_id,
                {
                    "x": rng.standard_normal((steps, 3)).astype(np.float32) * 1e-3,
                    "y": sp.random(int(rng.integers(1, 3)), 6, density=0.4, random_state=seq_id, format="csr"),
                    "n": rng.integers(-5, 300, (1, 2)),
                },
            )
        )
    path = tmp_path / "general.ctf"
    assert ctf.write(path, sequences, streams) == 3
    back = ctf.read(path, streams)
    assert [s.id for s in back] == [4, 9, 10]
    for (_, data), got in zip(sequences, back, strict=True):
        np.testing.assert_array_equal(got["x"], data["x"])  # float32 values survive exactly
        np.testing.assert_array_equal(got["y"].toarray(), data["y"].toarray().astype(np.float32))
        np.testing.assert_array_equal(got["n"], data["n"])


def test_general_writer_without_ids_writes_one_line_per_sequence(tmp_path):
    path = tmp_path / "flat.ctf"
    ctf.write(path, [{"x": [1, 2]}, {"x": [0.5, -3]}], {"x": dense("a", 2)}, sequence_ids=False)
    assert path.read_text() == "|a 1 2\n|a 0.5 -3\n"
    with pytest.raises(ValueError, match="need sequence ids"):
        ctf.write(path, [{"x": [[1, 2], [3, 4]]}], {"x": dense("a", 2)}, sequence_ids=False)


def test_general_writer_rejects_bad_data(tmp_path):
    streams = {"x": dense("a", 2)}
    with pytest.raises(ValueError, match=r"expected \(samples, 2\)"):
        ctf.write(tmp_path / "bad.ctf", [{"x": [1, 2, 3]}], streams)
    with pytest.raises(ValueError, match="NaN"):
        ctf.write(tmp_path / "bad.ctf", [{"x": [1, np.nan]}], streams)
    with pytest.raises(ValueError, match="differ from the previous"):
        ctf.write(tmp_path / "bad.ctf", [(1, {"x": [1, 2]}), (1, {"x": [3, 4]})], streams)


def test_interrupted_write_leaves_the_previous_file_and_no_partial(tmp_path):
    path = tmp_path / "data.ctf"
    ctf.write(path, [{"x": [1, 2]}], {"x": dense("a", 2)})
    before = path.read_bytes()

    def sequences():
        yield {"x": [5, 6]}
        raise KeyboardInterrupt  # the user pressed Ctrl-C half way

    with pytest.raises(KeyboardInterrupt):
        ctf.write(path, sequences(), {"x": dense("a", 2)})
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.ctf"]


def test_interrupted_image_write_leaves_no_file(tmp_path, monkeypatch):
    real = writer.format_uint8_rows
    calls = {"n": 0}

    def failing_on_second_chunk(rows):  # fault injection: the disk fills up half way
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError("disk full")
        return real(rows)

    monkeypatch.setattr(writer, "format_uint8_rows", failing_on_second_chunk)
    images = np.zeros((writer.IMAGE_CHUNK + 1, 2, 2, 3), dtype=np.uint8)
    with pytest.raises(OSError, match="disk full"):
        ctf.write_images(tmp_path / "imgs.ctf", images, np.zeros(len(images), dtype=np.int64), 2)
    assert list(tmp_path.iterdir()) == []
