"""Register the trained model and deploy it behind score.py, with azureml-core (v1) or azure-ai-ml (v2).

v1 (``local``, ``aci``, ``aks``): ``Model.register`` arguments, an ``InferenceConfig`` (score.py and the
environment from conda_dependencies.yml) and the target's deploy configuration with key auth on (a
local web service has no auth). v2 (``managed``): ``ManagedOnlineEndpoint`` (``auth_mode: key``) and
``ManagedOnlineDeployment`` loaded from ``aml_config/endpoint.yml`` / ``deployment.yml``, the files
``az ml online-endpoint/online-deployment create -f`` takes.

Everything is built and checked offline with the SDKs' own validators (constructors,
``validate_configuration()``, ``_validate()``, the YAML schemas); only :func:`deploy_v1` and
:func:`deploy_v2` talk to Azure.
"""

from __future__ import annotations

import inspect
import json
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from azure.ai.ml import load_online_deployment, load_online_endpoint
from azure.ai.ml.entities import ManagedOnlineDeployment, ManagedOnlineEndpoint
from azure.ai.ml.exceptions import ValidationException
from azureml.core import Environment
from azureml.core.model import InferenceConfig, Model
from azureml.core.webservice import AciWebservice, AksWebservice, LocalWebservice
from azureml.exceptions import WebserviceException
from marshmallow.exceptions import ValidationError as SchemaError

from amlvision.azure.errors import AzureConfigError, raise_if_problems
from amlvision.azure.v1 import AZUREML_BASE_IMAGE, CONDA_FILE
from amlvision.model_dir import LABELS_FILE, METRICS_FILE, MODEL_FILE, missing_files

TARGETS = ("local", "aci", "aks", "managed")
MODEL_NAME = "amlvision-cifar10"
SERVICE_NAME = "amlvision-cifar10"
ENTRY_SCRIPT = "score.py"
ENDPOINT_FILE = Path("aml_config/endpoint.yml")
DEPLOYMENT_FILE = Path("aml_config/deployment.yml")
# Azure ML asset names: letters, digits, '-', '_' and '.', starting alphanumeric, at most 255 characters.
_MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,254}$")
# Web service and online endpoint names: 3-32 characters, a letter first, letters, digits and '-'.
_SERVICE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9-]{1,30}[A-Za-z0-9]$")


@dataclass
class DeploymentPlan:
    """The objects a deployment sends, plus a JSON-able description of them."""

    target: str
    objects: dict[str, Any] = field(default_factory=dict)
    payload: dict[str, Any] = field(default_factory=dict)


def check_model_dir(model_dir: Path) -> list[str]:
    """What score.py needs at AZUREML_MODEL_DIR (``amlvision.model_dir.SERVING_FILES``) and is not there."""
    if not model_dir.is_dir():
        return [f"model directory {model_dir} does not exist (train first: python train.py --outputs {model_dir})"]
    return [f"{model_dir / name} is missing" for name in missing_files(model_dir)]


def model_registration(model_dir: Path, name: str = MODEL_NAME, description: str | None = None) -> dict[str, Any]:
    """Keyword arguments of ``Model.register`` (bar the workspace), checked against its signature."""
    problems = check_model_dir(model_dir)
    if not _MODEL_NAME.match(name):
        problems.append(f"model name {name!r}: use letters, digits, '-', '_' or '.', at most 255 characters")
    raise_if_problems("Model.register", problems)
    import onnx

    proto = onnx.load(str(model_dir / MODEL_FILE), load_external_data=False)
    metrics = _read_json(model_dir / METRICS_FILE)
    tags = {"format": "onnx", "opset": str(proto.opset_import[0].version)}
    for key in ("test_accuracy", "accuracy"):
        if isinstance(metrics.get(key), int | float):
            tags[key] = f"{metrics[key]:.4f}"
    kwargs = {
        "model_path": str(model_dir),
        "model_name": name,
        "tags": tags,
        "properties": {"labels": ",".join(_read_json(model_dir / LABELS_FILE) or [])},
        "description": description or "amlvision image classifier (ONNX); score.py serves it",
        "model_framework": Model.Framework.ONNX,
        "model_framework_version": onnx.__version__,
    }
    inspect.signature(Model.register).bind(None, **kwargs)  # raises TypeError on a wrong argument name
    return kwargs


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text()) if path.is_file() else {}
    except json.JSONDecodeError as err:
        raise AzureConfigError(str(path), [f"not valid JSON (line {err.lineno}): {err.msg}"]) from err


def scoring_environment(project: Path) -> Environment:
    env = Environment.from_conda_specification(name="amlvision-score", file_path=str(project / CONDA_FILE))
    env.docker.base_image = AZUREML_BASE_IMAGE
    return env


def inference_config(project: Path) -> InferenceConfig:
    """score.py from the project folder (Azure ML uploads it minus .amlignore/.gitignore paths)."""
    try:
        config = InferenceConfig(
            entry_script=ENTRY_SCRIPT, source_directory=str(project), environment=scoring_environment(project)
        )
        config.validate_configuration()
    except WebserviceException as err:
        raise AzureConfigError("InferenceConfig", [err.message]) from err
    return config


def deploy_configuration(
    target: str, cpu_cores: float = 1, memory_gb: float = 2, port: int = 8890, aks_cluster: str = "aks-cluster"
) -> Any:
    """The v1 deploy configuration of ``target``; ACI and AKS with key authentication on."""
    tags = {"project": "amlvision"}
    try:
        if target == "local":
            config = LocalWebservice.deploy_configuration(port=port)
        elif target == "aci":
            config = AciWebservice.deploy_configuration(
                cpu_cores=cpu_cores, memory_gb=memory_gb, auth_enabled=True, tags=tags, description="amlvision on ACI"
            )
        elif target == "aks":
            config = AksWebservice.deploy_configuration(
                cpu_cores=cpu_cores,
                memory_gb=memory_gb,
                auth_enabled=True,
                token_auth_enabled=False,
                autoscale_enabled=True,
                autoscale_min_replicas=1,
                autoscale_max_replicas=3,
                scoring_timeout_ms=5000,
                compute_target_name=aks_cluster,
                tags=tags,
                description="amlvision on AKS",
            )
        else:
            raise AzureConfigError("deploy", [f"v1 target {target!r} is not one of local, aci, aks"])
        config.validate_configuration()
    except WebserviceException as err:
        raise AzureConfigError(f"{target} deploy configuration", [err.message.strip()]) from err
    return config


def _public(obj: Any) -> dict[str, Any]:
    return {k: v for k, v in vars(obj).items() if not k.startswith("_") and v is not None}


def plan_v1(
    project: Path, model_dir: Path, target: str, service_name: str = SERVICE_NAME, **deploy_options: Any
) -> DeploymentPlan:
    if not _SERVICE_NAME.match(service_name):
        raise AzureConfigError(
            "deploy", [f"service name {service_name!r}: 3-32 letters, digits or '-', starting with a letter"]
        )
    registration = model_registration(model_dir)
    inference = inference_config(project)
    config = deploy_configuration(target, **deploy_options)
    plan = DeploymentPlan(
        target=target,
        objects={
            "registration": registration,
            "inference_config": inference,
            "deploy_configuration": config,
            "service_name": service_name,
        },
    )
    plan.payload = {
        "Model.register": registration,
        "InferenceConfig": {
            "entry_script": inference.entry_script,
            "source_directory": inference.source_directory,
            "environment": Environment._serialize_to_dict(inference.environment),
        },
        f"{type(config).__name__}": _public(config),
        "service_name": service_name,
    }
    return plan


def _load_checked(loader: Any, path: Path, params_override: list[dict] | None = None) -> Any:
    try:
        return loader(source=str(path), params_override=params_override or [])
    except (SchemaError, ValidationException, yaml.YAMLError, FileNotFoundError) as err:
        raise AzureConfigError(str(path), [str(err)[:2000]]) from err


def plan_managed(
    project: Path, model_dir: Path, endpoint_file: Path = ENDPOINT_FILE, deployment_file: Path = DEPLOYMENT_FILE
) -> DeploymentPlan:
    """Managed online endpoint + deployment from the YAML files, the model path pointed at ``model_dir``."""
    raise_if_problems("model", check_model_dir(model_dir))
    endpoint: ManagedOnlineEndpoint = _load_checked(load_online_endpoint, project / endpoint_file)
    deployment: ManagedOnlineDeployment = _load_checked(
        load_online_deployment, project / deployment_file, [{"model.path": str(model_dir.resolve())}]
    )
    problems = []
    if endpoint.auth_mode != "key":
        problems.append(f"endpoint auth_mode is {endpoint.auth_mode!r}; amlvision deploys with key auth")
    if deployment.endpoint_name != endpoint.name:
        problems.append(f"deployment endpoint_name {deployment.endpoint_name!r} is not the endpoint {endpoint.name!r}")
    for label, name in (("endpoint", endpoint.name), ("deployment", deployment.name)):
        if not _SERVICE_NAME.match(name or ""):
            problems.append(f"{label} name {name!r}: 3-32 letters, digits or '-', starting with a letter")
    try:  # the SDK's client-side checks (name, scale settings); it raises rather than returning a result
        deployment._validate()
    except ValidationException as err:
        problems.append(str(err))
    code = Path(deployment._base_path, deployment.code_configuration.code).resolve()
    if not (code / deployment.code_configuration.scoring_script).is_file():
        problems.append(f"scoring script {deployment.code_configuration.scoring_script} not found in {code}")
    if not deployment.instance_count or deployment.instance_count < 1:
        problems.append(f"instance_count {deployment.instance_count!r} must be at least 1")
    raise_if_problems(str(project / deployment_file), problems)
    endpoint_doc = json.loads(json.dumps(endpoint._to_dict()))
    deployment_doc = json.loads(json.dumps(deployment._to_dict()))
    deployment_doc["code_configuration"]["code"] = str(code)
    _roundtrip(endpoint_doc, load_online_endpoint)
    _roundtrip(deployment_doc, load_online_deployment)
    return DeploymentPlan(
        target="managed",
        objects={"endpoint": endpoint, "deployment": deployment},
        payload={"ManagedOnlineEndpoint": endpoint_doc, "ManagedOnlineDeployment": deployment_doc},
    )


def _roundtrip(document: dict[str, Any], loader: Any) -> None:
    """What we would send must load again with the SDK's strict loader."""
    with tempfile.TemporaryDirectory(prefix="amlvision-deploy-") as folder:
        path = Path(folder) / "spec.yml"
        path.write_text(yaml.safe_dump(document))
        _load_checked(loader, path)


def plan(project: Path, model_dir: Path, target: str, **options: Any) -> DeploymentPlan:
    if target not in TARGETS:
        raise AzureConfigError("deploy", [f"target {target!r} is not one of {TARGETS}"])
    if target == "managed":
        return plan_managed(project, model_dir)
    return plan_v1(project, model_dir, target, **options)


def deploy_v1(workspace: Any, deployment: DeploymentPlan) -> str:  # pragma: no cover - needs Azure
    """Register, deploy, wait; returns the scoring URI (keys: ``service.get_keys()``)."""
    from azureml.core.compute import AksCompute

    objects = deployment.objects
    model = Model.register(workspace=workspace, **objects["registration"])
    target = None
    if deployment.target == "aks":
        target = AksCompute(workspace, objects["deploy_configuration"].compute_target_name)
    service = Model.deploy(
        workspace,
        objects["service_name"],
        [model],
        objects["inference_config"],
        objects["deploy_configuration"],
        deployment_target=target,
        overwrite=True,
    )
    service.wait_for_deployment(show_output=True)
    return service.scoring_uri


def deploy_v2(ml_client: Any, deployment: DeploymentPlan) -> str:  # pragma: no cover - needs Azure
    """Create the endpoint, the deployment, send it all traffic; returns the scoring URI."""
    endpoint, online = deployment.objects["endpoint"], deployment.objects["deployment"]
    ml_client.online_endpoints.begin_create_or_update(endpoint).result()
    ml_client.online_deployments.begin_create_or_update(online).result()
    endpoint.traffic = {online.name: 100}
    ml_client.online_endpoints.begin_create_or_update(endpoint).result()
    return ml_client.online_endpoints.get(endpoint.name).scoring_uri
