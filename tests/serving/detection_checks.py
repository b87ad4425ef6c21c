"""Shared by the detection serving tests (local and container): the files, predict's reference answer, bad requests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from PIL import Image

from amlvision.testing import hostile, tiny_detector

THRESHOLD = 0.0
BEST = 20
OPTIONS = {"score_threshold": THRESHOLD, "max_detections": BEST}
LIMITS = {"AMLVISION_MAX_IMAGES": "8", "AMLVISION_MAX_IMAGE_BYTES": "2000000", "AMLVISION_MAX_BODY_BYTES": "8000000",
          "AMLVISION_MAX_REQUEST_PIXELS": str(2 * 4096 * 4096)}  # fmt: skip


def detection_files() -> list[Path]:
    """Three real JPEGs: 640x480, 500x333 and 375x500 (portrait)."""
    val = tiny_detector.COCO_TINY / "val2017"
    files = [val / "000000005001.jpg", val / "000000020992.jpg", tiny_detector.coco_tiny_images("train2017")[2]]
    assert len({Image.open(f).size for f in files}) == 3
    return files


def run_predict(model: Path, files: list[Path], *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "amlvision", "predict", str(model), *map(str, files), *extra],
        capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "2"}, timeout=300,
    )  # fmt: skip


def predict_answer(detection_model: Path, detection_files: list[Path]) -> list[list[dict]]:
    """What `amlvision predict --json` prints with OPTIONS: the reference every server must equal."""
    done = run_predict(detection_model, detection_files, "--json", "--score-threshold", str(THRESHOLD),
                       "--max-detections", str(BEST))  # fmt: skip
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert document["files"] == [str(f) for f in detection_files]
    answer = document["predictions"]
    for entry, path in zip(answer, detection_files, strict=True):
        width, height = Image.open(path).size
        assert len(entry) == BEST, f"{len(entry)} boxes for {path}: the comparison would be (nearly) vacuous"
        assert [d["score"] for d in entry] == sorted((d["score"] for d in entry), reverse=True)
        for d in entry:
            assert set(d) == {"label", "score", "box"} and d["score"] >= THRESHOLD
            x1, y1, x2, y2 = d["box"]
            assert 0 <= x1 <= x2 <= width and 0 <= y1 <= y2 <= height
    return answer


def b64(path: Path) -> str:
    return hostile.b64(path.read_bytes())


def as_json(document: object) -> bytes:
    return json.dumps(document).encode()


BAD_OPTIONS = [
    ({"score_threshold": -0.1}, "'score_threshold' must be a number from 0 to 1"),
    ({"score_threshold": 1.5}, "'score_threshold' must be a number from 0 to 1"),
    ({"score_threshold": "high"}, "'score_threshold' must be a number from 0 to 1, got 'high'"),
    ({"score_threshold": True}, "'score_threshold' must be a number from 0 to 1, got True"),
    ({"max_detections": 0}, "'max_detections' must be an integer from 1 to 1000"),
    ({"max_detections": 1001}, "'max_detections' must be an integer from 1 to 1000"),
    ({"max_detections": 2.5}, "'max_detections' must be an integer from 1 to 1000"),
    ({"top_k": 3}, "'top_k' is for classification models"),
    ({"colour": 1}, "unknown field(s) 'colour'"),
]


def bad_detection_requests(sample: Path) -> list[tuple[str, bytes, str, dict, str]]:
    """(name, body, content type, query, message fragment) of requests a detection server must refuse."""
    image = b64(sample)
    bomb = hostile.png_of_zeros(8000, 8000)
    huge = hostile.b64(hostile.png_of_zeros(4096, 4096, bit_depth=1))  # at the per-image limit; two pass the budget
    rows = [(f"option {options}", as_json({"image": image, **options}), "application/json", {}, message)
            for options, message in BAD_OPTIONS]  # fmt: skip
    return rows + [
        ("query NaN", sample.read_bytes(), "image/jpeg", {"score_threshold": "nan"},
         "query parameter score_threshold must be a number from 0 to 1"),
        ("query max_detections", sample.read_bytes(), "image/jpeg", {"max_detections": "²"},
         "query parameter max_detections must be an integer"),
        ("data array", as_json({"data": [[[0.0]]]}), "application/json", {}, "'data' arrays are for classification"),
        ("no image", as_json({"score_threshold": 0.5}), "application/json", {}, 'exactly one of "image", "images"'),
        ("bad base64", as_json({"images": [image, "@@@"]}), "application/json", {}, "images[1]: not valid base64"),
        ("not an image", as_json({"image": hostile.b64(b"hello")}), "application/json", {}, "not a PNG/JPEG/TIFF/BMP"),
        ("corrupt jpeg", sample.read_bytes()[:300], "image/jpeg", {}, "cannot decode image"),
        ("bomb", as_json({"image": hostile.b64(bomb)}), "application/json", {}, "decompression bomb"),
        ("too many", as_json({"images": [image] * 9}), "application/json", {}, "limit of 8"),
        ("over the pixel budget", as_json({"images": [image, huge, huge]}), "application/json", {},
         "images[2]: the images up to this one hold"),
        ("objects", b'{"images": [' + b",".join([b"{}"] * 1000) + b"]}", "application/json", {}, "1,001 objects"),
        ("values", b'{"images": [' + b",".join([b"0"] * 1000) + b"]}", "application/json", {}, "1,000 values"),
        ("lists", b'{"images": ' + b"[" * 50 + b"]" * 50 + b"}", "application/json", {},
         "50 lists ('['); a detection request has one"),
        ("not JSON", b'{"image": "abc', "application/json", {}, "not valid JSON"),
        ("empty", b"", "application/json", {}, "empty request body"),
    ]  # fmt: skip
