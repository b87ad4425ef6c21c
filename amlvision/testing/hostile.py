"""Hostile and careless requests against the scoring server (issue 15), shared by tests and bench/serve_attack.py.

Every builder returns real bytes a client could send; nothing here talks to a server except the
slow-client helpers, which connect to 127.0.0.1 only and stop by themselves.
"""

from __future__ import annotations

import base64
import io
import json
import socket
import struct
import threading
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def png_of_zeros(width: int, height: int, *, bit_depth: int = 8, color_type: int = 0) -> bytes:
    """A valid PNG of zero pixels written row by row (a few KB for millions of pixels).

    ``color_type``: 0 gray, 2 RGB, 4 gray+alpha, 6 RGBA; ``bit_depth`` 1, 8 or 16 (as PNG allows).
    """
    samples = {0: 1, 2: 3, 4: 2, 6: 4}[color_type]
    row_bytes = (width * samples * bit_depth + 7) // 8
    compressor = zlib.compressobj(9)
    row = b"\x00" * (row_bytes + 1)  # filter byte + pixels
    idat = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", idat) + _png_chunk(b"IEND", b"")


def padded_png(png: bytes, size: int) -> bytes:
    """``png`` followed by zero bytes up to ``size``: decoders stop at IEND, the upload is ``size`` bytes."""
    return png + b"\x00" * max(0, size - len(png))


def jpeg_photo(width: int, height: int, seed: int = 0) -> bytes:
    """A noisy RGB JPEG of ``width x height`` (for decode-time reduction)."""
    small = np.random.default_rng(seed).integers(0, 256, (height // 16 + 1, width // 16 + 1, 3), dtype=np.uint8)
    img = Image.fromarray(small).resize((width, height), Image.Resampling.BILINEAR)
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=80)
    return buf.getvalue()


def js(document: object) -> bytes:
    return json.dumps(document, separators=(",", ":")).encode()


@dataclass(frozen=True)
class Attack:
    """One row of issue 15's table: what is sent and what a fixed server answers."""

    row: str
    name: str
    body: bytes
    content_type: str = "application/json"
    query: str = ""
    expect: int = 400


def memory_attacks(max_body_bytes: int = 64 * 1024 * 1024) -> list[Attack]:
    """The requests that cost the worker the most memory under the default limits (docs/serving.md)."""
    one_bit = png_of_zeros(4096, 4096, bit_depth=1)
    rgba = png_of_zeros(4096, 4096, color_type=6)
    gray16 = png_of_zeros(4096, 4096, bit_depth=16)
    # The worst request: a body near the 64 MiB limit of base64 text holding four images of the
    # costliest kind to decode (RGBA at the pixel limit, composited onto black).
    near_limit = padded_png(rgba, 11_500_000)
    zeros_body = b'{"data":[' + b",".join([b"[[[0]]]"] * 10) + b"]}"
    empty_objects = b'{"data":[' + b",".join([b"{}"] * ((max_body_bytes - 20) // 3)) + b"]}"
    zero_images = b'{"data":[' + b",".join([b"0"] * ((max_body_bytes - 20) // 2)) + b"]}"
    return [
        Attack("F1", "16 x 4096x4096 1-bit PNG in one request", js({"images": [b64(one_bit)] * 16})),
        Attack("F1", "4096x4096 RGBA PNG", js({"image": b64(rgba)}), expect=200),
        Attack("F1", "4096x4096 16-bit gray PNG", js({"image": b64(gray16)}), expect=200),
        Attack("F1", "4 x 11.5 MB RGBA 4096x4096 (61 MB body)", js({"images": [b64(near_limit)] * 4}), expect=200),
        Attack("F2", "60 MB body of {} objects", empty_objects),
        Attack("F2", "60 MB body of zeros (10,000+ images)", zero_images),
        Attack("F2", "small wrong-shape data", zeros_body),
    ]


def send_slowly(
    port: int,
    *,
    seconds: float,
    interval: float = 1.5,
    headers_slowly: bool = False,
    headers: dict[str, str] | None = None,
) -> str:
    """One slow client on 127.0.0.1: headers (or the body) one byte every ``interval`` s.

    Returns how it ended: ``closed by server``, ``answered <status>`` or ``still open`` after ``seconds``.
    """
    head = (
        f"POST /score HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
        + "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        + "Content-Length: 4000\r\n\r\n"
    ).encode()
    deadline = time.monotonic() + seconds
    with socket.create_connection(("127.0.0.1", port), timeout=interval + 5) as sock:
        if not headers_slowly:
            sock.sendall(head)
            drip = b"{" + b" " * 3999
        else:
            drip = head
        for byte in drip:
            if time.monotonic() > deadline:
                return "still open"
            try:
                sock.sendall(bytes([byte]))
                sock.settimeout(interval)
                answer = sock.recv(200)
            except TimeoutError:
                continue
            except OSError:
                return "closed by server"
            if not answer:
                return "closed by server"
            return "answered " + answer.split(b"\r\n", 1)[0].decode(errors="replace")
    return "still open"


@dataclass
class SlowClients:
    """``count`` slow connections in threads; ``results`` fills in as each one ends."""

    port: int
    count: int = 20
    seconds: float = 30.0
    headers_slowly_every: int = 2  # every second client drips its headers, the others their body
    headers: dict[str, str] | None = None  # e.g. the API key

    def __post_init__(self) -> None:
        self.results: list[str] = []
        self._threads = [
            threading.Thread(target=self._one, args=(i,), daemon=True) for i in range(self.count)
        ]  # fmt: skip

    def _one(self, i: int) -> None:
        try:
            outcome = send_slowly(
                self.port,
                seconds=self.seconds,
                headers_slowly=self.headers_slowly_every > 0 and i % self.headers_slowly_every == 1,
                headers=self.headers,
            )
        except OSError as exc:
            outcome = f"error {exc}"
        self.results.append(outcome)

    def __enter__(self) -> SlowClients:
        for t in self._threads:
            t.start()
        time.sleep(1.0)  # let every connection open before the caller measures
        return self

    def __exit__(self, *exc: object) -> None:
        for t in self._threads:
            t.join(self.seconds + 10)


def rss_bytes(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) of a process in bytes: its resident memory now and at its peak."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0]) * 1024
    return fields["VmRSS"], fields["VmHWM"]


def reset_peak(pid: int) -> None:
    """Reset VmHWM to the current RSS (Linux ``clear_refs``), so the next peak is one request's own."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def children(pid: int) -> list[int]:
    """Direct child processes (gunicorn workers of a master)."""
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        found += [int(t) for t in text]
    return found
