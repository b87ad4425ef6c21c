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

from amlvision.inference.decode import PixelBudget, decode_for_model
from amlvision.inference.errors import InputError
from amlvision.inference.preprocess import PreprocessConfig
from amlvision.serving.limits import Limits

JSON_KEYS = ("data", "image", "images")
OPTION_KEYS = ("top_k", "layout", "normalized")
RAW_CONTENT_TYPES = ("image/", "application/octet-stream")
ECHO_CHARS = 60  # at most this much of a client's own input is quoted back in a 400 message


@dataclass(frozen=True)
class ParsedRequest:
    model_input: np.ndarray  # normalised float32 NCHW
    top_k: int | None


def is_raw_image(content_type: str | None) -> bool:
    return bool(content_type) and content_type.split(";")[0].strip().lower().startswith(RAW_CONTENT_TYPES)


def echo(value: object) -> str:
    """A short description of client input for a 400 message: it never grows with what was sent."""
    if isinstance(value, list | dict):
        return f"a {type(value).__name__} of {len(value):,} items"
    text = repr(value[: ECHO_CHARS + 1] if isinstance(value, str | bytes) else value)
    if len(text) > ECHO_CHARS:
        size = f" ({len(value):,} characters)" if isinstance(value, str | bytes) else ""
        text = text[:ECHO_CHARS] + "..." + size
    return text


def parse_top_k(value: object, where: str, n_classes: int) -> int:
    # ASCII digits only: str.isdigit() also accepts "²" and other Unicode digits that int() refuses; and
    # short, since int() refuses strings of over 4,300 digits.
    digits = value.strip().lstrip("-") if isinstance(value, str) else ""
    if digits.isascii() and digits.isdigit() and len(digits) <= 9:
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise InputError(f"{where} must be an integer from 1 to {n_classes}, got {echo(value)}")
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
        image = decode_for_model(
            body,
            name="request body",
            preprocess=preprocess,
            max_pixels=limits.max_image_pixels,
            max_bytes=limits.max_image_bytes,
            budget=PixelBudget(limits.max_request_pixels),
        )
        return ParsedRequest(preprocess.images_to_input([image]), None)
    return _parse_json(body, preprocess, limits, n_classes)


def json_value_limits(preprocess: PreprocessConfig, limits: Limits) -> tuple[int, int]:
    """(values, lists) the largest valid JSON body can hold: ``max_images`` images as nested lists.

    ``json.loads`` turns every value into a Python object of 24-60 bytes, so a 64 MiB body of ``{}``
    or ``0.0`` would cost gigabytes before any check on the result could run. Counting commas and
    brackets in the raw bytes first (a C loop, ~20 ms for 64 MiB) bounds that to what a valid
    request needs.
    """
    c, h, w = preprocess.chw
    values = limits.max_images * (c * h * w + 2) + 64  # numbers, or base64 strings (+ data-URL commas)
    lists = 2 + limits.max_images * (1 + max(c + c * h, h + h * w))  # NCHW or NHWC nesting
    return values, lists


def _check_json_size(body: bytes, preprocess: PreprocessConfig, limits: Limits) -> None:
    max_values, max_lists = json_value_limits(preprocess, limits)
    objects = body.count(b"{")
    if objects > 1:
        raise InputError(
            f"request JSON holds {objects:,} objects ('{{'); a request is one object whose values are lists "
            "of numbers or base64 strings"
        )
    values = body.count(b",") + 1
    if values > max_values:
        raise InputError(
            f"request JSON holds {values:,} values, more than the {max_values:,} needed by the limit of "
            f"{limits.max_images} images (AMLVISION_MAX_IMAGES) of {list(preprocess.chw)}"
        )
    lists = body.count(b"[")
    if lists > max_lists:
        raise InputError(
            f"request JSON holds {lists:,} lists, more than the {max_lists:,} needed by the limit of "
            f"{limits.max_images} images (AMLVISION_MAX_IMAGES) of {list(preprocess.chw)}"
        )


def _parse_json(body: bytes, preprocess: PreprocessConfig, limits: Limits, n_classes: int) -> ParsedRequest:
    _check_json_size(body, preprocess, limits)
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
        shown = ", ".join(echo(k) for k in unknown[:5]) + (f" and {len(unknown) - 5} more" if len(unknown) > 5 else "")
        raise InputError(f"unknown field(s) {shown}; allowed: {list(JSON_KEYS + OPTION_KEYS)}")
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
    budget = PixelBudget(limits.max_request_pixels)
    pixels = np.empty((len(encoded), *preprocess.chw), dtype=np.float32)
    for i, item in enumerate(encoded):  # one image at a time: decoded, resized, then dropped
        name = "'image'" if key == "image" else f"images[{i}]"
        image = decode_for_model(
            _b64decode(item, name, limits),
            name=name,
            preprocess=preprocess,
            max_pixels=limits.max_image_pixels,
            max_bytes=limits.max_image_bytes,
            budget=budget,
        )
        pixels[i] = image.transpose(2, 0, 1)
        encoded[i] = None  # the base64 text is no longer needed
    return ParsedRequest(preprocess.normalise(pixels), top_k)


def _array_input(document: dict, preprocess: PreprocessConfig, limits: Limits) -> np.ndarray:
    data = document["data"]
    if not isinstance(data, list):
        raise InputError(f"'data' must be a nested list of numbers, got {type(data).__name__}")
    normalized = document.get("normalized", False)
    if not isinstance(normalized, bool):
        raise InputError(f"'normalized' must be true or false, got {echo(normalized)}")
    if _depth(data) == 4 and len(data) > limits.max_images:  # before numpy copies every value
        raise InputError(f"'data' holds {len(data)} images, over the limit of {limits.max_images} per request")
    model_input = preprocess.array_to_input(data, layout=document.get("layout"), normalized=normalized)
    if len(model_input) > limits.max_images:
        raise InputError(f"'data' holds {len(model_input)} images, over the limit of {limits.max_images} per request")
    return model_input


def _depth(value: object) -> int:
    """Nesting depth along the first elements of nested lists (a cheap look before ``np.asarray``)."""
    depth = 0
    while isinstance(value, list) and depth < 8:
        depth += 1
        value = value[0] if value else None
    return depth


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
