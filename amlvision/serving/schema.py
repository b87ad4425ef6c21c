"""Publish score.py's request and response schema with inference-schema, for ``GET /swagger.json``.

Why this is attached at init() time rather than with decorators on ``run``: azmlinfsrv refuses a
``run()`` that is both ``@rawhttp`` (needed for raw ``image/*`` bodies) and ``@input_schema``. It
inspects ``run`` for both when it loads score.py, but builds the swagger document only after
``init()`` returns. Registering the schema for ``run`` inside ``init()`` therefore keeps the raw
request handling *and* lets the server generate swagger 2 and 3 documents from inference-schema.
The schema is built from the loaded model, so its examples have the model's real input shape and
class names.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Callable

import numpy as np
from inference_schema.parameter_types.numpy_parameter_type import NumpyParameterType
from inference_schema.parameter_types.standard_py_parameter_type import StandardPythonParameterType
from inference_schema.schema_decorators import input_schema, output_schema
from PIL import Image

from amlvision.inference.detection import DEFAULT_MAX_DETECTIONS, DEFAULT_SCORE_THRESHOLD, DetectionPredictor
from amlvision.inference.predictor import Predictor


def _example_png(height: int, width: int, channels: int) -> str:
    mode = "L" if channels == 1 else "RGB"
    buf = io.BytesIO()
    Image.new(mode, (width, height)).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def register_detection(run: Callable, predictor: DetectionPredictor) -> None:
    """The schema of a detection model: encoded images of any size, two options, a list of boxes per image."""
    png = _example_png(predictor.preprocess.min_size, predictor.preprocess.min_size, 3)
    example_output = {
        "predictions": [
            [
                {"label": predictor.labels[0], "score": 0.92, "box": [12.5, 40.0, 210.25, 305.75]},
                {"label": predictor.labels[-1], "score": 0.41, "box": [300.0, 18.5, 362.0, 96.0]},
            ]
        ]
    }
    decorators = [
        input_schema("image", StandardPythonParameterType(png), optional=True),
        input_schema("images", StandardPythonParameterType([png]), optional=True),
        input_schema("score_threshold", StandardPythonParameterType(DEFAULT_SCORE_THRESHOLD), optional=True),
        input_schema("max_detections", StandardPythonParameterType(DEFAULT_MAX_DETECTIONS), optional=True),
        output_schema(StandardPythonParameterType(example_output)),
    ]

    def stand_in(image=None, images=None, score_threshold=None, max_detections=None):
        raise NotImplementedError("schema stand-in; never called")

    _apply(run, stand_in, decorators)


def register(run: Callable, predictor: Predictor | DetectionPredictor) -> None:
    """Record the input/output schema of ``run`` with inference-schema (see module docstring)."""
    if isinstance(predictor, DetectionPredictor):
        register_detection(run, predictor)
        return
    pre = predictor.preprocess
    png = _example_png(pre.height, pre.width, pre.channels)
    top = predictor.labels[: min(3, len(predictor.labels))]
    example_output = {
        "predictions": [
            {
                "label": top[0],
                "probability": 0.9,
                "top_k": [{"label": lab, "probability": p} for lab, p in zip(top, (0.9, 0.07, 0.03), strict=False)],
            }
        ]
    }
    decorators = [
        input_schema("data", NumpyParameterType(np.zeros((1, *pre.chw), dtype=np.float32)), optional=True),
        input_schema("image", StandardPythonParameterType(png), optional=True),
        input_schema("images", StandardPythonParameterType([png]), optional=True),
        input_schema("top_k", StandardPythonParameterType(3), optional=True),
        input_schema("layout", StandardPythonParameterType("NCHW"), optional=True),
        input_schema("normalized", StandardPythonParameterType(False), optional=True),
        output_schema(StandardPythonParameterType(example_output)),
    ]

    # inference-schema keys schemas by the innermost function's module and name, and lists that
    # function's own arguments as inputs too. Decorating a stand-in with run's identity but the
    # request fields as arguments publishes exactly the JSON fields, not run()'s flask request.
    def stand_in(data=None, image=None, images=None, top_k=None, layout=None, normalized=None):
        raise NotImplementedError("schema stand-in; never called")

    _apply(run, stand_in, decorators)


def _apply(run: Callable, stand_in: Callable, decorators: list[Callable]) -> None:
    """Decorate ``stand_in`` under ``run``'s identity, so inference-schema files the schema for ``run``."""
    stand_in.__module__, stand_in.__name__, stand_in.__qualname__ = run.__module__, run.__name__, run.__qualname__
    wrapped = stand_in
    for decorate in decorators:
        wrapped = decorate(wrapped)
