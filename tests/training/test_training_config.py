"""Configuration: model recipe < YAML file < flags; bad options are named."""

from __future__ import annotations

from pathlib import Path

import pytest

from amlvision.training.config import parse_config
from amlvision.training.recipes import CONVNET
from amlvision.training.schedule import lr_at, momentum_at


def test_recipe_then_yaml_then_flags(tmp_path: Path) -> None:
    config = tmp_path / "train.yaml"
    config.write_text("model: convnet\nepochs: 30\nbatch-size: 32\nlr_steps: [0.5]\nlr_factors: [0.1]\n")
    cfg = parse_config(["--config", str(config), "--batch-size", "16", "--flip", "false"])
    assert cfg.model == "convnet"
    assert cfg.epochs == 30  # YAML over the recipe's 80
    assert cfg.batch_size == 16  # flag over YAML
    assert cfg.flip is False
    assert cfg.weight_decay == CONVNET["weight_decay"] and cfg.unit_gain  # the recipe where nobody overrode it


def test_cntk_convnet_schedule_scales_with_epochs() -> None:
    cfg = parse_config(["--model", "convnet"])
    assert cfg.epochs == 80 and cfg.batch_size == 64
    per_sample = [lr_at(cfg, epoch / 80) / 64 for epoch in (0, 19, 20, 40, 60, 70, 79)]
    assert per_sample == pytest.approx(
        [0.0015625, 0.0015625, 0.00046875, 0.00015625, 0.000046875, 0.000015625, 0.000015625]
    )
    assert [momentum_at(cfg, e / 80) for e in (0, 20, 40)] == [0.0, 0.899, 0.948]


@pytest.mark.parametrize(
    ("text", "message"),
    [("epochz: 3\n", "unknown option 'epochz'"), ("- 1\n- 2\n", "expected a mapping"), ("a: [\n", "invalid YAML")],
)
def test_bad_yaml_is_named(tmp_path: Path, text: str, message: str) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text(text)
    with pytest.raises(ValueError, match=message) as info:
        parse_config(["--config", str(config)])
    assert str(config) in str(info.value)


def test_inconsistent_options_are_refused() -> None:
    with pytest.raises(ValueError, match="lr_steps and lr_factors"):
        parse_config(["--lr-steps", "0.5", "--lr-factors"])


def test_missing_data_and_missing_checkpoint_are_clear_errors(cifar_packed: Path, tmp_path: Path, caplog) -> None:
    from amlvision.training.loop import main

    assert main(["--data", str(tmp_path / "nowhere"), "--outputs", str(tmp_path / "a")]) == 2
    assert "nowhere: no such file or folder" in caplog.text
    outputs = tmp_path / "b"
    assert main(["--data", str(cifar_packed), "--model", "resnet20", "--outputs", str(outputs), "--resume"]) == 2
    assert f"--resume: no checkpoint at {outputs / 'checkpoint.pt'}" in caplog.text
