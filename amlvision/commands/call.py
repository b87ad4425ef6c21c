"""Send image files to a scoring endpoint the way a client would, and print the answer.

``--as base64`` (default) sends the encoded files in ``{"images": [...]}``; the server decodes and
resizes them. ``--as array`` decodes them here and sends the pixels as a float32 ``data`` array
(NHWC, 0-255); give ``--model-dir`` to resize them with the model's own preprocessing first.
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import numpy as np
import requests

from amlvision.inference.decode import decode_image_file
from amlvision.inference.errors import InputError


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("url", help="scoring URL, e.g. http://127.0.0.1:5001/score (/score is added if absent)")
    parser.add_argument("images", nargs="+", help="image files to send")
    parser.add_argument("--key", help="endpoint key or token, sent as 'Authorization: Bearer KEY'")
    parser.add_argument("--as", dest="mode", choices=("base64", "array"), default="base64",
                        help="send encoded files (base64, default) or decoded pixels (array)")  # fmt: skip
    parser.add_argument("--model-dir", help="with --as array: resize with this model's preprocess.json")
    parser.add_argument("--channels", type=int, default=3, choices=(1, 3), help="with --as array: 1 or 3")
    parser.add_argument("--top-k", type=int, help="labels per image (server default otherwise)")
    parser.add_argument("--score-threshold", type=float, help="detection models: keep boxes scoring at least this")
    parser.add_argument("--max-detections", type=int, help="detection models: at most this many boxes per image")
    parser.add_argument("--batch", type=int, default=64, help="images per request (default 64)")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per request (default 60)")
    parser.add_argument("--json", action="store_true", help="print the server's JSON answers")


def scoring_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.path in ("", "/"):
        parts = parts._replace(path="/score")
    return urlunsplit(parts)


def base64_body(paths: list[str]) -> dict:
    return {"images": [base64.b64encode(Path(p).read_bytes()).decode("ascii") for p in paths]}


def array_body(paths: list[str], channels: int, model_dir: str | None) -> dict:
    if model_dir:
        from amlvision.inference.preprocess import PreprocessConfig

        pre = PreprocessConfig.load(Path(model_dir) / "preprocess.json")
        images = [pre.resize_pixels(decode_image_file(p, channels=pre.channels)) for p in paths]
    else:
        images = [decode_image_file(p, channels=channels) for p in paths]
    shapes = {im.shape for im in images}
    if len(shapes) > 1:
        raise InputError(f"images have different sizes {sorted(shapes)}; pass --model-dir to resize them")
    return {"data": np.stack(images).tolist(), "layout": "NHWC"}


def run(args: argparse.Namespace) -> int:
    url = scoring_url(args.url)
    headers = {"Authorization": f"Bearer {args.key}"} if args.key else {}
    session = requests.Session()
    results: list[tuple[str, dict]] = []
    for start in range(0, len(args.images), max(1, args.batch)):
        paths = args.images[start : start + max(1, args.batch)]
        try:
            body = base64_body(paths) if args.mode == "base64" else array_body(paths, args.channels, args.model_dir)
        except (OSError, InputError) as exc:
            print(f"amlvision call: {exc}", file=sys.stderr)
            return 2
        options = {"top_k": args.top_k, "score_threshold": args.score_threshold, "max_detections": args.max_detections}
        body.update({name: value for name, value in options.items() if value is not None})
        try:
            response = session.post(url, json=body, headers=headers, timeout=args.timeout)
        except requests.RequestException as exc:
            print(f"amlvision call: {url}: {exc}", file=sys.stderr)
            return 1
        if response.status_code != 200:
            print(f"amlvision call: HTTP {response.status_code} from {url}: {response.text.strip()}", file=sys.stderr)
            return 1
        answer = response.json()
        results += list(zip(paths, answer["predictions"], strict=True))
    if results and isinstance(results[0][1], list):  # a detection model: a list of boxes per image
        _print_detections(results, args.json)
    elif args.json:
        print(json.dumps({"predictions": [{"file": path, **pred} for path, pred in results]}, indent=2))
    else:
        for path, pred in results:
            ranked = "  ".join(f"{t['label']} {t['probability']:.4f}" for t in pred["top_k"])
            print(f"{path}\t{ranked}")
    return 0


def _print_detections(results: list[tuple[str, list]], as_json: bool) -> None:
    """As ``amlvision predict`` prints a detection model's answer."""
    if as_json:
        print(json.dumps({"files": [path for path, _ in results], "predictions": [p for _, p in results]}, indent=2))
        return
    for path, found in results:
        print(f"{path}\t{len(found)} detection(s)")
        for d in found:
            print(f"  {d['label']}\t{d['score']:.4f}\t" + " ".join(f"{v:.1f}" for v in d["box"]))
