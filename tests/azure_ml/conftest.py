"""A throw-away copy of the project's Azure files, so tests can break them without touching the repo.

(This folder is ``tests/azure_ml``, not ``tests/azure``: a test package named ``azure`` would shadow the
Azure SDKs' ``azure`` namespace package.)
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ._files import REPO


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """aml_config/, conda_dependencies.yml, train.py, score.py and a .gitignore in a temporary folder."""
    shutil.copytree(REPO / "aml_config", tmp_path / "aml_config")
    for name in ("conda_dependencies.yml", "train.py", "score.py", ".gitignore"):
        shutil.copy2(REPO / name, tmp_path / name)
    return tmp_path
