"""--class-weights / --sampler / --select-metric options: resolution, files, validation; plot labels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.utils.class_weight import compute_class_weight

from amlvision.training.balance import class_counts, resolve_class_weights
from amlvision.training.config import parse_config
from amlvision.training.display import plot_labels, short_label
from amlvision.training.selection import best_epoch

NAMES = ["crack", "finger", "ok"]


def test_balanced_weights_are_scikit_learns() -> None:
    labels = np.array([0] * 5 + [1] * 20 + [2] * 75)
    counts = class_counts(labels, 3)
    expected = compute_class_weight("balanced", classes=np.arange(3), y=labels)
    assert resolve_class_weights("balanced", counts, NAMES) == pytest.approx(expected, rel=1e-5)
    assert resolve_class_weights("none", counts, NAMES) is None
    # a class absent from training gets weight 0 instead of a division by zero
    assert resolve_class_weights("balanced", np.array([10, 0, 30]), NAMES)[1] == 0


def test_weights_file_as_mapping_or_list(tmp_path: Path) -> None:
    mapping = tmp_path / "weights.yaml"
    mapping.write_text("ok: 1\ncrack: 8\nfinger: 2.5\n")
    assert resolve_class_weights(str(mapping), np.array([1, 1, 1]), NAMES) == [8.0, 2.5, 1.0]
    listed = tmp_path / "weights.json"
    listed.write_text("[4, 2, 1]")
    assert resolve_class_weights(str(listed), np.array([1, 1, 1]), NAMES) == [4.0, 2.0, 1.0]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("crack: 2\nfinger: 1\n", r"no weight for classes \['ok'\]"),
        ("crack: 2\nfinger: 1\nok: 1\ndust: 3\n", r"unknown classes \['dust'\]"),
        ("crack: heavy\nfinger: 1\nok: 1\n", "class 'crack': weight 'heavy' is not a number"),
        ("crack: -1\nfinger: 1\nok: 1\n", "class 'crack': weight must be finite and >= 0"),
        ("[1, 2]", "2 weights for 3 classes"),
        ("just text", "expected a mapping class: weight or a list"),
        ("crack: [1\n", "invalid YAML/JSON"),
    ],
)
def test_bad_weights_file_is_named(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "w.yaml"
    path.write_text(text)
    with pytest.raises(ValueError, match=message) as info:
        resolve_class_weights(str(path), np.array([1, 1, 1]), NAMES)
    assert str(path) in str(info.value)


def test_options_go_through_recipe_yaml_flags(tmp_path: Path) -> None:
    cfg = parse_config([])
    assert (cfg.class_weights, cfg.sampler, cfg.select_metric) == ("none", "uniform", "last")
    file = tmp_path / "train.yaml"
    file.write_text("sampler: balanced\nselect-metric: balanced_accuracy\nclass_weights: balanced\n")
    cfg = parse_config(["--config", str(file), "--select-metric", "macro_f1"])
    assert (cfg.class_weights, cfg.sampler, cfg.select_metric) == ("balanced", "balanced", "macro_f1")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--class-weights", "nowhere.yaml"], "class_weights must be one of"),
        (["--config", "{yaml}"], "sampler must be one of"),
    ],
)
def test_bad_options_are_refused(tmp_path: Path, argv: list[str], message: str) -> None:
    file = tmp_path / "bad.yaml"
    file.write_text("sampler: oversample\n")
    with pytest.raises(ValueError, match=message):
        parse_config([a.replace("{yaml}", str(file)) for a in argv])
    with pytest.raises(SystemExit):
        parse_config(["--select-metric", "auc"])


def test_best_epoch_by_metric() -> None:
    history = [
        {"epoch": 1, "val_accuracy": 0.5, "val_macro_f1": 0.30, "val_loss": 1.2},
        {"epoch": 2, "val_accuracy": 0.6, "val_macro_f1": 0.45, "val_loss": 1.0},
        {"epoch": 3, "val_accuracy": 0.6, "val_macro_f1": 0.45, "val_loss": 1.1},
        {"epoch": 4, "val_accuracy": 0.7, "val_macro_f1": 0.40, "val_loss": 0.9},
    ]
    assert best_epoch(history, "macro_f1") == 2  # the earliest of a tie
    assert best_epoch(history, "accuracy") == 4
    assert best_epoch(history, "loss") == 4
    assert best_epoch(history, "last") == 4


def test_long_numeric_labels_are_shortened_for_plots_only() -> None:
    assert short_label("0.3333333333333333") == "0.3333…"
    assert short_label("0.6666666666666666") == "0.6667…"
    assert short_label("1.0") == "1.0" and short_label("0") == "0" and short_label("crack") == "crack"
    assert short_label("a-very-long-defect-class-name") == "a-very-long-d…"
    assert plot_labels(["0.0", "0.3333333333333333", "1.0"]) == ["0.0", "0.3333…", "1.0"]
    # shortening must not merge two classes: then the names stay as written
    assert plot_labels(["0.333333331", "0.333333332"]) == ["0.333333331", "0.333333332"]
