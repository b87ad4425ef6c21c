"""azureml-core (v1): the run configurations in aml_config/ and the ScriptRunConfig submit would send."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from azureml.core import ScriptRunConfig
from azureml.core.runconfig import RunConfiguration

from amlvision.azure import v1
from amlvision.azure.errors import AzureConfigError
from amlvision.formats.conda import pip_requirements

from ._files import REPO, edit


@pytest.mark.parametrize("name", ["local", "docker", "cpu-cluster", "gpu-cluster"])
def test_every_shipped_runconfig_loads_with_azureml_core(name: str) -> None:
    rc = RunConfiguration.load(path=str(REPO), name=name)  # the SDK's own loader, as `az ml` and users call it
    assert rc.script == "train.py"
    checked = v1.load_run_configuration(REPO, name)
    assert checked.target == rc.target


def test_runconfig_contents() -> None:
    local = v1.load_run_configuration(REPO, "local")
    assert local.target == "local" and local.environment.python.user_managed_dependencies
    docker = v1.load_run_configuration(REPO, "docker")
    # docker.compute (the compute file of target "docker") is applied by azureml-core's reader.
    assert docker.environment.docker.enabled and docker.environment.docker.base_image == "amlvision/train"
    cluster = v1.load_run_configuration(REPO, "cpu-cluster")
    assert (cluster.framework, cluster.node_count) == ("PyTorch", 2)
    assert (cluster.pytorch.process_count, cluster.pytorch.node_count) == (4, 2)
    assert cluster.pytorch.communication_backend.lower() == "gloo"
    gpu = v1.load_run_configuration(REPO, "gpu-cluster")
    assert gpu.pytorch.communication_backend.lower() == "nccl"
    for rc in (local, docker, cluster, gpu):
        assert rc.environment.python.conda_dependencies_file == "conda_dependencies.yml"


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("nodeCount: 2\nmax", "nodecount: 2\nmax", "unknown key 'nodecount'"),
        ("communicationBackend: Gloo", "communicationBackend: Gl00", "communicationBackend 'Gl00'"),
        ("processCount: 4", "processCount: 3", "processCount 3 must be a positive multiple of nodeCount 2"),
        ("script: train.py", "script: trian.py", "script 'trian.py' is not a file"),
        ("condaDependenciesFile: conda_dependencies.yml", "condaDependenciesFile: other.yml", "must be .conda_dep"),
        ("framework: PyTorch", "framework: Pytorch", "framework 'Pytorch'"),
        ("nodeCount: 2\nmax", "nodeCount: two\nmax", "cannot load it"),
    ],
)
def test_invalid_cluster_runconfigs_are_rejected(project: Path, old: str, new: str, message: str) -> None:
    (project / "other.yml").write_text((project / "conda_dependencies.yml").read_text())
    edit(project / "aml_config" / "cpu-cluster.runconfig", old, new)
    with pytest.raises(AzureConfigError, match=message) as err:
        v1.load_run_configuration(project, "cpu-cluster")
    assert "cpu-cluster.runconfig" in str(err.value)


def test_multi_node_on_the_local_target_is_rejected(project: Path) -> None:
    edit(
        project / "aml_config" / "local.runconfig",
        "framework: Python\ncommunicator: None\nnodeCount: 1",
        "framework: PyTorch\ncommunicator: None\nnodeCount: 2\npytorch:\n  nodeCount: 2\n  processCount: 2",
    )
    with pytest.raises(AzureConfigError, match="runs on this machine only"):
        v1.load_run_configuration(project, "local")


def test_missing_conda_file_is_named(project: Path) -> None:
    edit(
        project / "aml_config" / "cpu-cluster.runconfig",
        "condaDependenciesFile: conda_dependencies.yml",
        "condaDependenciesFile: gone.yml",
    )
    with pytest.raises(AzureConfigError, match="cannot load it.*gone.yml"):
        v1.load_run_configuration(project, "cpu-cluster")


def test_missing_runconfig_lists_the_available_ones(project: Path) -> None:
    with pytest.raises(AzureConfigError, match=r"available: \['cpu-cluster', 'docker', 'gpu-cluster', 'local'\]"):
        v1.load_run_configuration(project, "nope")


def test_script_run_config_payload(project: Path) -> None:
    src = v1.build_script_run_config(project, "cpu-cluster", ["--epochs", "3"])
    assert isinstance(src, ScriptRunConfig)
    payload = v1.submission_payload(src)
    config = payload["Configuration"]
    assert config["script"] == "train.py"
    assert config["arguments"] == ["--data", "cifar10", "--model", "fast", "--epochs", "3"]
    assert config["target"] == "cpu-cluster" and config["framework"] == "PyTorch" and config["nodeCount"] == 2
    assert config["pytorch"] == {"communicationBackend": "gloo", "processCount": 4, "nodeCount": 2}
    env = config["environment"]
    assert env["docker"]["baseImage"] == v1.AZUREML_BASE_IMAGE
    conda = env["python"]["condaDependencies"]
    pip = next(d["pip"] for d in conda["dependencies"] if isinstance(d, dict))
    assert sorted(pip) == sorted(pip_requirements(project / "conda_dependencies.yml"))
    assert "python=3.11" in conda["dependencies"]
    assert payload["Snapshot"]["files"] >= 3 and payload["Snapshot"]["bytes"] < 300 * 2**20


def test_distribution_override(project: Path) -> None:
    src = v1.build_script_run_config(project, "cpu-cluster", node_count=3, process_count=6)
    config = v1.submission_payload(src)["Configuration"]
    assert config["nodeCount"] == 3 and config["pytorch"]["processCount"] == 6


def test_oversized_snapshot_is_rejected_before_upload(project: Path) -> None:
    (project / "big.bin").write_bytes(b"\0" * (301 * 2**20))
    src = v1.build_script_run_config(project, "cpu-cluster")
    with pytest.raises(AzureConfigError, match="over Azure ML's 300 MB limit.*big.bin"):
        v1.submission_payload(src)
    # the ignore file is honoured, as Azure ML's snapshot honours it
    (project / ".amlignore").write_text("big.bin\n")
    assert v1.submission_payload(src)["Snapshot"]["bytes"] < 2**20


def test_conda_file_is_the_one_dependency_list() -> None:
    spec = yaml.safe_load((REPO / "conda_dependencies.yml").read_text())
    assert "python=3.11" in spec["dependencies"]
    assert "torch==2.14.1" in pip_requirements(REPO / "conda_dependencies.yml")
