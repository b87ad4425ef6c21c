"""The package's layers, bottom to top: no module imports from a layer above its own.

Every ``import amlvision.x`` / ``from amlvision.x import ...`` in every module is read with ``ast``,
including imports inside functions (a lazy import is still a dependency), and compared by layer.
Modules of one layer may import each other. A new top-level package or module must be placed here.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "amlvision"

# Bottom first. Formats read and write files; data resolves and reads datasets; the torch-free
# inference (scoring) sits beside transforms; sources feed training; serving, cloud and CLI are on top.
LAYERS: list[tuple[str, set[str]]] = [
    (
        "formats",
        {
            "amlvision",
            "amlvision.formats",
            "amlvision.ctf",
            "amlvision.model_dir",
        },
    ),
    ("data", {"amlvision.data", "amlvision.detection", "amlvision.pack"}),
    (
        "transforms and inference",
        {"amlvision.transforms", "amlvision.augment", "amlvision.inference", "amlvision.tasks"},
    ),
    ("sources", {"amlvision.sources", "amlvision.visualize"}),
    ("training", {"amlvision.training", "amlvision.tf", "amlvision.detection.training"}),
    ("serving and cloud", {"amlvision.serving", "amlvision.azure", "amlvision.testing"}),
    ("run targets", {"amlvision.submit"}),
    ("command line", {"amlvision.commands", "amlvision.cli", "amlvision.__main__"}),
]


# Declared exceptions, each with its reason; the test fails when one is no longer needed, so the list
# cannot go stale. Task modules (amlvision/tasks, issue 9's task registry) serve from the inference
# layer, and their training hooks import amlvision.training inside the hook; the scoring image never
# calls those hooks (tests/serving checks it runs without torch).
ALLOWED_UPWARD = {
    ("amlvision.tasks", "amlvision.training"): "task training hooks import training lazily",
    ("amlvision.tasks", "amlvision.detection.training"): "the detection task's trainer hook imports it lazily",
}


def _allowed(importer: str, imported: str) -> bool:
    return any(
        (importer == a or importer.startswith(a + ".")) and (imported == b or imported.startswith(b + "."))
        for a, b in ALLOWED_UPWARD
    )


def layer_of(module: str) -> int:
    """Index in ``LAYERS`` of the longest declared prefix of ``module`` (the root package only by itself)."""
    best, best_len = None, -1
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            covers = module == prefix or (prefix != "amlvision" and module.startswith(prefix + "."))
            if covers and len(prefix) > best_len:
                best, best_len = index, len(prefix)
    assert best is not None, f"{module} is in no layer of tests/test_layers.py; add it to LAYERS"
    return best


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(path: Path, source: str | None = None) -> list[tuple[str, int]]:
    """``(amlvision module, line)`` of every absolute or relative import of the package in ``path``."""
    tree = ast.parse(source if source is not None else path.read_text(encoding="utf-8"), filename=str(path))
    package = module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package[: len(package) - node.level + 1] + ([base] if base else []))
            if base == "amlvision":  # from amlvision import packed: the submodule is the dependency
                found += [(f"amlvision.{alias.name}", node.lineno) for alias in node.names]
            else:
                found.append((base, node.lineno))
    return [(name, line) for name, line in found if name == "amlvision" or name.startswith("amlvision.")]


def upward_imports(path: Path, source: str | None = None, used: set | None = None) -> list[str]:
    importer = module_name(path)
    own = layer_of(importer)
    found = []
    for imported, line in imported_modules(path, source):
        if imported == "amlvision.__version__":
            continue
        if _allowed(importer, imported):
            if used is not None:
                used.update(pair for pair in ALLOWED_UPWARD if importer.startswith(pair[0]))
            continue
        target = layer_of(imported)
        if target > own:
            found.append(
                f"{path.relative_to(PACKAGE.parent)}:{line}: {importer} ({LAYERS[own][0]}) imports "
                f"{imported} ({LAYERS[target][0]})"
            )
    return found


def test_no_module_imports_from_a_layer_above_it():
    files = sorted(PACKAGE.rglob("*.py"))
    assert len(files) > 50
    used: set = set()
    violations = [line for path in files for line in upward_imports(path, used=used)]
    assert not violations, "imports that run up the layers:\n" + "\n".join(violations)
    assert used == set(ALLOWED_UPWARD), f"exceptions no longer needed: {set(ALLOWED_UPWARD) - used}"


def test_formats_layer_imports_nothing_of_amlvision_above_it():
    """The bottom layer stands alone: its files import only the standard library, numpy and themselves."""
    for path in sorted((PACKAGE / "formats").rglob("*.py")) + sorted((PACKAGE / "ctf").rglob("*.py")):
        for imported, line in imported_modules(path):
            assert layer_of(imported) == 0, f"{path}:{line} imports {imported}"


def test_the_check_sees_upward_imports_even_lazy_and_relative_ones():
    """The checker must catch a violation (else the tests above prove nothing)."""
    path = PACKAGE / "formats" / "atomic.py"
    source = path.read_text(encoding="utf-8")
    assert upward_imports(path, source) == []
    lazy = source + "\n\ndef _f():\n    from amlvision.data.resolve import resolve\n"
    assert "amlvision.data.resolve (data)" in upward_imports(path, lazy)[0]
    relative = source + "\nfrom ..training import loop\n"
    assert "amlvision.training (training)" in upward_imports(path, relative)[0]
    assert "amlvision.submit (run targets)" in upward_imports(path, source + "\nfrom amlvision import submit\n")[0]
