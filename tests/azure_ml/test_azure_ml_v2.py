"""azure-ai-ml (v2): the command job YAML, its equivalence to the v1 cluster runconfig, and rejection of bad jobs."""

from __future__ import annotations

from pathlib import Path

import pytest
from azure.ai.ml import load_job

from amlvision.azure import v1, v2
from amlvision.azure.errors import AzureConfigError

from ._files import REPO, edit


def test_job_yaml_loads_with_the_sdk_loader() -> None:
    job = load_job(source=str(REPO / "aml_config" / "train-job.yml"))
    assert job.type == "command"
    assert job.compute == "cpu-cluster"  # the loader strips the azureml: prefix
    assert job.resources.instance_count == 2
    assert job.distribution.type == "pytorch" and job.distribution.process_count_per_instance == 2


def test_yaml_job_equals_the_v1_cluster_runconfig() -> None:
    from_yaml = v2.job_payload(v2.load_command_job(REPO / v2.JOB_FILE), REPO)
    from_v1 = v2.job_payload(v2.command_job_from_runconfig(v1.load_run_configuration(REPO, "cpu-cluster"), REPO), REPO)
    for key in ("command", "compute", "distribution", "resources", "environment", "code"):
        assert from_yaml[key] == from_v1[key], key
    assert from_yaml["code"] == str(REPO)


def test_payload_and_overrides() -> None:
    job = v2.apply_overrides(
        v2.load_command_job(REPO / v2.JOB_FILE),
        ["--epochs", "5", "--data", "my data"],
        compute="gpu-cluster",
        instance_count=1,
        process_count_per_instance=4,
    )
    doc = v2.job_payload(job, REPO)
    assert doc["command"].endswith("--epochs 5 --data 'my data'")
    assert doc["compute"] == "azureml:gpu-cluster"
    assert doc["resources"]["instance_count"] == 1 and doc["distribution"]["process_count_per_instance"] == 4
    assert doc["environment"]["image"] == v1.AZUREML_BASE_IMAGE


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("type: pytorch", "type: pytorchh", "Value 'pytorchh' passed is not in set"),
        ("compute: azureml:cpu-cluster", "computer: azureml:cpu-cluster", "computer.*Unknown field"),
        ("instance_count: 2", "instance_count: two", "Not a valid integer"),
        ("instance_count: 2", "instance_count: 0", "instance_count 0 must be at least 1"),
        ("process_count_per_instance: 2", "process_count_per_instance: 0", "process_count_per_instance 0"),
        ("python train.py", "python tran.py", "does not run train.py"),
        ("conda_file: ../conda_dependencies.yml", "conda_file: ../missing.yml", "missing.yml"),
        ("code: ..", "code: ../nowhere", "nowhere"),
    ],
)
def test_invalid_jobs_are_rejected(project: Path, old: str, new: str, message: str) -> None:
    path = project / "aml_config" / "train-job.yml"
    edit(path, old, new)
    with pytest.raises(AzureConfigError, match=message):
        v2.job_payload(v2.load_command_job(path), project)


def test_a_different_conda_file_is_rejected(project: Path) -> None:
    (project / "aml_config" / "other.yml").write_text("name: x\ndependencies:\n  - python=3.10\n")
    path = project / "aml_config" / "train-job.yml"
    edit(path, "conda_file: ../conda_dependencies.yml", "conda_file: other.yml")
    with pytest.raises(AzureConfigError, match="conda_file must be conda_dependencies.yml"):
        v2.job_payload(v2.load_command_job(path), project)


def test_dockerfile_environment(project: Path) -> None:
    (project / "docker").mkdir()
    (project / "docker" / "train.Dockerfile").write_text((REPO / "docker" / "train.Dockerfile").read_text())
    job = v2.use_dockerfile_environment(v2.load_command_job(project / v2.JOB_FILE), project)
    doc = v2.job_payload(job, project)
    assert doc["environment"]["build"] == {"dockerfile_path": "docker/train.Dockerfile", "path": str(project)}
    (project / "docker" / "train.Dockerfile").write_text("FROM python:3.11-slim\nRUN pip install torch\n")
    with pytest.raises(AzureConfigError, match="does not install conda_dependencies.yml"):
        v2.job_payload(v2.use_dockerfile_environment(v2.load_command_job(project / v2.JOB_FILE), project), project)
    (project / "docker" / "train.Dockerfile").unlink()
    with pytest.raises(AzureConfigError, match="train.Dockerfile does not exist"):
        v2.job_payload(v2.use_dockerfile_environment(v2.load_command_job(project / v2.JOB_FILE), project), project)
