"""Requests and answers of the scoring service for ``task: detection`` models (docs/serving.md).

The same bodies as classification except ``data`` arrays (a detection model takes encoded images of
any size): ``{"image": b64}``, ``{"images": [b64, ...]}`` or raw image bytes, with the options
``score_threshold`` (0-1) and ``max_detections`` (1-1000) in the JSON body or the query string
(the body's win; other query parameters are ignored, as for classification). The same 400 rules
apply: every check of :mod:`amlvision.serving.payload` on bodies, base64 and images (format
allow-list, byte, pixel and per-request pixel limits) is reused, and a body is counted before it
is parsed.

The answer has one entry per image, in request order: the list of its detections, highest score
first, ``{"label", "score", "box": [x1, y1, x2, y2]}`` in the original image's pixels.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

from amlvision.inference.decode import PixelBudget, check_upload, header_pixels
from amlvision.inference.detection import (
    DEFAULT_MAX_DETECTIONS,
    DEFAULT_SCORE_THRESHOLD,
    DetectionPredictor,
    parse_max_detections,
    parse_score_threshold,
)
from amlvision.inference.errors import InputError
from amlvision.serving.limits import Limits
from amlvision.serving.payload import _b64decode, echo, is_raw_image

IMAGE_KEYS = ("image", "images")
OPTION_KEYS = ("score_threshold", "max_detections")
MAX_LISTS = 8  # one is needed ("images"); a few more let a small misdirected "data" array get its own message


@dataclass(frozen=True)
class DetectionOptions:
    score_threshold: float = DEFAULT_SCORE_THRESHOLD
    max_detections: int = DEFAULT_MAX_DETECTIONS


def _options(source: Mapping, *, query: bool) -> DetectionOptions:
    """The options of a JSON body (``query=False``) or a query string; defaults for those not given."""

    def where(name: str) -> str:
        return f"query parameter {name}" if query else f"'{name}'"

    threshold, limit = DEFAULT_SCORE_THRESHOLD, DEFAULT_MAX_DETECTIONS
    if "score_threshold" in source:
        threshold = parse_score_threshold(source["score_threshold"], where("score_threshold"))
    if "max_detections" in source:
        limit = parse_max_detections(source["max_detections"], where("max_detections"))
    return DetectionOptions(threshold, limit)


def _check_json_size(body: bytes, limits: Limits) -> None:
    """A valid body is one object of at most ``max_images`` strings and two options: count before parsing."""
    objects = body.count(b"{")
    if objects > 1:
        raise InputError(
            f"request JSON holds {objects:,} objects ('{{'); a request is one object whose values are base64 "
            "strings and options"
        )
    values = body.count(b",") + 1
    max_values = 2 * limits.max_images + 8  # a data-URL prefix adds a comma per image
    if values > max_values:
        raise InputError(
            f"request JSON holds {values:,} values, more than the {max_values:,} needed by the limit of "
            f"{limits.max_images} images (AMLVISION_MAX_IMAGES)"
        )
    lists = body.count(b"[")
    if lists > MAX_LISTS:
        raise InputError(
            f"request JSON holds {lists:,} lists ('['); a detection request has one ('images'), 'data' arrays are "
            "for classification models"
        )


def answer(
    predictor: DetectionPredictor,
    body: bytes,
    content_type: str | None,
    query: Mapping[str, str],
    limits: Limits,
) -> dict:
    """Decode, run and answer one request body, an image at a time; InputError for the client's mistakes."""
    if not body:
        raise InputError(
            'empty request body: POST JSON with "image" or "images", or raw image bytes with Content-Type '
            "image/png (or image/jpeg, image/tiff, image/bmp)"
        )
    if len(body) > limits.max_body_bytes:
        raise InputError(f"request body of {len(body):,} bytes exceeds the limit of {limits.max_body_bytes:,}")
    budget = PixelBudget(limits.max_request_pixels)
    decode_limits = {"max_pixels": limits.max_image_pixels, "max_bytes": limits.max_image_bytes, "budget": budget}
    options = _options(query, query=True)
    if is_raw_image(content_type):
        image = predictor.decode(body, name="request body", **decode_limits)
        return {"predictions": [_detections(predictor, image, options)]}
    _check_json_size(body, limits)
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise InputError(
            f'request body is not valid JSON ({exc}); send a JSON object with "image" or "images", or raw '
            "image bytes with an image/* Content-Type"
        ) from None
    if not isinstance(document, dict):
        raise InputError(f"request JSON must be an object, got {type(document).__name__}")
    if "data" in document:
        raise InputError(
            "'data' arrays are for classification models; a detection model takes encoded images of any size: "
            'send "image" or "images" (base64) or raw image bytes'
        )
    if "top_k" in document:
        raise InputError("'top_k' is for classification models; a detection model takes 'score_threshold' and "
                         "'max_detections'")  # fmt: skip
    unknown = sorted(set(document) - set(IMAGE_KEYS) - set(OPTION_KEYS))
    if unknown:
        shown = ", ".join(echo(k) for k in unknown[:5]) + (f" and {len(unknown) - 5} more" if len(unknown) > 5 else "")
        raise InputError(f"unknown field(s) {shown}; allowed: {list(IMAGE_KEYS + OPTION_KEYS)}")
    given = [k for k in IMAGE_KEYS if k in document]
    if len(given) != 1:
        raise InputError(f'request JSON needs exactly one of "image", "images"; got {given or "none"}')
    options = _options({**options.__dict__, **document}, query=False)
    key = given[0]
    encoded = [document["image"]] if key == "image" else document["images"]
    if key == "images" and not isinstance(encoded, list):
        raise InputError(f"'images' must be a list of base64 strings, got {type(encoded).__name__}")
    if not encoded:
        raise InputError("'images' is empty")
    if len(encoded) > limits.max_images:
        raise InputError(f"{len(encoded)} images exceed the limit of {limits.max_images} per request")
    names = ["'image'"] if key == "image" else [f"images[{i}]" for i in range(len(encoded))]
    # Every image's base64, format and header first: a bad or over-budget image late in the list is a 400
    # before the model has run on the ones before it.
    for item, name in zip(encoded, names, strict=True):
        data = _b64decode(item, name, limits)
        check_upload(data, name=name, max_bytes=limits.max_image_bytes)
        pixels = header_pixels(data)
        if pixels is not None and pixels <= limits.max_image_pixels:
            budget.spend(pixels, name)
    del decode_limits["budget"]
    predictions = []
    for i, (item, name) in enumerate(zip(encoded, names, strict=True)):  # one at a time: decoded, detected, dropped
        image = predictor.decode(_b64decode(item, name, limits), name=name, **decode_limits)
        encoded[i] = None  # the base64 text is no longer needed
        predictions.append(_detections(predictor, image, options))
    return {"predictions": predictions}


def _detections(predictor: DetectionPredictor, image, options: DetectionOptions) -> list[dict]:
    found = predictor.detect(image, score_threshold=options.score_threshold, max_detections=options.max_detections)
    return [d.to_json() for d in found]
