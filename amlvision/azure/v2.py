"""azure-ai-ml (SDK v2): the command job ``submit`` sends, checked offline.

Three layers of checking, all without a network:
1. the SDK's YAML loaders (``load_job``) apply the marshmallow schema that ``az ml job create`` uses:
   unknown fields, wrong types and bad enum values are rejected there;
2. ``job._validate()``, the SDK's client-side validation ``MLClient.jobs.create_or_update`` runs first
   (it resolves the code and conda file paths, among others);
3. the rules Azure ML enforces on the service side that neither catches (positive node and process
   counts, a compute name, the shared conda file, a command that runs train.py).
The payload is the job's schema dump (``_to_dict``): the same document ``az ml job create`` uploads,
before code and environment are replaced by the ids the upload returns.
"""

from __future__ import annotations

import json
import shlex
import tempfile
from pathlib import Path
from typing import Any

import yaml
from azure.ai.ml import command, load_job
from azure.ai.ml.entities import BuildContext, Command, Environment
from azure.ai.ml.entities._job.distribution import PyTorchDistribution
from azure.ai.ml.exceptions import ValidationException
from azureml.core.runconfig import RunConfiguration
from marshmallow.exceptions import ValidationError as SchemaError
from yaml import YAMLError

from amlvision.azure.errors import AzureConfigError, raise_if_problems
from amlvision.azure.snapshot import measure_snapshot
from amlvision.azure.v1 import AZUREML_BASE_IMAGE, CONDA_FILE

JOB_FILE = Path("aml_config/train-job.yml")
DOCKERFILE = "docker/train.Dockerfile"


def _first_error(err: Exception) -> str:
    text = str(err)
    return text if len(text) < 2000 else text[:2000] + " ..."


def load_command_job(path: Path) -> Command:
    """Load a v2 job YAML with the SDK's loader (schema-checked) and require a command job."""
    try:
        job = load_job(source=str(path))
    except (SchemaError, ValidationException, YAMLError, FileNotFoundError) as err:
        if isinstance(err, FileNotFoundError):
            raise AzureConfigError(str(path), ["file not found"]) from err
        raise AzureConfigError(str(path), [_first_error(err)]) from err
    if not isinstance(job, Command):
        raise AzureConfigError(str(path), [f"expected a command job, got {type(job).__name__}"])
    return job


def apply_overrides(
    job: Command,
    train_args: list[str] | None = None,
    compute: str | None = None,
    instance_count: int | None = None,
    process_count_per_instance: int | None = None,
) -> Command:
    """Extra train.py arguments and compute/scale overrides, as ``submit`` takes them on the command line."""
    if train_args:
        job.command = f"{job.command} {shlex.join(train_args)}"
    if compute:
        job.compute = compute
    if instance_count is not None:
        job.resources.instance_count = instance_count
    if process_count_per_instance is not None:
        if job.distribution is None:
            job.distribution = PyTorchDistribution(process_count_per_instance=process_count_per_instance)
        else:
            job.distribution.process_count_per_instance = process_count_per_instance
    return job


def command_job_from_runconfig(rc: RunConfiguration, project: Path, experiment: str = "amlvision") -> Command:
    """The v2 equivalent of a v1 cluster run configuration (nodeCount -> instance_count, processCount ->
    process_count_per_instance * instance_count), built with ``azure.ai.ml.command``."""
    nodes = rc.pytorch.node_count or rc.node_count or 1
    processes = rc.pytorch.process_count or nodes
    distribution = (
        PyTorchDistribution(process_count_per_instance=processes // nodes) if rc.framework == "PyTorch" else None
    )
    args = [*(rc.arguments or []), "--outputs", "./outputs"]
    return command(
        code=str(project),
        command=shlex.join(["python", rc.script, *map(str, args)]),
        environment=Environment(
            image=rc.environment.docker.base_image or AZUREML_BASE_IMAGE, conda_file=str(project / CONDA_FILE)
        ),
        compute=rc.target,
        instance_count=nodes,
        distribution=distribution,
        experiment_name=experiment,
        display_name="amlvision-train",
        shm_size=rc.environment.docker.shm_size,
    )


def use_dockerfile_environment(job: Command, project: Path) -> Command:
    """Build the job's environment from docker/train.Dockerfile (context: the project folder, minus
    ignored paths) instead of Azure ML's base image + conda file; the Dockerfile installs the same list."""
    job.environment = Environment(build=BuildContext(path=str(project), dockerfile_path=DOCKERFILE))
    return job


def _build_context_problems(build: BuildContext) -> list[str]:
    dockerfile = Path(build.path) / (build.dockerfile_path or "Dockerfile")
    if not dockerfile.is_file():
        return [f"environment.build: {dockerfile} does not exist"]
    if CONDA_FILE not in dockerfile.read_text():
        return [f"environment.build: {dockerfile} does not install {CONDA_FILE}"]
    return []


def validate_command_job(job: Command, project: Path, source: str) -> list[str]:
    """SDK client-side validation plus Azure ML's service-side rules. Returns the problems found."""
    problems = []
    result = job._validate()
    if not result.passed:
        problems += [f"{field}: {message}" for field, message in result.error_messages.items()]
    if not job.compute:
        problems.append("compute is empty (name a compute cluster, e.g. azureml:cpu-cluster)")
    count = job.resources.instance_count if job.resources else 1
    if count is None or count < 1:
        problems.append(f"resources.instance_count {count!r} must be at least 1")
    dist = job.distribution
    if dist is not None:
        if not isinstance(dist, PyTorchDistribution):
            problems.append(f"distribution {type(dist).__name__} is not pytorch (train.py uses torch.distributed)")
        elif not dist.process_count_per_instance or dist.process_count_per_instance < 1:
            problems.append(
                f"distribution.process_count_per_instance {dist.process_count_per_instance!r} must be at least 1"
            )
    if "train.py" not in (job.command or "").split():
        problems.append(f"command {job.command!r} does not run train.py")
    env = job.environment
    if isinstance(env, Environment):
        if env.build is not None:
            problems += _build_context_problems(env.build)
        elif env.conda_file != yaml.safe_load((project / CONDA_FILE).read_text()):
            problems.append(f"environment.conda_file must be {CONDA_FILE} (the one dependency list of every target)")
        if not (env.image or env.build):
            problems.append("environment names neither an image nor a build context")
    return problems


def job_payload(job: Command, project: Path, source: str = "command job") -> dict[str, Any]:
    """Validate ``job`` and return the document the SDK would send; round-trips it through ``load_job``."""
    problems = validate_command_job(job, project, source)
    code = code_folder(job)
    if code is None or not (code / "train.py").is_file():
        problems.append(f"code {job.code!r} is not a local folder holding train.py")
    else:
        problems += measure_snapshot(code).problems()
    raise_if_problems(source, problems)
    document = json.loads(json.dumps(job._to_job()._to_dict()))  # plain dicts, as sent
    document["code"] = str(code)
    # The dump must load again with the SDK's strict loader: what we send is what `az ml` accepts.
    _load_job_from_dict(document)
    return document


def code_folder(job: Command) -> Path | None:
    """The local folder uploaded as the job's code, resolved against the YAML file's folder as the SDK does."""
    if not isinstance(job.code, str) or ":" in job.code.split("/")[0]:
        return None  # an azureml: asset, a git or https URL
    base = Path(getattr(job, "_base_path", None) or ".")
    return (base / job.code).resolve()


def _load_job_from_dict(document: dict[str, Any]) -> Command:
    with tempfile.TemporaryDirectory(prefix="amlvision-job-") as folder:
        path = Path(folder) / "job.yml"
        path.write_text(yaml.safe_dump(document))
        return load_command_job(path)
