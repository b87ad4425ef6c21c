"""gunicorn settings for the scoring server (``GUNICORN_CMD_ARGS=--config python:amlvision.serving.gunicorn_conf``).

Why: azmlinfsrv starts gunicorn with its default *sync* workers, where a client that sends its
headers or body slowly holds the whole worker; twenty such connections stop the service (issue 15,
F3). gevent workers hold a slow connection in a greenlet instead, so normal requests keep being
answered, and the two timeouts below cut connections that never finish. azmlinfsrv sets the bind
address, worker count and ``--timeout`` on its command line, which gunicorn ranks above this file;
everything here is what it leaves unset. Each value comes from an environment variable
(docs/serving.md).
"""

from __future__ import annotations

import os


def _positive(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    if not raw.isascii() or not raw.isdigit() or int(raw) <= 0:
        raise ValueError(f"{name}={raw!r}: expected a positive integer")
    return int(raw)


# AMLVISION_WORKER_CLASS: "gevent" (default) or "sync" (one request at a time, no slow-client protection).
worker_class = os.environ.get("AMLVISION_WORKER_CLASS", "gevent").strip() or "gevent"
# AMLVISION_MAX_CONNECTIONS: open connections per worker (slow ones included) before new ones wait.
worker_connections = _positive("AMLVISION_MAX_CONNECTIONS", 1000)
# AMLVISION_HEADER_TIMEOUT_S: a request line and headers must arrive within this many seconds (and an
# idle keep-alive connection is closed after it). gevent workers apply gunicorn's keep-alive timeout to
# reading every request's headers.
keepalive = _positive("AMLVISION_HEADER_TIMEOUT_S", 10)
# Seconds a stopping worker waits for requests in flight.
graceful_timeout = _positive("AMLVISION_GRACEFUL_TIMEOUT_S", 10)
