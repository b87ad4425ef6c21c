"""Parse one scoring request body into the model's input tensor, or say exactly what is wrong.

Accepted bodies (docs/serving.md):

- ``{"data": [...]}``: a float32 array, one image ``C,H,W`` / ``H,W,C`` or a batch ``N,C,H,W`` /
  ``N,H,W,C``, in 0-255 pixel units (``"normalized": true`` if already ``(pixel - mean) / std``;
  ``"layout": "NCHW"|"NHWC"`` when the shape alone is ambiguous);
- ``{"image": "<base64>"}`` or ``{"images": ["<base64>", ...]}``: encoded PNG/JPEG/TIFF/BMP files of any
  size, decoded and resized by the model's own preprocessing (a ``data:image/...;base64,`` prefix is
  allowed);
- raw image bytes with an ``image/*`` (or ``application/octet-stream``) content type.

Every body may carry ``"top_k": K`` (JSON) or ``?top_k=K`` (query string).
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass

import numpy as np

from amlvision.inference.decode import decode_image_bytes
from amlvision.inference.errors import InputError
from amlvision.inference.preprocess import PreprocessConfig
from amlvision.serving.limits import Limits

JSON_KEYS = ("data", "image", "images")
OPTION_KEYS = ("top_k", "layout", "normalized")
RAW_CONTENT_TYPES = ("image/", "application/octet-stream")


@dataclass(frozen=True)
class ParsedRequest:
    model_input: np.ndarray  # normalised float32 NCHW
    top_k: int | None


def is_raw_image(content_type: str | None) -> bool:
    return bool(content_type) and content_type.split(";")[0].strip().lower().startswith(RAW_CONTENT_TYPES)


def parse_top_k(value: object, where: str, n_classes: int) -> int:
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise InputError(f"{where} must be an integer from 1 to {n_classes}, got {value!r}")
    if not 1 <= value <= n_classes:
        raise InputError(f"{where} must be from 1 to {n_classes} (the number of classes), got {value}")
    return value


def parse_body(
    body: bytes,
    content_type: str | None,
    preprocess: PreprocessConfig,
    limits: Limits,
    n_classes: int,
) -> ParsedRequest:
    if not body:
        raise InputError(
            'empty request body: POST JSON with "data", "image" or "images", or raw image bytes '
            "with Content-Type image/png (or image/jpeg, image/tiff, image/bmp)"
        )
    if len(body) > limits.max_body_bytes:
        raise InputError(f"request body of {len(body):,} bytes exceeds the limit of {limits.max_body_bytes:,}")
    if is_raw_image(content_type):
        image = decode_image_bytes(
            body,
            name="request body",
            channels=preprocess.channels,
            max_pixels=limits.max_image_pixels,
            max_bytes=limits.max_image_bytes,
        )
        return ParsedRequest(preprocess.images_to_input([image]), None)
    return _parse_json(body, preprocess, limits, n_classes)


def _parse_json(body: bytes, preprocess: PreprocessConfig, limits: Limits, n_classes: int) -> ParsedRequest:
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise InputError(
            f'request body is not valid JSON ({exc}); send a JSON object with "data", "image" or '
            '"images", or raw image bytes with an image/* Content-Type'
        ) from None
    if not isinstance(document, dict):
        raise InputError(f"request JSON must be an object, got {type(document).__name__}")
    unknown = sorted(set(document) - set(JSON_KEYS) - set(OPTION_KEYS))
    if unknown:
        raise InputError(f"unknown field(s) {unknown}; allowed: {list(JSON_KEYS + OPTION_KEYS)}")
    given = [k for k in JSON_KEYS if k in document]
    if len(given) != 1:
        raise InputError(f'request JSON needs exactly one of "data", "image", "images"; got {given or "none"}')
    top_k = parse_top_k(document["top_k"], "'top_k'", n_classes) if "top_k" in document else None
    key = given[0]
    if key != "data" and ("layout" in document or "normalized" in document):
        raise InputError("'layout' and 'normalized' apply to \"data\" arrays only")
    if key == "data":
        return ParsedRequest(_array_input(document, preprocess, limits), top_k)
    encoded = [document["image"]] if key == "image" else document["images"]
    if key == "images" and not isinstance(encoded, list):
        raise InputError(f"'images' must be a list of base64 strings, got {type(encoded).__name__}")
    if not encoded:
        raise InputError("'images' is empty")
    if len(encoded) > limits.max_images:
        raise InputError(f"{len(encoded)} images exceed the limit of {limits.max_images} per request")
    images = [
        decode_image_bytes(
            _b64decode(item, "'image'" if key == "image" else f"images[{i}]", limits),
            name="'image'" if key == "image" else f"images[{i}]",
            channels=preprocess.channels,
            max_pixels=limits.max_image_pixels,
            max_bytes=limits.max_image_bytes,
        )
        for i, item in enumerate(encoded)
    ]
    return ParsedRequest(preprocess.images_to_input(images), top_k)


def _array_input(document: dict, preprocess: PreprocessConfig, limits: Limits) -> np.ndarray:
    data = document["data"]
    if not isinstance(data, list):
        raise InputError(f"'data' must be a nested list of numbers, got {type(data).__name__}")
    normalized = document.get("normalized", False)
    if not isinstance(normalized, bool):
        raise InputError(f"'normalized' must be true or false, got {normalized!r}")
    model_input = preprocess.array_to_input(data, layout=document.get("layout"), normalized=normalized)
    if len(model_input) > limits.max_images:
        raise InputError(f"'data' holds {len(model_input)} images, over the limit of {limits.max_images} per request")
    return model_input


def _b64decode(item: object, where: str, limits: Limits) -> bytes:
    if not isinstance(item, str):
        raise InputError(f"{where} must be a base64 string, got {type(item).__name__}")
    if item.startswith("data:"):
        header, _, item = item.partition(",")
        if ";base64" not in header:
            raise InputError(f"{where}: data URL must be base64-encoded (data:image/png;base64,...)")
    # base64 grows data by 4/3; refuse oversized strings before allocating the decoded copy.
    if len(item) * 3 // 4 > limits.max_image_bytes + 3:
        raise InputError(
            f"{where}: about {len(item) * 3 // 4:,} bytes exceeds the limit of {limits.max_image_bytes:,} per image"
        )
    try:
        return base64.b64decode("".join(item.split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InputError(f"{where}: not valid base64 ({exc})") from None
