"""Print the top-k labels of image files with a model directory's ONNX model (no PyTorch needed).

Uses the same preprocessing and ONNX Runtime code as score.py, so a file gives the same answer here
as when it is sent to the scoring container.
"""

from __future__ import annotations

import argparse
import json
import sys

from amlvision.inference.decode import decode_file_for_model
from amlvision.inference.errors import InputError
from amlvision.inference.predictor import Predictor

CHUNK = 256  # images decoded and scored at a time, to bound memory on long file lists


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model_dir", help="model directory with model.onnx, labels.json, preprocess.json")
    parser.add_argument("images", nargs="+", help="image files (PNG, JPEG, TIFF, BMP)")
    parser.add_argument("--top-k", type=int, default=3, help="labels per image (default 3)")
    parser.add_argument("--json", action="store_true", help="print JSON in the scoring service's format")


def run(args: argparse.Namespace) -> int:
    try:
        predictor = Predictor(args.model_dir)
    except (FileNotFoundError, ValueError) as exc:
        print(f"amlvision predict: {exc}", file=sys.stderr)
        return 2
    if not 1 <= args.top_k <= len(predictor.labels):
        print(f"amlvision predict: --top-k must be from 1 to {len(predictor.labels)}", file=sys.stderr)
        return 2
    results = []
    try:
        for start in range(0, len(args.images), CHUNK):
            paths = args.images[start : start + CHUNK]
            images = [decode_file_for_model(p, preprocess=predictor.preprocess) for p in paths]
            results += list(zip(paths, predictor.predict_images(images, args.top_k), strict=True))
    except InputError as exc:
        print(f"amlvision predict: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps({"predictions": [{"file": path, **pred.to_json()} for path, pred in results]}, indent=2))
    else:
        for path, pred in results:
            ranked = "  ".join(f"{lab} {p:.4f}" for lab, p in zip(pred.labels, pred.probabilities, strict=True))
            print(f"{path}\t{ranked}")
    return 0
