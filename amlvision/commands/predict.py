"""Print the top-k labels (classification) or the boxes (detection) of image files with a model directory.

Uses the same preprocessing and ONNX Runtime code as score.py (no PyTorch needed), so a file gives the
same answer here as when it is sent to the scoring container. ``--draw`` saves a detection model's
boxes, labels and scores drawn on the image.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from amlvision.data.images import ImageReadError, load_image
from amlvision.inference.decode import decode_file_for_model
from amlvision.inference.detection import (
    DEFAULT_MAX_DETECTIONS,
    DEFAULT_SCORE_THRESHOLD,
    DetectionPredictor,
    load_predictor,
    parse_max_detections,
    parse_score_threshold,
)
from amlvision.inference.errors import InputError

CHUNK = 256  # images decoded and scored at a time, to bound memory on long file lists


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model_dir", help="model directory with model.onnx, labels.json, preprocess.json")
    parser.add_argument("images", nargs="+", help="image files (PNG, JPEG, TIFF, BMP)")
    parser.add_argument("--top-k", type=int, default=3, help="labels per image (default 3)")
    parser.add_argument("--json", action="store_true", help="print JSON in the scoring service's format")
    detection = parser.add_argument_group("detection models")
    detection.add_argument("--draw", metavar="PATH", help="save the image with its boxes drawn (one image: a file "
                           "such as out.png; several: a folder, one <name>.png each)")  # fmt: skip
    detection.add_argument("--score-threshold", default=DEFAULT_SCORE_THRESHOLD, metavar="S",
                           help=f"keep boxes scoring at least S, 0-1 (default {DEFAULT_SCORE_THRESHOLD})")  # fmt: skip
    detection.add_argument("--max-detections", default=DEFAULT_MAX_DETECTIONS, metavar="N",
                           help=f"at most N boxes per image (default {DEFAULT_MAX_DETECTIONS})")  # fmt: skip


def run(args: argparse.Namespace) -> int:
    try:
        predictor = load_predictor(args.model_dir)
    except (FileNotFoundError, ValueError) as exc:
        print(f"amlvision predict: {exc}", file=sys.stderr)
        return 2
    if isinstance(predictor, DetectionPredictor):
        return _run_detection(args, predictor)
    if args.draw:
        print(f"amlvision predict: --draw draws boxes and is for detection models; this is a "
              f"{predictor.preprocess.task} model", file=sys.stderr)  # fmt: skip
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


def _draw_paths(images: list[str], draw: str) -> list[Path]:
    """Where ``--draw`` saves each image: the path itself for one image, ``<folder>/<stem>.png`` for several."""
    if len(images) == 1 and Path(draw).suffix:
        return [Path(draw)]
    stems = [Path(p).stem for p in images]
    if len(set(stems)) != len(stems):
        raise InputError("--draw: several images share a file name; draw them in separate runs")
    return [Path(draw) / f"{stem}.png" for stem in stems]


def _run_detection(args: argparse.Namespace, predictor: DetectionPredictor) -> int:
    """Boxes per image: a line per detection, or the scoring service's JSON with the files beside it."""
    from amlvision.detection.draw import save_drawing  # Pillow only; loaded when asked to draw

    try:
        threshold = parse_score_threshold(args.score_threshold, "--score-threshold")
        limit = parse_max_detections(args.max_detections, "--max-detections")
        targets = _draw_paths(args.images, args.draw) if args.draw else []
        predictions = []
        for i, path in enumerate(args.images):  # one image at a time: decoded, detected, drawn, dropped
            found = predictor.detect(predictor.decode_file(path), score_threshold=threshold, max_detections=limit)
            predictions.append(found)
            if targets:
                save_drawing(load_image(path, 3), found, targets[i])
    except (InputError, ImageReadError) as exc:
        print(f"amlvision predict: {exc}", file=sys.stderr)
        return 2
    if args.json:
        document = {"files": list(args.images), "predictions": [[d.to_json() for d in f] for f in predictions]}
        print(json.dumps(document, indent=2))
    else:
        for path, found in zip(args.images, predictions, strict=True):
            print(f"{path}\t{len(found)} detection(s)")
            for d in found:
                print(f"  {d.label}\t{d.score:.4f}\t" + " ".join(f"{v:.1f}" for v in d.box))
    for target in targets:
        print(f"drew {target}", file=sys.stderr)
    return 0
