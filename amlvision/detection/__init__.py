"""Object detection: box annotations, their file formats, and (later) training and evaluation.

The annotation types in :mod:`amlvision.detection.annotations` are the contract every reader
returns and every writer, trainer, evaluator and report takes (docs/CONTRACTS.md).
"""
