"""The packed format: round trip, checksum verification, and no complete-looking output after an interruption."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from amlvision.formats.packed import PackedDataset, PackedFormatError, PackedWriter, is_packed, write_packed
from amlvision.pack import pack

CLASSES = [f"c{i}" for i in range(10)]


@pytest.fixture(scope="module")
def real_packed(cifar_subset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return pack(cifar_subset, "packed", tmp_path_factory.mktemp("packed") / "out").out


def test_round_trip_in_memory(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    train = (rng.integers(0, 256, (7, 5, 4, 3), dtype=np.uint8), rng.integers(0, 10, 7))
    test = (rng.integers(0, 256, (3, 5, 4, 3), dtype=np.uint8), rng.integers(0, 10, 3))
    out = write_packed(tmp_path / "p", {"train": train, "test": test}, CLASSES)
    ds = PackedDataset(out, verify=True)
    assert is_packed(out) and ds.splits == ["train", "test"] and ds.image_shape == (5, 4, 3)
    for name, (images, labels) in (("train", train), ("test", test)):
        assert isinstance(ds.images(name), np.memmap)
        np.testing.assert_array_equal(ds.images(name), images)
        np.testing.assert_array_equal(ds.labels(name), labels)
    assert ds.class_names == CLASSES


def test_verify_detects_a_changed_byte(real_packed: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    copy.mkdir()
    for file in real_packed.iterdir():
        (copy / file.name).write_bytes(file.read_bytes())
    PackedDataset(copy, verify=True)
    data = bytearray((copy / "train.images.u8").read_bytes())
    data[12345] ^= 0xFF
    (copy / "train.images.u8").write_bytes(bytes(data))
    PackedDataset(copy)  # sizes still match: opening is cheap and does not hash
    with pytest.raises(PackedFormatError, match=r"train\.images\.u8: sha256"):
        PackedDataset(copy, verify=True)


def test_truncated_file_and_missing_manifest_are_refused(real_packed: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    copy.mkdir()
    for file in real_packed.iterdir():
        (copy / file.name).write_bytes(file.read_bytes())
    with open(copy / "test.labels.i64", "r+b") as fh:
        fh.truncate(100)
    with pytest.raises(PackedFormatError, match=r"test\.labels\.i64: 100 bytes"):
        PackedDataset(copy)
    (copy / "manifest.json").unlink()
    assert not is_packed(copy)
    with pytest.raises(PackedFormatError, match="no manifest.json"):
        PackedDataset(copy)


def test_writer_rejects_wrong_shapes_and_labels(tmp_path: Path) -> None:
    with pytest.raises(PackedFormatError, match="image shape"), PackedWriter(tmp_path / "a", CLASSES, (4, 4, 3)) as w:
        w.add("train", np.zeros((2, 4, 5, 3), np.uint8), np.zeros(2))
    with (
        pytest.raises(PackedFormatError, match="label 10 outside"),
        PackedWriter(tmp_path / "b", CLASSES, (4, 4, 3)) as w,
    ):
        w.add("train", np.zeros((1, 4, 4, 3), np.uint8), np.array([10]))
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
    assert list(tmp_path.iterdir()) == []  # temporary folders removed too


def test_output_folder_has_ordinary_permissions(tmp_path: Path) -> None:
    previous = os.umask(0o022)
    try:
        write_packed(tmp_path / "p", {"train": (np.zeros((1, 2, 2, 3), np.uint8), np.zeros(1))}, CLASSES)
    finally:
        os.umask(previous)
    assert (tmp_path / "p").stat().st_mode & 0o777 == 0o755  # not mkdtemp's 0700: others may read it
    assert (tmp_path / "p" / "manifest.json").stat().st_mode & 0o777 == 0o644


def test_exception_inside_writer_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError), PackedWriter(tmp_path / "out", CLASSES, (2, 2, 3)) as writer:
        writer.add("train", np.zeros((3, 2, 2, 3), np.uint8), np.zeros(3))
        raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []


_SLOW_WRITER = """
import sys, time, numpy as np
from amlvision.formats.packed import PackedWriter
with PackedWriter(sys.argv[1], ["a", "b"], (8, 8, 3)) as w:
    for i in range(1000):
        w.add("train", np.full((10, 8, 8, 3), i % 256, np.uint8), np.zeros(10))
        if i == 3:
            print("writing", flush=True)
        time.sleep(0.01)
"""


def test_killed_writer_leaves_no_complete_looking_output(tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-c", _SLOW_WRITER, str(out)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "writing"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    partial = [p for p in tmp_path.iterdir() if p.name.startswith(".out.partial-")]
    assert len(partial) == 1 and (partial[0] / "train.images.u8").stat().st_size > 0  # killed mid-write
    assert not out.exists() and not is_packed(partial[0])
    # The next write of the same output clears the dead process's leftovers; a live one's are kept.
    live = tmp_path / f".out.partial-{partial[0].name.split('-')[1]}-{os.getpid()}-mine"
    live.mkdir()
    write_packed(out, {"train": (np.zeros((1, 8, 8, 3), np.uint8), np.zeros(1))}, ["a", "b"])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([live.name, "out"])


def test_existing_output_needs_overwrite(tmp_path: Path) -> None:
    images = (np.zeros((1, 2, 2, 3), np.uint8), np.zeros(1))
    write_packed(tmp_path / "p", {"train": images}, CLASSES)
    with pytest.raises(FileExistsError):
        write_packed(tmp_path / "p", {"train": images}, CLASSES)
    ones = (np.ones((2, 2, 2, 3), np.uint8), np.ones(2))
    write_packed(tmp_path / "p", {"train": ones}, CLASSES, overwrite=True)
    assert PackedDataset(tmp_path / "p", verify=True).count("train") == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p"]
