"""Request limits of the scoring service, configurable with environment variables.

Limits exist so one request cannot exhaust the worker's memory or CPU: a small compressed file can
expand to gigabytes (a decompression bomb), a small JSON body to millions of Python objects, and a
slow client can hold a connection for as long as it likes. docs/serving.md derives the worst-case
worker memory from these values.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields

ENV_PREFIX = "AMLVISION_"


@dataclass(frozen=True)
class Limits:
    max_body_bytes: int = 64 * 1024 * 1024  # AMLVISION_MAX_BODY_BYTES: whole request body
    max_images: int = 256  # AMLVISION_MAX_IMAGES: images (or array rows) per request
    max_image_bytes: int = 16 * 1024 * 1024  # AMLVISION_MAX_IMAGE_BYTES: one encoded image
    max_image_pixels: int = 4096 * 4096  # AMLVISION_MAX_IMAGE_PIXELS: width x height of one image
    # AMLVISION_MAX_REQUEST_PIXELS: width x height summed over all images of one request, as their headers
    # state them (before any decode-time reduction); bounds a request's decoding time.
    max_request_pixels: int = 8 * 4096 * 4096
    body_timeout_s: int = 30  # AMLVISION_BODY_TIMEOUT_S: seconds a client may take to send its body
    default_top_k: int = 3  # AMLVISION_TOP_K: labels per image unless the request asks for another k

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Limits:
        """Defaults overridden by ``AMLVISION_<FIELD>`` variables (positive integers)."""
        environ = os.environ if environ is None else environ
        values = {}
        for field in fields(cls):
            name = ENV_PREFIX + field.name.upper().replace("DEFAULT_", "")
            raw = environ.get(name)
            if raw is None or not raw.strip():
                continue
            try:
                value = int(raw)
            except ValueError:
                raise ValueError(f"{name}={raw!r}: expected a positive integer") from None
            if value <= 0:
                raise ValueError(f"{name}={raw!r}: expected a positive integer")
            values[field.name] = value
        return cls(**values)

    @staticmethod
    def env_names() -> list[str]:
        return [ENV_PREFIX + f.name.upper().replace("DEFAULT_", "") for f in fields(Limits)]
