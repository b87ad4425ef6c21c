"""amlvision submit --target azure --dry-run and the workspace config.json, all without a network."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from amlvision.azure.errors import AzureConfigError
from amlvision.azure.workspace import find_config, load_workspace_config
from amlvision.cli import main

from ._files import REPO

GOOD = {
    "subscription_id": "12345678-1234-1234-1234-123456789abc",
    "resource_group": "rg-vision",
    "workspace_name": "ws-vision",
}


def _payload(out: str) -> dict:
    return json.loads(out[out.index("{") :])


def test_dry_run_builds_and_validates_both_sdks(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (project / "config.json").write_text(json.dumps(GOOD))
    code = main(["submit", "--target", "azure", "--project", str(project), "--dry-run", "--", "--epochs", "2"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    payload = _payload(captured.out)
    assert payload["workspace"]["workspace_name"] == "ws-vision" and payload["workspace"]["example"] is False
    v1 = payload["v1"]["Configuration"]
    assert v1["arguments"][-2:] == ["--epochs", "2"] and v1["target"] == "cpu-cluster"
    assert v1["pytorch"]["processCount"] == 4
    v2 = payload["v2"]
    assert v2["command"].endswith("--epochs 2") and v2["distribution"]["type"] == "pytorch"
    assert "nothing was sent" in captured.err


def test_dry_run_without_config_uses_the_example(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["submit", "--target", "azure", "--project", str(project), "--dry-run"]) == 0
    captured = capsys.readouterr()
    assert _payload(captured.out)["workspace"]["example"] is True
    assert "config.example.json" in captured.err


def test_real_submission_needs_a_config(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["submit", "--target", "azure", "--project", str(project)]) == 2
    assert "no workspace config.json found" in capsys.readouterr().err


def test_scale_overrides_reach_both_sdks(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(
            [
                "submit",
                "--target",
                "azure",
                "--project",
                str(project),
                "--dry-run",
                "--compute",
                "big",
                "--node-count",
                "4",
                "--process-count-per-node",
                "2",
            ]
        )
        == 0
    )
    payload = _payload(capsys.readouterr().out)
    assert payload["v1"]["Configuration"]["nodeCount"] == 4
    assert payload["v1"]["Configuration"]["pytorch"]["processCount"] == 8
    assert payload["v1"]["Configuration"]["target"] == "big"
    assert payload["v2"]["resources"]["instance_count"] == 4
    assert payload["v2"]["distribution"]["process_count_per_instance"] == 2


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("subscription_id", "not-a-guid", "subscription_id 'not-a-guid'"),
        ("resource_group", "", "resource_group ''"),
        ("workspace_name", "w", "workspace_name 'w'"),
    ],
)
def test_bad_workspace_configs_are_named(tmp_path: Path, field: str, value: str, message: str) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(dict(GOOD, **{field: value})))
    with pytest.raises(AzureConfigError, match=message):
        load_workspace_config(path)


def test_workspace_config_lookup(tmp_path: Path) -> None:
    with pytest.raises(AzureConfigError, match="no workspace config.json"):
        find_config(tmp_path)
    (tmp_path / ".azureml").mkdir()
    legacy = {"subscription_id": GOOD["subscription_id"], "resource_group": "rg", "workspaceName": "legacy-key"}
    (tmp_path / ".azureml" / "config.json").write_text(json.dumps(legacy))
    assert load_workspace_config(find_config(tmp_path)).workspace_name == "legacy-key"
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(AzureConfigError, match="not valid JSON"):
        load_workspace_config(find_config(tmp_path))
    assert load_workspace_config(REPO / "aml_config" / "config.example.json").workspace_name == "amlvision-ws"
