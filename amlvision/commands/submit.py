"""Run train.py locally, in a local Docker container or on Azure ML.

  amlvision submit --target local  [--runconfig local]  [--nproc-per-node N] [-- train.py options]
  amlvision submit --target docker [--runconfig docker] [--nproc-per-node N] [--base-image IMG] [-- ...]
  amlvision submit --target azure  [--runconfig cpu-cluster] [--sdk v1|v2] [--dry-run] [-- ...]

local and docker runs leave runs/<run-id>/{outputs/,logs/std_log.txt,run.json}; the exit status is
train.py's. azure builds the azureml-core ScriptRunConfig and the azure-ai-ml command job, validates
both offline, and (without --dry-run) submits one and prints its studio link.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

DEFAULT_RUNCONFIG = {"local": "local", "docker": "docker", "azure": "cpu-cluster"}


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--target", required=True, choices=("local", "docker", "azure"))
    parser.add_argument("--runconfig", help="aml_config/<NAME>.runconfig (default: local, docker or cpu-cluster)")
    parser.add_argument("--project", type=Path, default=Path.cwd(), help="project folder (default: current folder)")
    parser.add_argument(
        "--nproc-per-node", type=int, default=1, help="local/docker: data-parallel processes under torchrun (default 1)"
    )
    parser.add_argument("--quiet", action="store_true", help="local/docker: do not echo the log (still saved)")
    g = parser.add_argument_group("docker")
    g.add_argument(
        "--base-image",
        default=os.environ.get("AMLVISION_TRAIN_BASE_IMAGE"),
        help="base of docker/train.Dockerfile (default python:3.11-slim-bookworm; env AMLVISION_TRAIN_BASE_IMAGE)",
    )
    g.add_argument(
        "--wheelhouse",
        type=Path,
        default=os.environ.get("AMLVISION_WHEELHOUSE"),
        help="install the image's packages from this wheel folder, not PyPI (env AMLVISION_WHEELHOUSE)",
    )
    g.add_argument("--gpus", help="docker run --gpus value, e.g. all (needs the NVIDIA container toolkit)")
    g = parser.add_argument_group("azure")
    g.add_argument("--sdk", choices=("v1", "v2"), default="v2", help="SDK that submits (both are validated)")
    g.add_argument("--job", type=Path, default=Path("aml_config/train-job.yml"), help="v2 command job YAML")
    g.add_argument(
        "--environment",
        choices=("conda", "dockerfile"),
        default="conda",
        help="v2 job environment: Azure ML base image + conda_dependencies.yml (default), or built "
        "from docker/train.Dockerfile",
    )
    g.add_argument("--compute", help="compute target name (overrides the run configuration and job)")
    g.add_argument("--node-count", type=int, help="nodes for the job (overrides)")
    g.add_argument("--process-count-per-node", type=int, help="processes per node (overrides)")
    g.add_argument("--workspace-config", type=Path, help="config.json (default: found like Workspace.from_config)")
    g.add_argument("--experiment", default="amlvision")
    g.add_argument("--dry-run", action="store_true", help="build and validate, print what would be sent, send nothing")
    parser.add_argument("train_args", nargs=argparse.REMAINDER, help="-- then options for train.py")


def run(args: argparse.Namespace) -> int:
    from amlvision.azure.errors import AzureConfigError
    from amlvision.submit.command_line import SubmitError
    from amlvision.submit.images import ImageBuildError

    train_args = list(args.train_args)
    if train_args and train_args[0] == "--":
        train_args = train_args[1:]
    runconfig = args.runconfig or DEFAULT_RUNCONFIG[args.target]
    try:
        if args.target == "azure":
            return _azure(args, runconfig, train_args)
        return _run_here(args, runconfig, train_args)
    except (AzureConfigError, SubmitError, ImageBuildError) as err:
        print(f"amlvision submit: {err}", file=sys.stderr)
        return 2


def _run_here(args: argparse.Namespace, runconfig: str, train_args: list[str]) -> int:
    if args.target == "local":
        from amlvision.submit.local import run_local

        record = run_local(args.project, runconfig, train_args, args.nproc_per_node, echo=not args.quiet)
    else:
        from amlvision.submit.docker_run import run_docker
        from amlvision.submit.images import DEFAULT_BASE_IMAGE

        record = run_docker(
            args.project,
            runconfig,
            train_args,
            args.nproc_per_node,
            base_image=args.base_image or DEFAULT_BASE_IMAGE,
            wheelhouse=args.wheelhouse,
            echo=not args.quiet,
            gpus=args.gpus,
        )
    print(
        f"run {record.run_id}: {record.status} (exit code {record.exit_code}) in {record.duration_s}s; "
        f"outputs: {record.outputs}; log: {record.log}"
    )
    return int(record.exit_code or 0)


def _azure(args: argparse.Namespace, runconfig: str, train_args: list[str]) -> int:
    from amlvision.submit.azure import prepare_submission, submit

    submission = prepare_submission(
        args.project,
        runconfig,
        args.job,
        train_args,
        compute=args.compute,
        node_count=args.node_count,
        process_count_per_node=args.process_count_per_node,
        workspace_config=args.workspace_config,
        allow_example_config=args.dry_run,
        environment=args.environment,
    )
    if args.dry_run:
        print(json.dumps(submission.payloads, indent=2, default=str))
        note = " (aml_config/config.example.json: no config.json yet)" if submission.workspace_is_example else ""
        print(
            f"dry run: v1 ScriptRunConfig and v2 command job are valid for workspace "
            f"{submission.workspace.workspace_name}{note}; nothing was sent",
            file=sys.stderr,
        )
        return 0
    print(submit(submission, sdk=args.sdk, experiment=args.experiment))
    return 0
