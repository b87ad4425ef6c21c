"""pyproject.toml and conda_dependencies.yml must name the same dependencies.

Azure ML builds its environment from conda_dependencies.yml while pip users install from
pyproject.toml; if the lists drift, a model trained on one target behaves differently on another.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import yaml
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]


def _normalise(specs: list[str]) -> dict[str, str]:
    out = {}
    for spec in specs:
        req = Requirement(spec)
        out[req.name.lower().replace("_", "-")] = str(req.specifier)
    return out


def _pyproject() -> dict[str, str]:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return _normalise(data["project"]["dependencies"])


def _conda() -> dict[str, str]:
    env = yaml.safe_load((ROOT / "conda_dependencies.yml").read_text())
    pip_lists = [d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d]
    assert len(pip_lists) == 1, "conda_dependencies.yml needs exactly one pip: section"
    return _normalise(pip_lists[0])


def test_conda_and_pyproject_name_the_same_dependencies():
    assert _conda() == _pyproject()


def test_conda_python_matches_requires_python():
    env = yaml.safe_load((ROOT / "conda_dependencies.yml").read_text())
    pythons = [d for d in env["dependencies"] if isinstance(d, str) and d.startswith("python")]
    assert pythons, "conda_dependencies.yml must pin python"
    version = pythons[0].split("=")[1]
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert Requirement(f"python{requires}").specifier.contains(version)


def test_normalise_detects_a_drift():
    # The comparison must notice a changed pin, otherwise the agreement test above proves nothing.
    assert _normalise(["torch==2.14.1"]) != _normalise(["torch==2.13.0"])


def test_tensorflow_variant_is_the_base_environment_plus_the_tensorflow_extra():
    """conda_dependencies.tensorflow.yml (Docker/Azure ML training with TensorFlow) = base list + the extra."""
    variant = yaml.safe_load((ROOT / "conda_dependencies.tensorflow.yml").read_text())
    pip_lists = [d["pip"] for d in variant["dependencies"] if isinstance(d, dict) and "pip" in d]
    extra = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["tensorflow"]
    assert _normalise(pip_lists[0]) == {**_conda(), **_normalise(extra)}
    assert "tensorflow-cpu" in _normalise(extra) and "tensorflow-cpu" not in _conda()


def test_scoring_requirements_carry_no_training_framework():
    names = _normalise([line for line in (ROOT / "requirements-score.txt").read_text().splitlines()
                        if line.strip() and not line.startswith("#")])  # fmt: skip
    assert not {"torch", "torchvision", "tensorflow", "tensorflow-cpu", "keras", "tf2onnx"} & set(names)


AZURE_SDKS = ("azureml-core", "azure-ai-ml", "azureml-inference-server-http")


def test_azure_sdks_have_upper_bounds_that_the_installed_versions_meet():
    """The code uses private Azure SDK methods: each SDK is bounded, and the tested (installed) version is inside."""
    from importlib.metadata import version

    from packaging.specifiers import SpecifierSet

    pins = _pyproject()
    for name in AZURE_SDKS:
        spec = SpecifierSet(pins[name])
        assert any(s.operator in ("<", "<=", "==", "~=") for s in spec), f"{name}: no upper bound in {spec}"
        assert spec.contains(version(name), prereleases=True), f"{name} {version(name)} is outside {spec}"
