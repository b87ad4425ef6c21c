"""``amlvision inspect``: counts, sizes, modes, unreadable files and duplicates of real data."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
from PIL import Image

from amlvision import cli
from amlvision.data.summary import summarize
from amlvision.pack import pack


def _messy_tree(cifar_subset: Path, root: Path) -> dict[str, Path]:
    for name in ("bird", "ship"):
        shutil.copytree(cifar_subset / "test" / name, root / name)
    birds = sorted((root / "bird").iterdir())
    ships = sorted((root / "ship").iterdir())
    birds[0].write_bytes(birds[1].read_bytes()[:200])  # truncated
    birds[2].write_bytes(b"GIF89a nonsense")  # corrupt
    shutil.copy(ships[0], root / "bird" / "copy_of_ship.png")  # duplicate content, other class
    Image.open(ships[1]).convert("L").save(ships[1])
    rgba = np.dstack([np.asarray(Image.open(ships[2]).convert("RGB")), np.full((32, 32), 200, np.uint8)])
    Image.fromarray(rgba, "RGBA").save(ships[2])
    Image.open(ships[3]).resize((64, 48)).save(ships[3])
    (root / "ship" / "readme.md").write_text("notes")
    return {"truncated": birds[0], "corrupt": birds[2], "dup_a": ships[0], "dup_b": root / "bird" / "copy_of_ship.png"}


def test_source_summary_finds_every_problem(cifar_subset: Path, tmp_path: Path) -> None:
    files = _messy_tree(cifar_subset, tmp_path / "tree")
    summary = summarize(tmp_path / "tree", workers=2)
    info = summary["splits"]["all"]
    assert summary["class_names"] == ["bird", "ship"]
    assert info["per_class"] == {"bird": 51, "ship": 50}
    assert info["sizes"] == {"32x32": 98, "64x48": 1}
    assert info["modes"] == {"RGB": 97, "L": 1, "RGBA": 1}
    assert sorted(msg.split(":")[0] for msg in info["unreadable"]) == sorted(
        [str(files["truncated"]), str(files["corrupt"])]
    )
    assert [sorted(group) for group in info["duplicates"]] == [sorted([str(files["dup_a"]), str(files["dup_b"])])]
    assert info["skipped"] == [f"{tmp_path / 'tree' / 'ship' / 'readme.md'}: not an image file (by suffix)"]


def test_packed_summary_verifies_checksums_and_finds_cross_split_duplicates(cifar_subset: Path, tmp_path: Path) -> None:
    src = tmp_path / "src"
    for split in ("train", "test"):
        shutil.copytree(cifar_subset / split / "frog", src / split / "frog")
        shutil.copytree(cifar_subset / split / "horse", src / split / "horse")
    leaked = sorted((src / "test" / "horse").iterdir())[0]
    shutil.copy(leaked, src / "train" / "horse" / "leaked.png")
    out = pack(src, "packed", tmp_path / "p").out
    summary = summarize(out)
    assert summary["checksums"] == "ok" and summary["image_shape"] == [32, 32, 3]
    assert summary["splits"]["train"]["per_class"] == {"frog": 150, "horse": 151}
    assert len(summary["duplicates_across_splits"]) == 1
    assert sorted(n.split("[")[0] for n in summary["duplicates_across_splits"][0]) == ["test", "train"]
    data = bytearray((out / "test.images.u8").read_bytes())
    data[0] ^= 1
    (out / "test.images.u8").write_bytes(bytes(data))
    assert summarize(out)["checksums"].startswith("MISMATCH")


def test_cli_inspect_text_and_json(kaggle_sample: Path, capsys) -> None:
    assert cli.main(["inspect", str(kaggle_sample)]) == 0
    text = capsys.readouterr().out
    assert "[train] 200 images" in text and "sizes (WxH): 32x32: 200" in text and "unreadable files: 0" in text
    assert cli.main(["inspect", str(kaggle_sample), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert sum(data["splits"]["train"]["per_class"].values()) == 200
    assert cli.main(["inspect", str(kaggle_sample / "nowhere")]) == 1
    assert "no such file or folder" in capsys.readouterr().err
