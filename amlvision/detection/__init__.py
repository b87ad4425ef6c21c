"""Object detection: box annotations, their file formats, and (later) training and evaluation.

The annotation types in :mod:`amlvision.detection.annotations` are the contract every reader
returns and every writer, trainer, evaluator and report takes (docs/CONTRACTS.md). One module per
format (``coco``, ``voc``, ``cntk``, ``yolo``) reads and writes it; ``checks`` holds the one rule for
invalid boxes, ``convert`` recognises a format and converts between them, ``report`` is what
``amlvision inspect`` prints (docs/detection.md "Data formats").
"""
