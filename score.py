"""Azure ML entry script: azmlinfsrv calls init() once per worker and run() for each /score request.

Thin on purpose: the logic lives in ``amlvision.serving`` and is shared with ``amlvision predict`` and
``amlvision serve``. The model directory is ``AZUREML_MODEL_DIR`` (or a folder below it holding
model.onnx), falling back to ``outputs/``. Request formats and limits: docs/serving.md.
"""

from amlvision.serving.entry import init, run

__all__ = ["init", "run"]
