"""Run the scoring server (azmlinfsrv + score.py) locally without Docker, for quick debugging.

It is the same server and entry point as the Docker image, bound to 127.0.0.1 by default. Stop it
with Ctrl+C. Limits are read from the AMLVISION_* environment variables (docs/serving.md).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model_dir", help="model directory with model.onnx, labels.json, preprocess.json")
    parser.add_argument("--port", type=int, default=5001, help="port (default 5001, as in the image)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")


def run(args: argparse.Namespace) -> int:
    model_dir = Path(args.model_dir).resolve()
    if not (model_dir / "model.onnx").is_file():
        print(f"amlvision serve: {model_dir} has no model.onnx", file=sys.stderr)
        return 2
    from amlvision.serving import entry

    entry_script = Path(entry.__file__).resolve()
    # azmlinfsrv reads its configuration from the environment when its modules are imported.
    os.environ.update(
        {
            "AZUREML_MODEL_DIR": str(model_dir),
            "AZUREML_ENTRY_SCRIPT": str(entry_script),
            "AML_APP_ROOT": str(entry_script.parent),
            "SERVER_PORT": str(args.port),
            "HEALTH_PORT": str(args.port),
            "WORKER_COUNT": str(args.workers),
            "AML_APP_INSIGHTS_ENABLED": "false",
        }
    )
    os.environ.setdefault("SERVICE_NAME", "amlvision")
    from azureml_inference_server_http import amlserver_linux

    print(f"amlvision serve: {model_dir} on http://{args.host}:{args.port}/score", file=sys.stderr, flush=True)
    amlserver_linux.run(args.host, args.port, args.workers)
    return 0
