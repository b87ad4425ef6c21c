"""The scoring service: find the model, load it once, answer ``/score`` requests.

score.py's ``init()`` and ``run()`` are thin wrappers around :func:`init` and :func:`respond`.
``run()`` is decorated with ``@rawhttp`` because one endpoint must accept both JSON and raw
``image/*`` bodies; errors become HTTP 400 responses with a ``message`` that says what was wrong,
and the worker keeps serving.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from amlvision.inference.errors import InputError
from amlvision.inference.predictor import Predictor
from amlvision.serving.limits import Limits
from amlvision.serving.payload import parse_body, parse_top_k

logger = logging.getLogger("amlvision.serving")
MODEL_FILE = "model.onnx"


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

    @classmethod
    def load(cls, model_dir: str | Path | None = None, limits: Limits | None = None) -> ScoringService:
        limits = limits or Limits.from_env()
        predictor = Predictor(find_model_dir(model_dir), max_batch=limits.max_images)
        predictor.warm_up()
        return cls(predictor, limits)

    def score(self, body: bytes, content_type: str | None, query_top_k: str | None = None) -> dict:
        """Answer one request body; raises InputError for anything the client got wrong."""
        n_classes = len(self.predictor.labels)
        parsed = parse_body(body, content_type, self.predictor.preprocess, self.limits, n_classes)
        k = parsed.top_k
        if k is None and query_top_k is not None:
            k = parse_top_k(query_top_k, "query parameter top_k", n_classes)
        k = k or min(self.limits.default_top_k, n_classes)
        probabilities = self.predictor.probabilities(parsed.model_input)
        return {"predictions": [p.to_json() for p in self.predictor.top_k(probabilities, k)]}


_service: ScoringService | None = None


def init(model_dir: str | Path | None = None) -> ScoringService:
    """Load the model once per worker (azmlinfsrv calls score.py's init() in every worker)."""
    global _service
    _service = ScoringService.load(model_dir)
    p = _service.predictor
    logger.info(
        "amlvision: loaded %s (%d classes, input %s), limits %s",
        p.model_dir,
        len(p.labels),
        p.preprocess.chw,
        _service.limits,
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


def _read_body(request, limits: Limits) -> bytes:
    """The request body, refusing one over ``max_body_bytes`` without keeping it in memory.

    An oversized body is still read (and thrown away, up to DRAIN_LIMIT): a server that answers
    before the client finished sending makes most clients report a connection reset, not the 400.
    """
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
    from azureml_inference_server_http.api.aml_response import AMLResponse

    if request.method != "POST":
        return AMLResponse(
            {
                "message": 'POST a JSON body ({"data"|"image"|"images": ...}) or raw image bytes to /score; '
                "GET /swagger.json describes the schema"
            },
            405,
            json_str=True,
        )
    svc = service()
    try:
        body = _read_body(request, svc.limits)
        result = svc.score(body, request.content_type, request.args.get("top_k"))
    except InputError as exc:
        logger.info("amlvision: 400 %s", exc)
        return AMLResponse({"message": str(exc)}, 400, json_str=True)
    return AMLResponse(result, 200, json_str=True)


__all__ = ["ScoringService", "find_model_dir", "init", "respond", "service"]
