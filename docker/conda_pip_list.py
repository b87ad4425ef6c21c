"""Print the pip requirements of a conda environment file, one a line (used by docker/train.Dockerfile).

Why: the training image installs exactly the pip list of conda_dependencies.yml without conda. The
file's ``python=X.Y`` pin is checked against the interpreter so a wrong base image fails the build
with a clear message instead of training on another Python.
"""

from __future__ import annotations

import sys

import yaml


def pip_requirements(spec: dict, source: str) -> list[str]:
    deps = spec.get("dependencies")
    if not isinstance(deps, list):
        raise SystemExit(f"{source}: 'dependencies' must be a list")
    for dep in deps:
        if isinstance(dep, str) and dep.replace(" ", "").startswith("python="):
            wanted = dep.split("=", 1)[1].strip()
            have = f"{sys.version_info.major}.{sys.version_info.minor}"
            if not have.startswith(wanted) and not wanted.startswith(have):
                raise SystemExit(f"{source}: asks for python={wanted}, the base image has Python {have}")
    pip_lists = [dep["pip"] for dep in deps if isinstance(dep, dict) and "pip" in dep]
    if len(pip_lists) != 1 or not all(isinstance(r, str) for r in pip_lists[0]):
        raise SystemExit(f"{source}: expected exactly one 'pip:' list of requirement strings")
    return pip_lists[0]


if __name__ == "__main__":
    path = sys.argv[1]
    with open(path) as f:
        print("\n".join(pip_requirements(yaml.safe_load(f), path)))
