"""Run the scoring server (azmlinfsrv + score.py) locally without Docker, for quick debugging.

It is the same server and entry point as the Docker image, bound to 127.0.0.1 by default. Stop it
with Ctrl+C. Limits are read from the AMLVISION_* environment variables (docs/serving.md). A model
that cannot be loaded stops the command at once (exit 2) with the reason.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from amlvision.model_dir import MODEL_FILE


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model_dir", help="model directory with model.onnx, labels.json, preprocess.json")
    parser.add_argument("--port", type=int, default=5001, help="port (default 5001, as in the image)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")


GUNICORN_CONFIG = "--config python:amlvision.serving.gunicorn_conf"


def _check_model(model_dir: Path) -> str | None:
    """Load the model once here, so a bad one stops the command at once with the reason."""
    from amlvision.inference.errors import InputError
    from amlvision.serving.scoring import ScoringService

    try:
        ScoringService.load(model_dir)
    except (OSError, ValueError, InputError) as exc:
        return str(exc)
    return None


def run(args: argparse.Namespace) -> int:
    if args.host not in ("127.0.0.1", "localhost", "::1") and not os.environ.get("AMLVISION_API_KEY"):
        print(
            f"amlvision serve: WARNING: --host {args.host} exposes the model to the network without an API key; "
            "set AMLVISION_API_KEY to require 'Authorization: Bearer <key>' (docs/serving.md)",
            file=sys.stderr,
        )
    model_dir = Path(args.model_dir).resolve()
    if not (model_dir / MODEL_FILE).is_file():
        print(f"amlvision serve: {model_dir} has no {MODEL_FILE}", file=sys.stderr)
        return 2
    problem = _check_model(model_dir)
    if problem:
        print(f"amlvision serve: {problem}", file=sys.stderr)
        return 2
    entry_script = Path(__file__).resolve().parents[1] / "serving" / "entry.py"
    env = {
        **os.environ,
        # azmlinfsrv reads its configuration from the environment when its modules are imported.
        "AZUREML_MODEL_DIR": str(model_dir),
        "AZUREML_ENTRY_SCRIPT": str(entry_script),
        "AML_APP_ROOT": str(entry_script.parent),  # where azmlinfsrv finds logging.json
        "SERVER_PORT": str(args.port),
        "HEALTH_PORT": str(args.port),
        "WORKER_COUNT": str(args.workers),
        "AML_APP_INSIGHTS_ENABLED": "false",
        "SERVICE_NAME": os.environ.get("SERVICE_NAME", "amlvision"),
        "GUNICORN_CMD_ARGS": os.environ.get("GUNICORN_CMD_ARGS", GUNICORN_CONFIG),
    }
    print(f"amlvision serve: {model_dir} on http://{args.host}:{args.port}/score", file=sys.stderr, flush=True)
    # A fresh interpreter, not this one: the model check above started ONNX Runtime threads, and gunicorn
    # workers forked from a process with threads abort with std::system_error when they exit, which makes
    # gunicorn restart them forever instead of stopping on a worker that fails init() (issue 15, F7/F10).
    code = (
        "import sys; from azureml_inference_server_http import amlserver_linux as s; "
        "s.run(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))"
    )
    os.execve(sys.executable, [sys.executable, "-c", code, args.host, str(args.port), str(args.workers)], env)
