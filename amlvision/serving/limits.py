"""Request limits of the scoring service, configurable with environment variables.

Limits exist so one request cannot exhaust the worker's memory or CPU: every image is decoded
fully into memory, and a small compressed file can expand to gigabytes (a decompression bomb).
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
