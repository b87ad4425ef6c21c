"""``submit --target azure``: the same train.py as an Azure ML job, with azureml-core (v1) or azure-ai-ml (v2).

Both SDKs' objects are always built and validated offline first (:mod:`amlvision.azure`); only then,
and only without ``dry_run``, does anything contact Azure (needs ``config.json``, a login and a
subscription; see docs/azure.md for what that costs).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from amlvision.azure import v1, v2
from amlvision.azure.workspace import WorkspaceConfig, find_config, load_workspace_config

EXAMPLE_CONFIG = Path("aml_config/config.example.json")


@dataclass
class AzureSubmission:
    """Everything ``submit --target azure`` would send, built and validated."""

    workspace: WorkspaceConfig
    workspace_is_example: bool
    script_run_config: Any  # azureml.core.ScriptRunConfig
    command_job: Any  # azure.ai.ml.entities.Command
    payloads: dict[str, Any] = field(default_factory=dict)


def prepare_submission(
    project: Path,
    runconfig: str = "cpu-cluster",
    job_file: Path = v2.JOB_FILE,
    train_args: list[str] | None = None,
    compute: str | None = None,
    node_count: int | None = None,
    process_count_per_node: int | None = None,
    workspace_config: Path | None = None,
    allow_example_config: bool = False,
    environment: str = "conda",
) -> AzureSubmission:
    project = project.resolve()
    train_args = list(train_args or [])
    is_example = False
    if workspace_config is None:
        try:
            workspace_config = find_config(project)
        except ValueError:
            if not allow_example_config:
                raise
            workspace_config, is_example = project / EXAMPLE_CONFIG, True
    workspace = load_workspace_config(workspace_config)

    total = node_count * process_count_per_node if node_count and process_count_per_node else None
    src = v1.build_script_run_config(
        project, runconfig, train_args, compute_target=compute, node_count=node_count, process_count=total
    )
    job = v2.apply_overrides(
        v2.load_command_job(project / job_file),
        train_args,
        compute=compute,
        instance_count=node_count,
        process_count_per_instance=process_count_per_node,
    )
    if environment == "dockerfile":
        v2.use_dockerfile_environment(job, project)
    submission = AzureSubmission(
        workspace=workspace, workspace_is_example=is_example, script_run_config=src, command_job=job
    )
    submission.payloads = {
        "workspace": {
            "config": str(workspace.path),
            "example": is_example,
            "subscription_id": workspace.subscription_id,
            "resource_group": workspace.resource_group,
            "workspace_name": workspace.workspace_name,
        },
        "v1": v1.submission_payload(src),
        "v2": v2.job_payload(job, project, source=str(project / job_file)),
    }
    return submission


def submit(submission: AzureSubmission, sdk: str = "v2", experiment: str = "amlvision") -> str:  # pragma: no cover
    """Send the job to Azure ML and return its studio link (network, login and subscription required)."""
    if submission.workspace_is_example:
        raise ValueError("refusing to submit with aml_config/config.example.json; create config.json first")
    if sdk == "v1":
        from azureml.core import Experiment

        from amlvision.azure.workspace import connect_v1

        run = Experiment(connect_v1(submission.workspace), experiment).submit(submission.script_run_config)
        return run.get_portal_url()
    from amlvision.azure.workspace import connect_v2

    job = connect_v2(submission.workspace).jobs.create_or_update(submission.command_job, experiment_name=experiment)
    return job.studio_url
