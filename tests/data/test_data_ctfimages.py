"""CTF files of images as a data collection (`amlvision.data.ctfimages` through `open_collection`): read back
pixel-exactly, and malformed rows named by file and line. CTFSource itself: tests/sources/test_sources_ctf.py."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from amlvision import cli
from amlvision.ctf import CTFError
from amlvision.data.resolve import open_collection
from amlvision.formats.packed import PackedDataset
from amlvision.pack import pack


@pytest.fixture(scope="module")
def ctf_dir(cifar_subset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return pack(cifar_subset, "ctf", tmp_path_factory.mktemp("ctf") / "out").out


def test_ctf_folder_reads_back_and_repacks(ctf_dir: Path, cifar_subset: Path, tmp_path: Path) -> None:
    source = open_collection(cifar_subset)
    splits = open_collection(ctf_dir)
    for split in ("train", "test"):
        assert splits[split].class_names == source[split].class_names
        np.testing.assert_array_equal(splits[split].labels, source[split].labels)
        np.testing.assert_array_equal(
            splits[split].arrays[::37], np.stack([source[split].load(i) for i in range(0, len(source[split]), 37)])
        )
    pack(ctf_dir, "packed", tmp_path / "p")
    np.testing.assert_array_equal(PackedDataset(tmp_path / "p").images("test"), splits["test"].arrays)


def test_bare_cntk_tutorial_file_infers_shape(ctf_dir: Path, tmp_path: Path) -> None:
    bare = tmp_path / "Test_cntk_text.txt"  # the name CNTK's CIFAR-10 tutorial uses; no dataset.json
    shutil.copy(ctf_dir / "test.ctf", bare)
    images = open_collection(bare)["test"]
    assert images.arrays.shape == (500, 32, 32, 3)
    assert images.class_names == [str(i) for i in range(10)]  # no class_names.txt beside it
    np.testing.assert_array_equal(images.arrays, open_collection(ctf_dir)["test"].arrays)


def _lines(ctf_dir: Path) -> list[str]:
    return (ctf_dir / "test.ctf").read_text().splitlines(keepends=True)


def test_ragged_row_is_named_by_line(ctf_dir: Path, tmp_path: Path, capsys) -> None:
    lines = _lines(ctf_dir)
    lines[6] = lines[6].rsplit(" ", 5)[0] + "\n"  # five pixel values short
    bad = tmp_path / "test.ctf"
    bad.write_text("".join(lines[:20]))
    with pytest.raises(CTFError, match=r"test\.ctf:7"):
        open_collection(bad)
    assert cli.main(["pack", str(bad), "--to", "packed", "--out", str(tmp_path / "p")]) == 1
    assert "test.ctf:7" in capsys.readouterr().err
    assert not (tmp_path / "p").exists()


def test_wrong_dimension_and_bad_labels(ctf_dir: Path, tmp_path: Path) -> None:
    lines = _lines(ctf_dir)
    odd = tmp_path / "odd.ctf"
    odd.write_text("|labels 1 0 |features 1 2 3 4 5\n")
    with pytest.raises(CTFError, match=r"odd\.ctf: cannot tell the image shape from 5 features"):
        open_collection(odd)
    two_hot = tmp_path / "two.ctf"
    two_hot.write_text(lines[0] + lines[1].replace("|labels 1 0", "|labels 1 1", 1) + lines[2])
    with pytest.raises(CTFError, match=r"two\.ctf:2: \|labels is not one-hot"):
        open_collection(two_hot)
    big = tmp_path / "big.ctf"
    big.write_text(lines[0] + lines[1].replace("|features ", "|features 300 ", 1))
    with pytest.raises(CTFError, match=r"big\.ctf:2"):
        open_collection(big)
