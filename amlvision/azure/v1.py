"""azureml-core (SDK v1): run configurations in ``aml_config/`` and the ScriptRunConfig ``submit`` sends.

``RunConfiguration.load`` only checks value types and silently drops unknown keys, so a typo such
as ``nodecount`` or a ``communicationBackend: nccll`` would reach Azure and fail there (or, worse,
run single-node). :func:`load_run_configuration` therefore also reports unknown keys and checks the
rules Azure ML applies at submission (script inside the source folder, framework and backend names,
node and process counts, the conda file every target shares).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import yaml
from azureml._base_sdk_common.common import to_camel_case, to_snake_case
from azureml.core import Environment, ScriptRunConfig
from azureml.core._serialization_utils import _serialize_to_dict
from azureml.core.runconfig import PyTorchConfiguration, RunConfiguration, _AbstractRunConfigElement
from azureml.core.script_run_config import get_run_config_from_script_run
from azureml.exceptions import UserErrorException

from amlvision.azure.errors import AzureConfigError, raise_if_problems
from amlvision.azure.snapshot import measure_snapshot
from amlvision.formats.conda import pip_requirements

CONFIG_DIR = "aml_config"
CONDA_FILE = "conda_dependencies.yml"
ENVIRONMENT_NAME = "amlvision-train"
# Azure ML's curated CPU base image for conda environments (the SDK's own default, pinned by name).
AZUREML_BASE_IMAGE = "mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04:latest"
FRAMEWORKS = ("Python", "PyTorch")
BACKENDS = ("nccl", "gloo")
LOCAL_TARGETS = ("local", "docker")


class _DropFieldDeprecations(logging.Filter):
    """azureml-core warns on every read of ``docker.enabled``/``sharedVolumes``/``shmSize``, fields a
    RunConfiguration file still uses for the local Docker target; drop only those repeated notes."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not ("is deprecated" in message or "is no longer necessary" in message)


for _name in ("azureml.core.environment", "azureml.core.runconfig"):
    logging.getLogger(_name).addFilter(_DropFieldDeprecations())


def runconfig_path(project: Path, name: str) -> Path:
    return project / CONFIG_DIR / f"{name}.runconfig"


def available_runconfigs(project: Path) -> list[str]:
    return sorted(p.stem for p in (project / CONFIG_DIR).glob("*.runconfig"))


def load_run_configuration(project: Path, name: str) -> RunConfiguration:
    """Load ``aml_config/<name>.runconfig`` (plus ``<target>.compute`` when present) and check it."""
    path = runconfig_path(project, name)
    if not path.is_file():
        raise AzureConfigError(str(path), [f"no such run configuration; available: {available_runconfigs(project)}"])
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise AzureConfigError(str(path), [f"not valid YAML: {err}"]) from err
    if not isinstance(raw, dict) or "environment" not in raw:
        # Without 'environment' azureml-core falls back to the 2018 format and ignores most fields.
        raise AzureConfigError(str(path), ["expected a RunConfiguration mapping with an 'environment' section"])
    problems = [f"unknown key {key!r}" for key in unknown_keys(raw, RunConfiguration)]
    try:
        rc = RunConfiguration.load(path=str(project), name=name)
    except (UserErrorException, ValueError, TypeError, OSError) as err:
        raise AzureConfigError(str(path), problems + [f"azureml-core cannot load it: {err}"]) from err
    compute_file = project / CONFIG_DIR / f"{rc.target}.compute"
    if compute_file.is_file():
        try:  # the SDK's own reader of .compute files (image, shared volumes, GPU, node count)
            RunConfiguration._modify_runconfig_using_compute_config(rc, str(project))
        except (UserErrorException, ValueError) as err:
            problems.append(f"{compute_file.name}: {err}")
    problems += validate_run_configuration(rc, project)
    raise_if_problems(str(path), problems)
    return rc


def unknown_keys(mapping: dict, cls: type, prefix: str = "") -> list[str]:
    """Dotted paths of keys that ``cls`` (a RunConfiguration element) has no field for."""
    found = []
    for key, value in mapping.items():
        info = RunConfiguration._get_field_info_object(cls, to_snake_case(to_camel_case(str(key))))
        if info is None:
            found.append(prefix + str(key))
            continue
        if info.user_keys:
            continue
        child = info.list_element_type if isinstance(value, list) else info.field_type
        if not (isinstance(child, type) and issubclass(child, _AbstractRunConfigElement)):
            continue
        items = value if isinstance(value, list) else [value]
        for item in items:
            if isinstance(item, dict):
                found += unknown_keys(item, child, f"{prefix}{key}.")
    return found


def validate_run_configuration(rc: RunConfiguration, project: Path) -> list[str]:
    """Azure ML's submission rules, checked locally. Returns the problems found (empty when fine)."""
    problems = []
    if not rc.target:
        problems.append("target is empty")
    if not rc.script and not rc.command:
        problems.append("neither script nor command is set")
    if rc.script:
        script = (project / rc.script).resolve()
        if not script.is_file() or project.resolve() not in script.parents:
            problems.append(f"script {rc.script!r} is not a file inside {project}")
    if rc.framework not in FRAMEWORKS:
        problems.append(f"framework {rc.framework!r} is not one of {FRAMEWORKS}")
    if rc.node_count is None or rc.node_count < 1:
        problems.append(f"nodeCount {rc.node_count!r} must be at least 1")
    if rc.framework == "PyTorch":
        problems += _pytorch_problems(rc)
    elif rc.node_count and rc.node_count > 1:
        problems.append("nodeCount > 1 needs framework: PyTorch (one process group across the nodes)")
    if rc.target in LOCAL_TARGETS and rc.node_count and rc.node_count > 1:
        problems.append(f"target {rc.target!r} runs on this machine only; nodeCount must be 1")
    python = rc.environment.python
    if not python.user_managed_dependencies:
        conda_file = python.conda_dependencies_file
        if conda_file is None:  # an inline environment (Environment.from_conda_specification)
            if sorted(python.conda_dependencies.pip_packages) != sorted(pip_requirements(project / CONDA_FILE)):
                problems.append(f"the environment's pip packages differ from {CONDA_FILE}")
        elif (project / conda_file).resolve() != (project / CONDA_FILE).resolve():
            problems.append(
                f"environment.python.condaDependenciesFile must be {CONDA_FILE!r} (the one dependency "
                f"list every target shares), not {conda_file!r}"
            )
    docker = rc.environment.docker
    if docker.enabled and not (docker.base_image or docker.base_dockerfile):
        problems.append("environment.docker is enabled but names no baseImage or baseDockerfile")
    return problems


def _pytorch_problems(rc: RunConfiguration) -> list[str]:
    pt = rc.pytorch
    problems = []
    if str(pt.communication_backend).lower() not in BACKENDS:
        problems.append(f"pytorch.communicationBackend {pt.communication_backend!r} is not Nccl or Gloo")
    nodes = pt.node_count or 1
    processes = pt.process_count if pt.process_count is not None else nodes
    if nodes != rc.node_count:
        problems.append(f"pytorch.nodeCount {nodes} differs from nodeCount {rc.node_count}")
    if processes < 1 or processes % nodes:
        problems.append(f"pytorch.processCount {processes} must be a positive multiple of nodeCount {nodes}")
    return problems


def build_environment(project: Path, name: str = ENVIRONMENT_NAME) -> Environment:
    """The Azure ML environment built from conda_dependencies.yml on Azure ML's CPU/MPI base image."""
    env = Environment.from_conda_specification(name=name, file_path=str(project / CONDA_FILE))
    env.docker.base_image = AZUREML_BASE_IMAGE
    env.python.user_managed_dependencies = False
    return env


def distribution_for(
    rc: RunConfiguration, node_count: int | None = None, process_count: int | None = None
) -> PyTorchConfiguration | None:
    """``PyTorchConfiguration(node_count=N, process_count=M)``: Azure ML starts M processes in all,
    M/N per node, with torchrun's environment variables set, which amlvision.training.distributed reads."""
    if rc.framework != "PyTorch" and not (node_count or process_count):
        return None
    nodes = node_count or rc.pytorch.node_count or 1
    processes = process_count or rc.pytorch.process_count or nodes
    backend = "Gloo" if str(rc.pytorch.communication_backend).lower() == "gloo" else "Nccl"
    return PyTorchConfiguration(communication_backend=backend, process_count=processes, node_count=nodes)


def build_script_run_config(
    project: Path,
    runconfig: str,
    train_args: list[str] | None = None,
    compute_target: str | None = None,
    node_count: int | None = None,
    process_count: int | None = None,
) -> ScriptRunConfig:
    """The ScriptRunConfig ``Experiment.submit`` takes: train.py, its arguments, environment, compute, distribution."""
    rc = load_run_configuration(project, runconfig)
    if compute_target:
        rc.target = compute_target
    distribution = distribution_for(rc, node_count, process_count)
    if distribution is not None:
        rc.node_count = distribution.node_count
    src = ScriptRunConfig(
        source_directory=str(project),
        script=rc.script,
        arguments=list(rc.arguments or []) + list(train_args or []),
        compute_target=rc.target,
        environment=build_environment(project),
        distributed_job_config=distribution,
        max_run_duration_seconds=rc.max_run_duration_seconds or ScriptRunConfig.MAX_DURATION_SECONDS_DEFAULT,
    )
    src.run_config.history = rc.history
    src.run_config.environment.docker.shm_size = rc.environment.docker.shm_size
    return src


def submission_payload(src: ScriptRunConfig) -> dict[str, Any]:
    """Check ``src`` as ``Experiment.submit`` would and return the run definition it would send.

    ``Configuration`` is exactly what azureml-core serialises into the run's definition.json; the
    snapshot entry is what it would upload. Raises :class:`AzureConfigError` on any problem.
    """
    project = Path(src.source_directory)
    run_config = get_run_config_from_script_run(src)
    problems = validate_run_configuration(run_config, project)
    snapshot = measure_snapshot(project)
    problems += snapshot.problems()
    raise_if_problems(f"ScriptRunConfig({project})", problems)
    environment = Environment._serialize_to_dict(src.run_config.environment)
    return {
        "Configuration": _serialize_to_dict(run_config),
        "Environment": environment,
        "Snapshot": {"files": snapshot.files, "bytes": snapshot.bytes, "ignoreFile": snapshot.ignore_file},
    }
