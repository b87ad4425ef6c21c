"""PyTorch baseline entry script for bench/serve_latency.py: azmlinfsrv + the same request parsing as
score.py, with the model run by PyTorch instead of ONNX Runtime. Only the engine differs, so the
ratio measures what the ONNX export buys. Needs a model directory from amlvision.testing.tiny_model
(model.pt + tiny_model.json say how to rebuild the module).
"""

import importlib
import json
import os
from pathlib import Path

import numpy as np
import torch
from azureml_inference_server_http.api.aml_request import rawhttp
from azureml_inference_server_http.api.aml_response import AMLResponse

from amlvision.inference.errors import InputError
from amlvision.inference.predictor import Prediction
from amlvision.inference.preprocess import PreprocessConfig
from amlvision.serving.limits import Limits
from amlvision.serving.payload import parse_body

_state = {}


def init():
    model_dir = Path(os.environ["AZUREML_MODEL_DIR"])
    torch.set_num_threads(int(os.environ.get("AMLVISION_ORT_THREADS", "1") or 1))
    meta = json.loads((model_dir / "tiny_model.json").read_text())
    module_name, builder = meta["builder"].split(":")
    model = getattr(importlib.import_module(module_name), builder)(meta["n_classes"])
    model.load_state_dict(torch.load(model_dir / "model.pt", weights_only=True))
    _state.update(
        model=model.eval(),
        preprocess=PreprocessConfig.load(model_dir / "preprocess.json"),
        labels=json.loads((model_dir / "labels.json").read_text()),
        limits=Limits.from_env(),
    )
    with torch.inference_mode():
        model(torch.zeros(1, *_state["preprocess"].chw))


@rawhttp
def run(request):
    labels = _state["labels"]
    try:
        parsed = parse_body(request.get_data(), request.content_type, _state["preprocess"], _state["limits"],
                            len(labels))  # fmt: skip
    except InputError as exc:
        return AMLResponse({"message": str(exc)}, 400, json_str=True)
    with torch.inference_mode():
        probs = torch.softmax(_state["model"](torch.from_numpy(parsed.model_input)).double(), dim=1).numpy()
    k = parsed.top_k or 3
    order = np.argsort(-probs, axis=1, kind="stable")[:, :k]
    predictions = [
        Prediction(tuple(labels[j] for j in row), tuple(float(probs[i, j]) for j in row)).to_json()
        for i, row in enumerate(order)
    ]
    return AMLResponse({"predictions": predictions}, 200, json_str=True)
