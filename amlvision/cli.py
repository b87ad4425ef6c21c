"""The ``amlvision`` command line.

Each sub-command lives in its own module under ``amlvision.commands`` exposing
``register(parser)`` and ``run(args) -> int``. Modules are imported only when their
command runs, so ``amlvision --help`` stays fast and the scoring image (no PyTorch)
can still run the commands that do not need training libraries.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# name -> (module, one-line help). Keep sorted by the order a user meets them.
COMMANDS: dict[str, tuple[str, str]] = {
    "download": ("amlvision.commands.download", "download a public dataset (cifar10) and verify its checksum"),
    "inspect": ("amlvision.commands.inspect", "summarise a source or packed dataset"),
    "pack": ("amlvision.commands.pack", "pack a source into ctf, map or packed format"),
    "why": ("amlvision.commands.why", "measure why classification does badly on box-annotated data (COCO)"),
    "evaluate": ("amlvision.commands.evaluate", "evaluate a trained model directory on a dataset"),
    "predict": ("amlvision.commands.predict", "print top-k labels for image files with ONNX Runtime"),
    "serve": ("amlvision.commands.serve", "run the scoring server locally without Docker"),
    "call": ("amlvision.commands.call", "send images to a scoring endpoint"),
    "deploy": ("amlvision.commands.deploy", "register and deploy the model with the Azure ML SDKs"),
    "submit": ("amlvision.commands.submit", "run train.py locally, in Docker or on Azure ML"),
}


def _parser_for(name: str) -> tuple[argparse.ArgumentParser, object]:
    module_name, help_text = COMMANDS[name]
    module = importlib.import_module(module_name)
    parser = argparse.ArgumentParser(prog=f"amlvision {name}", description=module.__doc__ or help_text)
    module.register(parser)
    return parser, module


def _usage() -> str:
    width = max(len(n) for n in COMMANDS)
    lines = ["usage: amlvision COMMAND [options]", "", "commands:"]
    lines += [f"  {name.ljust(width)}  {help_text}" for name, (_, help_text) in COMMANDS.items()]
    lines += ["", "Run 'amlvision COMMAND --help' for a command's options."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0
    if argv[0] == "--version":
        from amlvision import __version__

        print(__version__)
        return 0
    name = argv[0]
    if name not in COMMANDS:
        print(f"amlvision: unknown command {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    parser, module = _parser_for(name)
    args = parser.parse_args(argv[1:])
    return int(module.run(args) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
