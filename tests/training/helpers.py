"""Shared helpers for the training tests: run train.py in-process or as a real subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
TRAIN_PY = REPO / "train.py"


def train_args(data: Path, outputs: Path, *extra: str, model: str = "resnet20", epochs: int = 2) -> list[str]:
    return [
        "--data",
        str(data),
        "--model",
        model,
        "--epochs",
        str(epochs),
        "--outputs",
        str(outputs),
        "--threads",
        "2",
        "--progress",
        "log",
        *extra,
    ]


def subprocess_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_") and not k.startswith("AZUREML_")}
    env.update({"OMP_NUM_THREADS": "2", "PYTHONUNBUFFERED": "1", **extra})
    return env


def start_train(args: list[str], **env: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(TRAIN_PY), *args],
        cwd=REPO,
        env=subprocess_env(**env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def run_train(args: list[str], timeout: float = 300, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(TRAIN_PY), *args],
        cwd=REPO,
        env=subprocess_env(**env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def predictions(outputs: Path) -> tuple[np.ndarray, np.ndarray]:
    saved = np.load(outputs / "predictions.npz")
    return saved["labels"], saved["probabilities"]
