"""``amlvision inspect`` warns about imbalanced classes in real data and suggests the training options."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from amlvision import cli
from amlvision.data.summary import summarize


def _imbalanced_tree(cifar_subset: Path, root: Path) -> Path:
    """Real CIFAR test images: 50 ships, 5 birds (10:1), in class folders."""
    for name, keep in (("ship", 50), ("bird", 5)):
        (root / name).mkdir(parents=True)
        for image in sorted((cifar_subset / "test" / name).glob("*.png"))[:keep]:
            shutil.copy(image, root / name / image.name)
    return root


def test_inspect_warns_on_imbalance_and_suggests_options(cifar_subset: Path, tmp_path: Path, capsys) -> None:
    tree = _imbalanced_tree(cifar_subset, tmp_path / "tree")
    balance = summarize(tree, workers=1)["splits"]["all"]["imbalance"]
    assert balance == {"ratio": 10.0, "largest": "ship", "smallest": "bird", "empty_classes": [], "warning": True}
    assert cli.main(["inspect", str(tree), "--workers", "1"]) == 0
    text = capsys.readouterr().out
    assert "WARNING: imbalanced classes: 'ship' has 10x the images of 'bird' (threshold 3)" in text
    assert "--class-weights balanced" in text and "--sampler balanced" in text and "--select-metric" in text
    assert cli.main(["inspect", str(tree), "--workers", "1", "--imbalance-threshold", "12", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["imbalance_threshold"] == 12 and summary["splits"]["all"]["imbalance"]["warning"] is False


def test_balanced_data_gets_no_warning(cifar_subset: Path, capsys) -> None:
    assert cli.main(["inspect", str(cifar_subset / "test"), "--workers", "1"]) == 0
    assert "WARNING" not in capsys.readouterr().out
