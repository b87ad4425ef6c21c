"""Register the trained model and deploy it with the Azure ML SDKs (score.py behind key auth).

  amlvision deploy --target local|aci|aks|managed [--model-dir outputs] [--dry-run]

local, aci and aks use azureml-core (Model.register, InferenceConfig, Local/Aci/AksWebservice);
managed uses azure-ai-ml (ManagedOnlineEndpoint + ManagedOnlineDeployment from aml_config/*.yml).
Every object is built and validated offline first; --dry-run prints them and sends nothing.
Without --dry-run a workspace config.json, an Azure login and a subscription are needed (see
docs/azure.md for costs).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--target", required=True, choices=("local", "aci", "aks", "managed"))
    parser.add_argument("--model-dir", type=Path, default=Path("outputs"), help="train.py's output folder")
    parser.add_argument("--project", type=Path, default=Path.cwd(), help="project folder (default: current folder)")
    parser.add_argument("--service-name", default="amlvision-cifar10", help="v1 web service name")
    parser.add_argument("--cpu-cores", type=float, default=1, help="v1 ACI/AKS cores per replica")
    parser.add_argument("--memory-gb", type=float, default=2, help="v1 ACI/AKS memory per replica")
    parser.add_argument("--aks-cluster", default="aks-cluster", help="v1 AKS compute target name")
    parser.add_argument("--workspace-config", type=Path, help="config.json (default: found like Workspace.from_config)")
    parser.add_argument("--dry-run", action="store_true", help="build and validate, print, send nothing")


def run(args: argparse.Namespace) -> int:
    from amlvision.azure import deployment
    from amlvision.azure.errors import AzureConfigError
    from amlvision.azure.workspace import find_config, load_workspace_config

    project = args.project.resolve()
    model_dir = args.model_dir if args.model_dir.is_absolute() else project / args.model_dir
    options = (
        {}
        if args.target == "managed"
        else {
            "service_name": args.service_name,
            "cpu_cores": args.cpu_cores,
            "memory_gb": args.memory_gb,
            "aks_cluster": args.aks_cluster,
        }
    )
    if args.target == "local":
        options = {"service_name": args.service_name}
    try:
        plan = deployment.plan(project, model_dir, args.target, **options)
        if args.dry_run:
            print(json.dumps(plan.payload, indent=2, default=str))
            print(f"dry run: {args.target} deployment objects are valid; nothing was sent", file=sys.stderr)
            return 0
        workspace = load_workspace_config(args.workspace_config or find_config(project))
    except AzureConfigError as err:
        print(f"amlvision deploy: {err}", file=sys.stderr)
        return 2
    if args.target == "managed":  # pragma: no cover - needs Azure
        from amlvision.azure.workspace import connect_v2

        uri = deployment.deploy_v2(connect_v2(workspace), plan)
    else:  # pragma: no cover - needs Azure
        from amlvision.azure.workspace import connect_v1

        uri = deployment.deploy_v1(connect_v1(workspace), plan)
    print(uri)
    return 0
