"""The workspace ``config.json`` (``Workspace.from_config`` / ``MLClient.from_config``) and connecting.

Reading and checking the file needs no network; :func:`connect_v1` and :func:`connect_v2` do
(and an Azure login: ``az login``, a managed identity or a service principal).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from amlvision.azure.errors import AzureConfigError, raise_if_problems

# Where Workspace.from_config looks, in order, starting from the project folder.
CONFIG_LOCATIONS = ("config.json", ".azureml/config.json", "aml_config/config.json")
_GUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
# Azure ML workspace names: 2-33 characters, letters, digits, '-' and '_', starting alphanumeric.
_WORKSPACE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{1,32}$")
_RESOURCE_GROUP = re.compile(r"^[-\w._()]{1,90}$")


@dataclass(frozen=True)
class WorkspaceConfig:
    subscription_id: str
    resource_group: str
    workspace_name: str
    path: Path

    def portal_scope(self) -> str:
        """The ``wsid`` part of Azure ML studio links for this workspace."""
        return (
            f"/subscriptions/{self.subscription_id}/resourcegroups/{self.resource_group}"
            f"/workspaces/{self.workspace_name}"
        )


def find_config(project: Path) -> Path:
    for relative in CONFIG_LOCATIONS:
        if (project / relative).is_file():
            return project / relative
    raise AzureConfigError(
        str(project),
        [
            "no workspace config.json found (looked for " + ", ".join(CONFIG_LOCATIONS) + "); copy "
            "aml_config/config.example.json to config.json and fill in your subscription, resource group and workspace"
        ],
    )


def load_workspace_config(path: Path) -> WorkspaceConfig:
    """Read and check a ``config.json`` as ``Workspace.from_config`` would, without contacting Azure."""
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise AzureConfigError(str(path), [f"not valid JSON (line {err.lineno}): {err.msg}"]) from err
    if not isinstance(data, dict):
        raise AzureConfigError(str(path), ["expected a JSON object"])
    problems = []
    # Workspace.from_config accepts both spellings of the workspace key.
    name = data.get("workspace_name", data.get("workspaceName"))
    sub, group = data.get("subscription_id"), data.get("resource_group")
    if not isinstance(sub, str) or not _GUID.match(sub):
        problems.append(f"subscription_id {sub!r} is not a subscription GUID")
    if not isinstance(group, str) or not _RESOURCE_GROUP.match(group) or group.endswith("."):
        problems.append(f"resource_group {group!r} is not a valid resource group name")
    if not isinstance(name, str) or not _WORKSPACE_NAME.match(name):
        problems.append(f"workspace_name {name!r} is not a valid workspace name (2-33 letters, digits, - or _)")
    raise_if_problems(str(path), problems)
    return WorkspaceConfig(subscription_id=sub, resource_group=group, workspace_name=name, path=path)


def connect_v1(config: WorkspaceConfig):  # pragma: no cover - needs Azure
    """``azureml.core.Workspace`` for the config (network and an Azure login required)."""
    from azureml.core import Workspace

    return Workspace.from_config(path=str(config.path))


def connect_v2(config: WorkspaceConfig):  # pragma: no cover - needs Azure
    """``azure.ai.ml.MLClient`` for the config (network and an Azure login required)."""
    from azure.ai.ml import MLClient
    from azure.identity import DefaultAzureCredential

    return MLClient.from_config(credential=DefaultAzureCredential(), path=str(config.path))
