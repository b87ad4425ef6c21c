"""Fixtures for the serving tests: a real trained model directory, real CIFAR-10 test files,
``amlvision predict``'s answers for them, and the catalogue of bad requests every server must refuse.
"""

from __future__ import annotations

import base64
import io
import json
import os
import struct
import subprocess
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from amlvision.testing import tiny_model
from amlvision.testing.datasets import CACHE

# Small limits for the servers under test, so "too large" and "too many" are cheap to send.
TEST_LIMITS = {
    "AMLVISION_MAX_IMAGES": "64",
    "AMLVISION_MAX_IMAGE_BYTES": "200000",
    "AMLVISION_MAX_BODY_BYTES": "4000000",
}
MAX_IMAGES = 64
MAX_BODY_BYTES = 4_000_000


@pytest.fixture(scope="session")
def model_dir(cifar_subset: Path) -> Path:
    """A tiny CNN trained for a few seconds on the cifar_subset train split, exported per CONTRACTS.md.

    Cached by the trainer's source hash, so reruns skip the training.
    """
    return tiny_model.cached_tiny_model(cifar_subset / "train", CACHE)


@pytest.fixture(scope="session")
def test_files(cifar_subset: Path) -> list[Path]:
    """30 real CIFAR-10 test PNGs, 3 per class."""
    files = [p for d in sorted((cifar_subset / "test").iterdir()) for p in sorted(d.glob("*.png"))[:3]]
    assert len(files) == 30
    return files


@pytest.fixture(scope="session")
def predict_answer(model_dir: Path, test_files: list[Path]) -> list[dict]:
    """What ``amlvision predict --json --top-k 3`` prints for the test files (the reference answers)."""
    done = subprocess.run(
        [sys.executable, "-m", "amlvision", "predict", str(model_dir), *map(str, test_files), "--json", "--top-k", "3"],
        capture_output=True, text=True, check=True, env={**os.environ, "OMP_NUM_THREADS": "2"},
    )  # fmt: skip
    answer = json.loads(done.stdout)["predictions"]
    assert [a["file"] for a in answer] == [str(p) for p in test_files]
    return answer


def assert_same_predictions(got: list[dict], expected: list[dict]) -> None:
    """Same labels in the same order, probabilities equal to float32 rounding."""
    assert len(got) == len(expected)
    for g, e in zip(got, expected, strict=True):
        assert [t["label"] for t in g["top_k"]] == [t["label"] for t in e["top_k"]], (g, e)
        np.testing.assert_allclose(
            [t["probability"] for t in g["top_k"]], [t["probability"] for t in e["top_k"]], rtol=0, atol=1e-6
        )


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def png_bomb(width: int = 8000, height: int = 8000) -> bytes:
    """A valid 8-bit gray PNG of ``width x height`` zeros: ~64 KB on the wire, 64 MB decoded."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    compressor = zlib.compressobj(9)
    row = b"\x00" * (width + 1)  # filter byte + pixels
    idat = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def noise_png(size: int = 320, seed: int = 0) -> bytes:
    """An incompressible PNG larger than TEST_LIMITS' 200,000 bytes."""
    pixels = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG")
    return buf.getvalue()


@dataclass(frozen=True)
class BadRequest:
    name: str
    body: bytes
    content_type: str
    message: str  # a fragment the 400 answer's message must contain


def bad_requests(sample_png: bytes) -> list[BadRequest]:
    """Every kind of bad request from the issue, each with the explanation the client must get."""
    good_pixels = np.zeros((1, 3, 32, 32), dtype=np.float32)

    def js(obj: object) -> bytes:
        return json.dumps(obj).encode()

    bomb = png_bomb()
    big = noise_png()
    assert len(big) > 200_000 and len(bomb) < 200_000
    return [
        BadRequest("malformed json", b'{"image": "abc', "application/json", "not valid JSON"),
        BadRequest("json nested too deeply", b'{"data": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "application/json",
                   "100,000 lists, more than"),
        BadRequest("json nested too deeply (few lists)", b'{"data": ' + b"[" * 5_000 + b"]" * 5_000 + b"}",
                   "application/json", "not valid JSON"),
        BadRequest("json not an object", js([1, 2, 3]), "application/json", "must be an object"),
        BadRequest("no input field", js({"top_k": 2}), "application/json", "exactly one of"),
        BadRequest("unknown field", js({"image": b64(sample_png), "colour": 1}), "application/json", "unknown field"),
        BadRequest("bad base64", js({"image": "not base64 at all!"}), "application/json", "not valid base64"),
        BadRequest("bad base64 in list", js({"images": [b64(sample_png), "@@@@"]}), "application/json",
                   "images[1]: not valid base64"),
        BadRequest("non-image bytes (base64)", js({"image": b64(b"hello, this is text")}), "application/json",
                   "not a PNG/JPEG/TIFF/BMP file"),
        BadRequest("non-image bytes (raw)", b"GIF89a definitely not accepted", "image/png",
                   "not a PNG/JPEG/TIFF/BMP file"),
        BadRequest("corrupt png", sample_png[:60], "image/png", "cannot decode image"),
        BadRequest("array wrong rank", js({"data": [[1.0, 2.0, 3.0]]}), "application/json", "2 dimensions"),
        BadRequest("array wrong size", js({"data": np.zeros((1, 3, 16, 16)).tolist()}), "application/json",
                   "the model needs [N, 3, 32, 32]"),
        BadRequest("array ragged", js({"data": [[[1.0, 2.0], [3.0]]]}), "application/json", "rectangular"),
        BadRequest("array of strings", js({"data": [[["a"] * 32] * 32] * 3}), "application/json",
                   "must hold numbers"),
        BadRequest("array beyond float range", js({"data": good_pixels.tolist()}).replace(b"0.0", b"1e400", 1),
                   "application/json", "NaN or infinite"),
        BadRequest("array of booleans", js({"data": [[[True] * 32] * 32] * 3}), "application/json",
                   "must hold numbers"),
        BadRequest("array out of pixel range", js({"data": (good_pixels - 5).tolist()}), "application/json",
                   "outside 0-255"),
        BadRequest("too many images", js({"images": [b64(sample_png)] * (MAX_IMAGES + 1)}), "application/json",
                   f"limit of {MAX_IMAGES}"),
        BadRequest("too many array rows", js({"data": np.zeros((MAX_IMAGES + 1, 3, 32, 32), np.uint8).tolist()}),
                   "application/json", f"limit of {MAX_IMAGES}"),
        BadRequest("image too large (base64)", js({"image": b64(big)}), "application/json", "exceeds the limit"),
        BadRequest("image too large (raw)", big, "image/png", "exceeds the limit"),
        BadRequest("body too large", js({"images": [b64(big[:190_000])] * 30}), "application/json",
                   f"exceeds the limit of {MAX_BODY_BYTES:,}"),
        BadRequest("decompression bomb", js({"image": b64(bomb)}), "application/json", "decompression bomb"),
        BadRequest("decompression bomb (raw)", bomb, "image/png", "decompression bomb"),
        BadRequest("bad top_k", js({"image": b64(sample_png), "top_k": 0}), "application/json", "top_k"),
        BadRequest("empty body", b"", "application/json", "empty request body"),
    ]  # fmt: skip


@pytest.fixture(scope="session")
def bad_request_list(test_files: list[Path]) -> list[BadRequest]:
    return bad_requests(test_files[0].read_bytes())
