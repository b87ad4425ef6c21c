"""Train an image classifier, evaluate it and export ONNX: ``python train.py --help``.

Thin on purpose: Azure ML runs this file (locally, in Docker, on compute); everything it does lives in
``amlvision.training`` so it is importable and tested. See docs/training.md.
"""

from amlvision.training.loop import main

if __name__ == "__main__":
    raise SystemExit(main())
