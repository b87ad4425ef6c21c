"""train.py on the new ``--data`` forms: an archive reused without reading it, labels from file names,
and a label file that needs the ``pack`` options (``--delimiter whitespace --label-column 1 --file-column 0``).

Small real data (CIFAR-10 PNGs from the shared subset), the ``fast`` model, one epoch: each run is seconds.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

from tests.training.helpers import REPO, TRAIN_PY, run_train, subprocess_env

TINY = ("--model", "fast", "--epochs", "1", "--batch-size", "64", "--threads", "2", "--progress", "log")

# Runs train.py with an audit hook that records every open() of the archive (tarfile, hashing, anything).
COUNTING_RUN = """
import os, runpy, sys
target = os.path.realpath(sys.argv[1])
opens = []
def hook(event, args):
    if event == "open" and isinstance(args[0], (str, bytes, os.PathLike)):
        if os.path.realpath(os.fsdecode(args[0])) == target:
            opens.append(args[1])
sys.addaudithook(hook)
sys.argv = [sys.argv[2], *sys.argv[3:]]
try:
    runpy.run_path(sys.argv[0], run_name="__main__")
finally:
    print("ARCHIVE_OPENS", len(opens), flush=True)
"""


def _train_counting_archive_opens(archive: Path, outputs: Path, cache: Path) -> tuple[int, str]:
    args = ["--data", str(archive), "--outputs", str(outputs), *TINY]
    done = subprocess.run(
        [sys.executable, "-c", COUNTING_RUN, str(archive), str(TRAIN_PY), *args],
        cwd=REPO,
        env=subprocess_env(AMLVISION_CACHE=str(cache)),
        capture_output=True,
        text=True,
        timeout=600,
    )
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    opens = [line for line in done.stdout.splitlines() if line.startswith("ARCHIVE_OPENS")]
    return int(opens[-1].split()[1]), out


def test_second_run_on_an_archive_finds_its_cache_without_reading_the_archive(small_cifar: Path, tmp_path: Path):
    archive = tmp_path / "cifar-small.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(small_cifar, arcname="cifar-small")
    cache = tmp_path / "cache"
    first, _ = _train_counting_archive_opens(archive, tmp_path / "run1", cache)
    assert first >= 2  # hashed once for its fingerprint, extracted once: the hook does see reads
    second, log = _train_counting_archive_opens(archive, tmp_path / "run2", cache)
    assert second == 0, log
    assert len(list((cache / "packed").glob("cifar-small.tar.gz-*"))) == 1  # the same cached pack both times
    assert (tmp_path / "run2" / "model.onnx").is_file()


def test_trains_on_a_flat_folder_with_classes_in_file_names(small_cifar: Path, tmp_path: Path):
    flat = tmp_path / "defects"
    flat.mkdir()
    for class_dir in sorted((small_cifar / "train").iterdir()):
        for i, image in enumerate(sorted(class_dir.glob("*.png")), start=1):
            shutil.copy2(image, flat / f"{class_dir.name}_{i}.png")
    outputs = tmp_path / "out"
    done = run_train(["--data", str(flat), "--outputs", str(outputs), *TINY], AMLVISION_CACHE=str(tmp_path / "c"))
    assert done.returncode == 0, done.stdout + done.stderr
    classes = sorted(p.name for p in (small_cifar / "train").iterdir())
    assert json.loads((outputs / "labels.json").read_text()) == classes
    assert "validation (stratified from train)" in (outputs / "split.json").read_text()


def test_trains_on_a_whitespace_label_file_with_the_pack_options(small_cifar: Path, tmp_path: Path):
    lines = []
    for split in ("train", "test"):
        for class_dir in sorted((small_cifar / split).iterdir()):
            lines += [f"{image}   {class_dir.name}" for image in sorted(class_dir.glob("*.png"))]
    labels = tmp_path / "labels.txt"
    labels.write_text("\n".join(lines) + "\n")
    outputs = tmp_path / "out"
    args = ["--data", str(labels), "--delimiter", "whitespace", "--label-column", "1", "--file-column", "0"]
    done = run_train([*args, "--outputs", str(outputs), *TINY], AMLVISION_CACHE=str(tmp_path / "c"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert len(json.loads((outputs / "labels.json").read_text())) == 10
    config = (outputs / "config.yaml").read_text()
    assert "delimiter: whitespace" in config and "label_column: 1" in config
