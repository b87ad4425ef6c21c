"""Acceptance: packing real CIFAR-10 PNGs to ctf, map and packed reproduces every pixel and label."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from amlvision import cli
from amlvision.ctf import StreamDef, read_arrays
from amlvision.data.cifar import write_cifar_batches
from amlvision.data.collection import LabeledImages
from amlvision.data.resolve import open_collection
from amlvision.formats.mapfile import read_class_names
from amlvision.formats.meanxml import read_mean_file
from amlvision.formats.packed import PackedDataset, is_packed
from amlvision.pack import PackError, ensure_packed, pack

CIFAR_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


@pytest.fixture(scope="module")
def expected(cifar_subset: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Every image of the subset decoded directly with Pillow, labels from the class folder names."""
    result = {}
    for split in ("train", "test"):
        files = sorted((cifar_subset / split).glob("*/*.png"))
        images = np.stack([np.asarray(Image.open(f).convert("RGB")) for f in files])
        labels = np.array([CIFAR_CLASSES.index(f.parent.name) for f in files])
        result[split] = (images, labels)
    return result


@pytest.fixture(scope="module")
def outputs(cifar_subset: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("pack")
    return {fmt: pack(cifar_subset, fmt, base / fmt).out for fmt in ("packed", "ctf", "map")}


def test_packed_reproduces_every_pixel_and_label(outputs, expected) -> None:
    ds = PackedDataset(outputs["packed"], verify=True)
    assert ds.class_names == CIFAR_CLASSES and ds.image_shape == (32, 32, 3)
    for split, (images, labels) in expected.items():
        np.testing.assert_array_equal(ds.images(split), images)
        np.testing.assert_array_equal(ds.labels(split), labels)


def test_ctf_reproduces_every_pixel_and_label(outputs, expected) -> None:
    streams = {"features": StreamDef("features", 3072), "labels": StreamDef("labels", 10)}
    assert read_class_names(outputs["ctf"] / "class_names.txt") == CIFAR_CLASSES
    meta = json.loads((outputs["ctf"] / "dataset.json").read_text())
    assert meta["streams"]["features"]["dim"] == 3072 and meta["counts"] == {"train": 1500, "test": 500}
    for split, (images, labels) in expected.items():
        ctf = read_arrays(outputs["ctf"] / f"{split}.ctf", streams, dtype=np.uint8)
        assert len(ctf) == len(labels)
        chw = ctf.data["features"].reshape(-1, 3, 32, 32)  # channel-major planes R, G, B
        np.testing.assert_array_equal(chw.transpose(0, 2, 3, 1), images)
        np.testing.assert_array_equal(ctf.data["labels"], np.eye(10, dtype=np.uint8)[labels])


def test_ctf_line_is_cntk_text_format(tmp_path: Path) -> None:
    image = np.arange(12, dtype=np.uint8).reshape(1, 2, 2, 3)  # H=2, W=2, RGB
    source = {"train": LabeledImages(["a", "b", "c", "d"], np.array([2]), arrays=image)}
    pack(source, "ctf", tmp_path / "dense")
    assert (tmp_path / "dense" / "train.ctf").read_bytes() == b"|labels 0 0 1 0 |features 0 3 6 9 1 4 7 10 2 5 8 11\n"
    pack(source, "ctf", tmp_path / "sparse", sparse_labels=True)
    assert (tmp_path / "sparse" / "train.ctf").read_bytes() == b"|labels 2:1 |features 0 3 6 9 1 4 7 10 2 5 8 11\n"


def test_map_reproduces_every_pixel_and_label_and_the_mean(outputs, expected) -> None:
    out = outputs["map"]
    assert (out / "train_map.txt").read_text().splitlines()[0] == "train/airplane/aeroplane_s_000004.png\t0"
    splits = open_collection(out)  # map files + class_names.txt
    for split, (images, labels) in expected.items():
        got = splits[split]
        assert got.class_names == CIFAR_CLASSES
        np.testing.assert_array_equal(got.labels, labels)
        np.testing.assert_array_equal(np.stack([got.load(i) for i in range(len(got))]), images)
    np.testing.assert_allclose(read_mean_file(out / "train_mean.xml"), expected["train"][0].mean(axis=0), rtol=1e-6)
    assert not (out / "test_mean.xml").exists()


def test_kaggle_sample_packs(kaggle_sample: Path, tmp_path: Path) -> None:
    report = pack(kaggle_sample, "packed", tmp_path / "k")
    assert report.counts == {"train": 200} and not report.skipped
    ds = PackedDataset(tmp_path / "k", verify=True)
    rows = [line.split(",") for line in (kaggle_sample / "trainLabels.csv").read_text().split()]
    for i in (0, 99, 199):
        np.testing.assert_array_equal(
            ds.images("train")[i], np.asarray(Image.open(kaggle_sample / "train" / rows[i][0]).convert("RGB"))
        )
    assert [ds.class_names[k] for k in ds.labels("train")] == [label for _, label in rows]


def test_cifar_batches_pack_gray_and_resized(cifar_subset: Path, expected, tmp_path: Path) -> None:
    write_cifar_batches(tmp_path / "cifar-10-batches-py", expected["train"], expected["test"], CIFAR_CLASSES)
    pack(tmp_path / "cifar-10-batches-py", "packed", tmp_path / "p")
    np.testing.assert_array_equal(PackedDataset(tmp_path / "p").images("test"), expected["test"][0])
    pack(tmp_path / "cifar-10-batches-py", "packed", tmp_path / "g", channels=1, size="16x24")
    gray = PackedDataset(tmp_path / "g")
    assert gray.image_shape == (16, 24, 1)
    want = Image.fromarray(expected["test"][0][7]).convert("L").resize((24, 16), Image.Resampling.BILINEAR)
    np.testing.assert_array_equal(gray.images("test")[7][:, :, 0], np.asarray(want))


@pytest.fixture()
def messy(cifar_subset: Path, tmp_path: Path) -> Path:
    """A class tree with one corrupt, one truncated and one larger image."""
    root = tmp_path / "messy"
    for name in ("cat", "dog"):
        shutil.copytree(cifar_subset / "test" / name, root / name)
    files = sorted((root / "cat").iterdir())
    files[3].write_bytes(b"this is not a png")
    files[4].write_bytes(files[5].read_bytes()[:300])
    return root


def test_bad_images_stop_the_pack_and_leave_nothing(messy: Path, tmp_path: Path) -> None:
    for fmt in ("packed", "ctf", "map"):
        with pytest.raises(PackError, match=r"cat/.*\.png: cannot decode image.*--skip-bad"):
            pack(messy, fmt, tmp_path / "out" / fmt)
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []


def test_skip_bad_reports_each_skipped_image(messy: Path, tmp_path: Path) -> None:
    bad = sorted((messy / "cat").iterdir())[3:5]
    for fmt in ("packed", "map", "ctf"):
        report = pack(messy, fmt, tmp_path / fmt, skip_bad=True)
        assert report.counts == {"all": 98}
        assert [item for item, _ in report.skipped] == [str(p) for p in bad]
        assert "skipped 2 item(s)" in report.summary()
    assert len(PackedDataset(tmp_path / "packed").labels("all")) == 98
    assert PackedDataset(tmp_path / "packed").manifest["source"]["skipped"][0][0] == str(bad[0])
    assert len((tmp_path / "map" / "all_map.txt").read_text().splitlines()) == 98
    assert len(list((tmp_path / "map" / "all").rglob("*.png"))) == 98


def test_mixed_sizes_need_size(messy: Path, tmp_path: Path) -> None:
    big = sorted((messy / "dog").iterdir())[0]
    Image.open(big).resize((40, 36)).save(big)
    with pytest.raises(PackError, match=r"different sizes: .* is 32x32 but .*dog/.*\.png is 36x40; pass size"):
        pack(messy, "packed", tmp_path / "p", skip_bad=True)
    report = pack(messy, "packed", tmp_path / "p", skip_bad=True, size=(32, 32))
    assert report.image_shape == (32, 32, 3)
    map_report = pack(messy, "map", tmp_path / "m", skip_bad=True)  # map keeps sizes; no mean then
    assert map_report.image_shape is None and "no all_mean.xml" in map_report.notes[0]


_SLOW_PACK = """
import sys, time
import amlvision.data.decoding as decoding
original = decoding._run
def slow(task):
    time.sleep(0.2)
    return original(task)
decoding._run = slow
from amlvision.pack import pack
print("start", flush=True)
pack(sys.argv[1], sys.argv[2], sys.argv[3], workers=1)
"""


@pytest.mark.parametrize("fmt", ["ctf", "map"])
def test_killed_pack_leaves_no_complete_looking_output(cifar_subset: Path, tmp_path: Path, fmt: str) -> None:
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [sys.executable, "-c", _SLOW_PACK, str(cifar_subset), fmt, str(out)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout.readline().strip() == "start"
    deadline = 200
    while deadline and not any(p.name.startswith(".out.partial-") for p in tmp_path.iterdir()):
        deadline -= 1
        subprocess.run(["sleep", "0.05"])
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    assert deadline, "the pack never started writing"
    assert not out.exists()


def test_existing_output_and_unknown_format(cifar_subset: Path, tmp_path: Path) -> None:
    (tmp_path / "o").mkdir()
    with pytest.raises(FileExistsError, match="already exists"):
        pack(cifar_subset, "ctf", tmp_path / "o")
    with pytest.raises(PackError, match="unknown format 'lmdb'"):
        pack(cifar_subset, "lmdb", tmp_path / "x")


def test_ensure_packed_reuses_cache_until_source_changes(kaggle_sample: Path, tmp_path: Path) -> None:
    src = tmp_path / "kaggle"
    shutil.copytree(kaggle_sample, src)
    first = ensure_packed(src, cache_dir=tmp_path / "cache")
    assert is_packed(first) and first.parent == tmp_path / "cache"
    stamp = (first / "manifest.json").stat().st_mtime_ns
    assert ensure_packed(src, cache_dir=tmp_path / "cache") == first
    assert (first / "manifest.json").stat().st_mtime_ns == stamp
    assert ensure_packed(first) == first  # already packed: returned as is
    csv = src / "trainLabels.csv"
    csv.write_text("".join(csv.read_text().splitlines(keepends=True)[:50]))
    second = ensure_packed(src, cache_dir=tmp_path / "cache")
    assert second != first and PackedDataset(second).count("train") == 50
    resized = ensure_packed(src, cache_dir=tmp_path / "cache", size=(16, 16))
    assert PackedDataset(resized).image_shape == (16, 16, 3)


def test_cli_pack_and_errors(kaggle_sample: Path, tmp_path: Path, capsys) -> None:
    assert cli.main(["pack", str(kaggle_sample), "--to", "ctf", "--out", str(tmp_path / "c"), "--sparse-labels"]) == 0
    assert "packed 200 images (train: 200)" in capsys.readouterr().out
    assert (tmp_path / "c" / "train.ctf").read_text().startswith("|labels 6:1 |features ")
    assert cli.main(["pack", str(kaggle_sample), "--to", "ctf", "--out", str(tmp_path / "c")]) == 1
    assert "already exists" in capsys.readouterr().err
    labels = tmp_path / "labels.csv"
    labels.write_text("file,label\n1.png,frog\n2.png,unicorn\n")
    args = ["pack", str(kaggle_sample), "--labels-file", str(labels), "--classes", ",".join(CIFAR_CLASSES)]
    assert cli.main([*args, "--to", "packed", "--out", str(tmp_path / "p")]) == 1
    assert "labels.csv:3: label 'unicorn' is not one of the classes" in capsys.readouterr().err
    assert cli.main([*args, "--to", "packed", "--out", str(tmp_path / "p"), "--skip-bad"]) == 0
    out = capsys.readouterr().out
    assert "packed 1 images" in out and "skipped 1 item(s)" in out and "labels.csv:3" in out


def test_map_reencodes_converted_images_and_copies_untouched_pngs(kaggle_sample: Path, tmp_path: Path) -> None:
    pack(kaggle_sample, "map", tmp_path / "copied")
    first = sorted((tmp_path / "copied" / "train" / "frog").iterdir())[0]
    assert first.read_bytes() == (kaggle_sample / "train" / first.name).read_bytes()  # the file itself
    pack(kaggle_sample, "map", tmp_path / "gray", channels=1, size=(16, 16))
    pack(kaggle_sample, "packed", tmp_path / "gray-packed", channels=1, size=(16, 16))
    gray = open_collection(tmp_path / "gray")["train"]
    want = PackedDataset(tmp_path / "gray-packed").images("train")
    assert Image.open(gray.paths[0]).mode == "L" and Image.open(gray.paths[0]).size == (16, 16)
    np.testing.assert_array_equal(np.stack([gray.load(i, channels=1) for i in range(len(gray))]), want)
    assert read_mean_file(tmp_path / "gray" / "train_mean.xml").shape == (16, 16, 1)


_RANK = """
import sys, time
import amlvision.pack as p
original = p.pack
def counted(*args, **kwargs):
    print("packing", flush=True)
    time.sleep(1.0)  # long enough for the other process to arrive while this one packs
    return original(*args, **kwargs)
p.pack = counted
print(p.ensure_packed(sys.argv[1], cache_dir=sys.argv[2]), flush=True)
"""


def test_concurrent_ensure_packed_packs_once(kaggle_sample: Path, tmp_path: Path) -> None:
    ranks = [
        subprocess.Popen(
            [sys.executable, "-c", _RANK, str(kaggle_sample), str(tmp_path / "cache")],
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [rank.communicate(timeout=120)[0].split() for rank in ranks]
    assert all(rank.returncode == 0 for rank in ranks)
    assert sum(out.count("packing") for out in outputs) == 1
    assert outputs[0][-1] == outputs[1][-1] and is_packed(outputs[0][-1])
    assert not [p for p in (tmp_path / "cache").iterdir() if ".partial-" in p.name]
