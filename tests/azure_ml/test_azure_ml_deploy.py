"""amlvision deploy: v1 (Model.register, InferenceConfig, Local/Aci/AksWebservice) and v2 (managed online)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from azure.ai.ml import load_online_deployment, load_online_endpoint
from azureml.core.model import InferenceConfig, Model
from azureml.core.webservice.aci import AciServiceDeploymentConfiguration
from azureml.core.webservice.aks import AksServiceDeploymentConfiguration

from amlvision.azure import deployment
from amlvision.azure.errors import AzureConfigError
from amlvision.cli import main
from amlvision.testing.datasets import CACHE
from amlvision.testing.tiny_model import cached_tiny_model

from ._files import REPO, edit


@pytest.fixture(scope="module")
def model_dir(cifar_subset: Path) -> Path:
    """A real model directory (train.py's exporter) of a tiny CNN trained on the CIFAR subset."""
    return cached_tiny_model(cifar_subset / "train", CACHE)


def test_model_registration_arguments(model_dir: Path) -> None:
    kwargs = deployment.model_registration(model_dir)
    assert kwargs["model_path"] == str(model_dir) and kwargs["model_name"] == "amlvision-cifar10"
    assert kwargs["model_framework"] == Model.Framework.ONNX
    labels = json.loads((model_dir / "labels.json").read_text())
    assert kwargs["properties"]["labels"].split(",") == labels
    assert int(kwargs["tags"]["opset"]) >= 13


@pytest.mark.parametrize("target", ["local", "aci", "aks"])
def test_v1_plans(model_dir: Path, target: str) -> None:
    plan = deployment.plan(REPO, model_dir, target)
    assert isinstance(plan.objects["inference_config"], InferenceConfig)
    assert plan.objects["inference_config"].entry_script == "score.py"
    config = plan.objects["deploy_configuration"]
    if target == "aci":
        assert isinstance(config, AciServiceDeploymentConfiguration) and config.auth_enabled is True
    elif target == "aks":
        assert isinstance(config, AksServiceDeploymentConfiguration) and config.auth_enabled is True
        assert config.autoscale_enabled and config.compute_target_name == "aks-cluster"
    json.dumps(plan.payload, default=str)  # printable as the dry run shows it


def test_sdk_rejects_bad_deploy_configurations() -> None:
    with pytest.raises(AzureConfigError, match="cpu_cores must be positive"):
        deployment.deploy_configuration("aci", cpu_cores=-1)
    with pytest.raises(AzureConfigError, match="memory_gb must be greater than zero"):
        deployment.deploy_configuration("aks", memory_gb=0)


def test_incomplete_model_dir_and_bad_names_are_rejected(model_dir: Path, tmp_path: Path) -> None:
    partial = tmp_path / "model"
    shutil.copytree(model_dir, partial)
    (partial / "labels.json").unlink()
    with pytest.raises(AzureConfigError, match="labels.json is missing"):
        deployment.plan(REPO, partial, "aci")
    with pytest.raises(AzureConfigError, match="service name 'x'"):
        deployment.plan(REPO, model_dir, "aci", service_name="x")
    with pytest.raises(AzureConfigError, match="model name"):
        deployment.model_registration(model_dir, name="bad name!")


def test_missing_entry_script_is_rejected_by_inference_config(project: Path, model_dir: Path) -> None:
    (project / "score.py").unlink()
    with pytest.raises(AzureConfigError, match="score.py"):
        deployment.plan(project, model_dir, "aci")


def test_managed_endpoint_and_deployment(model_dir: Path) -> None:
    assert load_online_endpoint(source=str(REPO / deployment.ENDPOINT_FILE)).auth_mode == "key"
    assert load_online_deployment(source=str(REPO / deployment.DEPLOYMENT_FILE)).instance_count == 1
    plan = deployment.plan(REPO, model_dir, "managed")
    assert plan.payload["ManagedOnlineEndpoint"]["auth_mode"] == "key"
    online = plan.payload["ManagedOnlineDeployment"]
    assert online["endpoint_name"] == "amlvision-cifar10"
    assert online["model"]["path"] == str(model_dir.resolve())
    assert online["code_configuration"] == {"code": str(REPO), "scoring_script": "score.py"}


@pytest.mark.parametrize(
    ("file", "old", "new", "message"),
    [
        ("endpoint.yml", "auth_mode: key", "auth_mode: password", "not in set"),
        ("endpoint.yml", "auth_mode: key", "auth_mode: aml_token", "deploys with key auth"),
        ("deployment.yml", "instance_count: 1", "instance_count: 0", "instance_count 0"),
        ("deployment.yml", "endpoint_name: amlvision-cifar10", "endpoint_name: other-endpoint", "is not the endpoint"),
        ("deployment.yml", "scoring_script: score.py", "scoring_script: scor.py", "scor.py not found"),
        ("deployment.yml", "instance_type: Standard_DS2_v2", "instance_typ: Standard_DS2_v2", "Unknown field"),
    ],
)
def test_invalid_managed_specs_are_rejected(
    project: Path, model_dir: Path, file: str, old: str, new: str, message: str
) -> None:
    edit(project / "aml_config" / file, old, new)
    with pytest.raises(AzureConfigError, match=message):
        deployment.plan(project, model_dir, "managed")


def test_deploy_command_dry_run(model_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["deploy", "--target", "aks", "--model-dir", str(model_dir), "--project", str(REPO), "--dry-run"]) == 0
    out = capsys.readouterr().out
    payload = json.loads(out[out.index("{") :])
    assert payload["AksServiceDeploymentConfiguration"]["auth_enabled"] is True
    assert main(["deploy", "--target", "aci", "--model-dir", "/nonexistent", "--project", str(REPO), "--dry-run"]) == 2
    assert "model directory /nonexistent does not exist" in capsys.readouterr().err
