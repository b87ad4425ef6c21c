"""The scoring service: find the model, load it once, answer ``/score`` requests.

score.py's ``init()`` and ``run()`` are thin wrappers around :func:`init` and :func:`respond`.
``run()`` is decorated with ``@rawhttp`` because one endpoint must accept both JSON and raw
``image/*`` bodies; errors become HTTP 400 responses with a ``message`` that says what was wrong,
and the worker keeps serving.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from amlvision.inference.errors import InputError
from amlvision.inference.predictor import Predictor
from amlvision.model_dir import MODEL_FILE
from amlvision.serving.limits import Limits
from amlvision.serving.payload import parse_body, parse_top_k

logger = logging.getLogger("amlvision.serving")
API_KEY_ENV = "AMLVISION_API_KEY"
MAX_MESSAGE_CHARS = 2000  # a 400 message never grows with the request (parts of it quote the client)


class BodyTimeout(Exception):
    """The client did not send its whole body within ``Limits.body_timeout_s`` (HTTP 408)."""


def find_model_dir(root: str | Path | None = None) -> Path:
    """The model directory: ``AZUREML_MODEL_DIR`` (or below it), else ``outputs/``.

    Azure ML mounts a registered model under ``$AZUREML_MODEL_DIR/<folder name>/``, so the folder
    holding ``model.onnx`` is searched for up to three levels down.
    """
    if root is None:
        root = os.environ.get("AZUREML_MODEL_DIR") or "outputs"
    root = Path(root)
    if root.is_dir() and not os.access(root, os.R_OK | os.X_OK):
        raise PermissionError(
            f"cannot read {root} as uid {os.getuid()}; make the model folder world-readable (chmod -R a+rX), "
            "the scoring container does not run as root"
        )
    if (root / MODEL_FILE).is_file():
        return root
    candidates = sorted(p.parent for depth in ("*", "*/*", "*/*/*") for p in root.glob(f"{depth}/{MODEL_FILE}"))
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        raise FileNotFoundError(
            f"no {MODEL_FILE} in {root.resolve()} or below; set AZUREML_MODEL_DIR to a model directory"
        )
    raise FileNotFoundError(f"several model directories below {root}: {[str(c) for c in candidates]}")


@dataclass
class ScoringService:
    predictor: Predictor
    limits: Limits
    api_key: str | None = None  # AMLVISION_API_KEY: when set, /score needs "Authorization: Bearer <key>"

    @classmethod
    def load(cls, model_dir: str | Path | None = None, limits: Limits | None = None) -> ScoringService:
        limits = limits or Limits.from_env()
        predictor = Predictor(find_model_dir(model_dir), max_batch=limits.max_images)
        predictor.warm_up()
        return cls(predictor, limits, os.environ.get(API_KEY_ENV) or None)

    def authorised(self, header: str | None) -> bool:
        if self.api_key is None:
            return True
        expected = f"Bearer {self.api_key}".encode()
        return hmac.compare_digest((header or "").encode(), expected)

    def score(self, body: bytes, content_type: str | None, query_top_k: str | None = None) -> dict:
        """Answer one request body; raises InputError for anything the client got wrong."""
        n_classes = len(self.predictor.labels)
        parsed = parse_body(body, content_type, self.predictor.preprocess, self.limits, n_classes)
        k = parsed.top_k
        if k is None and query_top_k is not None:
            k = parse_top_k(query_top_k, "query parameter top_k", n_classes)
        k = k or min(self.limits.default_top_k, n_classes)
        probabilities = self.predictor.probabilities(parsed.model_input)
        not_finite = np.flatnonzero(~np.isfinite(probabilities).all(axis=1))
        if len(not_finite):
            # e.g. "normalized" arrays near 3e38: the network overflows and softmax gives NaN, which JSON cannot carry.
            top = float(np.abs(parsed.model_input[not_finite]).max())
            raise InputError(
                f"the model's output for image(s) {not_finite[:10].tolist()} is not a finite number: its input "
                f"reaches {top:.3g}, far outside the range the model was trained on (normalised pixels lie "
                "within about -10 to 10)"
            )
        return {"predictions": self.predictor.answers(probabilities, k)}


_service: ScoringService | None = None


def init(model_dir: str | Path | None = None) -> ScoringService:
    """Load the model once per worker (azmlinfsrv calls score.py's init() in every worker)."""
    global _service
    _service = ScoringService.load(model_dir)
    p = _service.predictor
    logger.info(
        "loaded %s (%d classes, input %s), limits %s, API key %s",
        p.model_dir,
        len(p.labels),
        p.preprocess.chw,
        _service.limits,
        "required" if _service.api_key else f"off ({API_KEY_ENV} not set)",
    )
    return _service


def service() -> ScoringService:
    if _service is None:
        raise RuntimeError("scoring service not initialised: init() has not run")
    return _service


DRAIN_LIMIT = 1 << 30  # read and discard up to 1 GiB of an oversized body so the client sees the 400


def _discard(stream, n: int) -> None:
    while n > 0:
        chunk = stream.read(min(n, 1 << 20))
        if not chunk:
            return
        n -= len(chunk)


def _body_deadline(seconds: int) -> AbstractContextManager:
    """Raise BodyTimeout in this request if the body takes longer than ``seconds``.

    Under gunicorn's gevent workers (gunicorn_conf.py) a slow client only holds its own greenlet; the
    deadline frees even that. Sync workers (no gevent) have no way to interrupt a read, so none applies.
    """
    try:
        from gevent import Timeout
        from gevent.monkey import is_module_patched
    except ImportError:
        return nullcontext()
    if not is_module_patched("socket"):
        return nullcontext()
    return Timeout(seconds, BodyTimeout(f"request body not received within {seconds} s (AMLVISION_BODY_TIMEOUT_S)"))


def _read_body(request, limits: Limits) -> bytes:
    """The request body, refusing one over ``max_body_bytes`` without keeping it in memory.

    An oversized body is still read (and thrown away, up to DRAIN_LIMIT): a server that answers
    before the client finished sending makes most clients report a connection reset, not the 400.
    """
    with _body_deadline(limits.body_timeout_s):
        return _read_body_now(request, limits)


def _read_body_now(request, limits: Limits) -> bytes:
    length = request.content_length
    stream = request.stream
    if length is not None and length > limits.max_body_bytes:
        if length <= DRAIN_LIMIT:
            _discard(stream, length)
        raise InputError(f"request body of {length:,} bytes exceeds the limit of {limits.max_body_bytes:,}")
    body = stream.read(limits.max_body_bytes + 1)
    if len(body) > limits.max_body_bytes:
        _discard(stream, DRAIN_LIMIT)
        raise InputError(f"request body exceeds the limit of {limits.max_body_bytes:,} bytes")
    return body


def respond(request):
    """Handle one raw flask request from azmlinfsrv; returns an AMLResponse (JSON)."""
    if request.method != "POST":
        return _json_response(
            {
                "message": 'POST a JSON body ({"data"|"image"|"images": ...}) or raw image bytes to /score; '
                "GET /swagger.json describes the schema"
            },
            405,
        )
    svc = service()
    request_id = _request_id()
    if not svc.authorised(request.headers.get("Authorization")):
        logger.info("request %s: 401 missing or wrong API key", request_id)
        return _json_response({"message": "missing or wrong API key: send 'Authorization: Bearer <key>'"}, 401,
                              {"WWW-Authenticate": "Bearer", "Connection": "close"})  # fmt: skip
    try:
        body = _read_body(request, svc.limits)
        result = svc.score(body, request.content_type, request.args.get("top_k"))
    except BodyTimeout as exc:
        logger.info("request %s: 408 %s", request_id, exc)
        return _json_response({"message": str(exc)}, 408, {"Connection": "close"})
    except InputError as exc:
        message = str(exc)
        if len(message) > MAX_MESSAGE_CHARS:
            message = message[:MAX_MESSAGE_CHARS] + f"... ({len(message):,} characters, cut)"
        logger.info("request %s: 400 %s", request_id, message)
        return _json_response({"message": message}, 400)
    return _json_response(result, 200)


def _request_id() -> str:
    """The id azmlinfsrv gave this request (its x-request-id response header), for the log."""
    try:
        from flask import g

        return g.get("request_id", "") or "-"
    except RuntimeError:  # outside a flask request (unit tests)
        return "-"


def _json_response(document: dict, status: int, headers: dict[str, str] | None = None):
    """A JSON response; ``allow_nan=False`` so an answer is always valid JSON (NaN is not)."""
    from azureml_inference_server_http.api.aml_response import AMLResponse

    return AMLResponse(
        json.dumps(document, allow_nan=False),
        status,
        {"Content-Type": "application/json", **(headers or {})},
    )


__all__ = ["ScoringService", "find_model_dir", "init", "respond", "service"]
