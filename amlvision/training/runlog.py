"""What a run records about itself when it starts, the same for both engines.

``config.yaml`` (repeatable with ``--config``), ``split.json`` (a drawn validation split), the code's
git commit for the tracker's tags, and the run log's format.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from amlvision.training.config import TrainConfig

REPO = Path(__file__).resolve().parents[2]


def configure_logging() -> None:
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
    )


def git_commit(repo: Path = REPO) -> str:
    try:
        out = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def write_run_files(outputs: Path, cfg: TrainConfig, split: dict[str, Any]) -> None:
    """``config.yaml`` always; ``split.json`` when the held-out split was drawn from the training data."""
    (outputs / "config.yaml").write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
    if split.get("validation_indexes") is not None:
        (outputs / "split.json").write_text(json.dumps(split))


def logged_params(cfg: TrainConfig) -> dict[str, Any]:
    """The configuration as the tracker's parameters (``resume`` is how the run was started, not what it is)."""
    return {k: v for k, v in cfg.to_dict().items() if k != "resume"}
