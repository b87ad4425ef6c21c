"""Read conda_dependencies.yml, the one dependency list every run target builds its environment from."""

from __future__ import annotations

from pathlib import Path

import yaml


class CondaFileError(ValueError):
    """conda_dependencies.yml is not the shape the run targets need."""


def load_conda_spec(path: Path) -> dict:
    try:
        spec = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise CondaFileError(f"{path}: not valid YAML: {err}") from err
    if not isinstance(spec, dict) or not isinstance(spec.get("dependencies"), list):
        raise CondaFileError(f"{path}: expected a mapping with a 'dependencies' list")
    return spec


def pip_requirements(path: Path) -> list[str]:
    """The requirement strings of the file's single ``pip:`` list."""
    deps = load_conda_spec(path)["dependencies"]
    pip_lists = [dep["pip"] for dep in deps if isinstance(dep, dict) and "pip" in dep]
    if len(pip_lists) != 1 or not all(isinstance(r, str) for r in pip_lists[0]):
        raise CondaFileError(f"{path}: expected exactly one 'pip:' list of requirement strings")
    return list(pip_lists[0])
