"""Execute the project's notebooks with injected parameters, in a kernel running this very Python.

Parameters follow papermill's convention: the cell tagged ``parameters`` holds the defaults a
person runs with; ``execute`` inserts a cell tagged ``injected-parameters`` right after it that
overrides some of them (the test suite's small sizes). The kernel is started from a kernelspec
written into a temporary folder that names ``sys.executable``, so the notebook runs in the same
virtual environment as the caller on any machine, whatever kernels the user has installed.

Render a notebook to HTML after running it with its defaults (what a person sees)::

    python -m amlvision.testing.notebooks notebooks/cifar10_walkthrough.ipynb --html build/notebooks/walkthrough.html
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import nbformat
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient

KERNEL_NAME = "amlvision-python"


def parameters_cell_index(nb: nbformat.NotebookNode) -> int:
    """Index of the one cell tagged ``parameters``."""
    found = [i for i, cell in enumerate(nb.cells) if "parameters" in cell.get("metadata", {}).get("tags", [])]
    if len(found) != 1:
        raise ValueError(f"expected exactly one cell tagged 'parameters', found {len(found)}")
    return found[0]


def inject_parameters(nb: nbformat.NotebookNode, parameters: dict[str, Any]) -> nbformat.NotebookNode:
    """Insert an ``injected-parameters`` cell after the ``parameters`` cell; names must exist there."""
    index = parameters_cell_index(nb)
    tree = ast.parse(nb.cells[index].source)
    declared = {t.id for node in tree.body if isinstance(node, ast.Assign) for t in node.targets if hasattr(t, "id")}
    unknown = sorted(set(parameters) - declared)
    if unknown:
        raise ValueError(f"parameters {unknown} are not declared in the parameters cell (declared: {sorted(declared)})")
    source = "# Injected parameters\n" + "".join(f"{name} = {value!r}\n" for name, value in parameters.items())
    cell = nbformat.v4.new_code_cell(source, metadata={"tags": ["injected-parameters"]})
    nb.cells.insert(index + 1, cell)
    return nb


def _kernel_manager(spec_root: Path) -> KernelManager:
    spec_dir = spec_root / "kernels" / KERNEL_NAME
    spec_dir.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    spec = {"argv": argv, "display_name": f"Python ({sys.executable})", "language": "python"}
    (spec_dir / "kernel.json").write_text(json.dumps(spec))
    specs = KernelSpecManager(kernel_dirs=[str(spec_root / "kernels")], ensure_native_kernel=False)
    return KernelManager(kernel_name=KERNEL_NAME, kernel_spec_manager=specs)


def execute(
    path: str | Path,
    parameters: dict[str, Any] | None = None,
    *,
    cwd: str | Path | None = None,
    cell_timeout: float = 600.0,
) -> nbformat.NotebookNode:
    """Run every cell of ``path`` (in ``cwd``, default its folder) and return the executed notebook.

    A failing cell raises ``nbclient.exceptions.CellExecutionError`` naming the cell and the error;
    a cell running longer than ``cell_timeout`` seconds raises ``CellTimeoutError``.
    """
    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    if parameters:
        inject_parameters(nb, parameters)
    with tempfile.TemporaryDirectory(prefix="amlvision-kernel-") as spec_root:
        client = NotebookClient(
            nb,
            km=_kernel_manager(Path(spec_root)),
            timeout=cell_timeout,
            resources={"metadata": {"path": str(Path(cwd or path.parent).resolve())}},
        )
        client.execute()
    return nb


def cells_by_tag(nb: nbformat.NotebookNode) -> dict[str, nbformat.NotebookNode]:
    """Each tagged cell under each of its tags (a tag used twice is an error)."""
    tagged: dict[str, nbformat.NotebookNode] = {}
    for cell in nb.cells:
        for tag in cell.get("metadata", {}).get("tags", []):
            if tag in tagged:
                raise ValueError(f"tag {tag!r} is used by more than one cell")
            tagged[tag] = cell
    return tagged


def text_output(cell: nbformat.NotebookNode) -> str:
    """All text a cell printed or displayed (streams, ``text/plain`` and ``text/html``)."""
    parts = []
    for output in cell.get("outputs", []):
        if output.output_type == "stream":
            parts.append(output.text)
        elif output.output_type in ("display_data", "execute_result"):
            parts += [output.data.get("text/plain", ""), output.data.get("text/html", "")]
    return "\n".join(parts)


def outputs_of_type(cell: nbformat.NotebookNode, mime: str) -> list[str]:
    """The ``mime`` payloads (e.g. ``image/png`` base64 text) a cell displayed."""
    return [
        output.data[mime]
        for output in cell.get("outputs", [])
        if output.output_type in ("display_data", "execute_result") and mime in output.data
    ]


def cells_with_outputs(nb: nbformat.NotebookNode) -> list[int]:
    """Indexes of code cells that carry outputs or an execution count (a notebook committed unstripped)."""
    return [
        i
        for i, cell in enumerate(nb.cells)
        if cell.cell_type == "code" and (cell.get("outputs") or cell.get("execution_count") is not None)
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m amlvision.testing.notebooks", description=__doc__.split("\n")[0])
    parser.add_argument("notebook")
    parser.add_argument("--html", help="write the executed notebook as HTML here")
    parser.add_argument("--out", help="write the executed notebook (.ipynb) here")
    parser.add_argument("--param", action="append", default=[], metavar="NAME=VALUE", help="Python literal")
    parser.add_argument("--cell-timeout", type=float, default=1800.0)
    args = parser.parse_args(argv)
    parameters = {}
    for item in args.param:
        name, _, value = item.partition("=")
        parameters[name.strip()] = ast.literal_eval(value)
    nb = execute(args.notebook, parameters, cell_timeout=args.cell_timeout)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, args.out)
    if args.html:
        from nbconvert import HTMLExporter

        body, _ = HTMLExporter().from_notebook_node(nb)
        Path(args.html).parent.mkdir(parents=True, exist_ok=True)
        Path(args.html).write_text(body, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
