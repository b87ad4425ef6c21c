"""Start ``amlvision serve`` in a child process from Python (a notebook, a test) and stop it again.

The server is the real one (azmlinfsrv + score.py under gunicorn). It runs in its own process
group so ``stop()`` ends the gunicorn master and its workers together, and an ``atexit`` hook stops
it when the Python process that started it ends, so a failed notebook cell never leaves a server
holding the port.
"""

from __future__ import annotations

import atexit
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests


class ServerStartError(RuntimeError):
    """The server exited or did not answer in time; the message ends with its log."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on ``host`` right now."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


class LocalServer:
    """``amlvision serve MODEL_DIR --host HOST --port PORT`` as a context manager.

    ``start()`` returns once ``GET /`` answers 200 (the server's liveness route); ``url`` is the
    base address and ``score_url`` the ``/score`` route. ``env`` adds environment variables (the
    ``AMLVISION_*`` limits of docs/serving.md).
    """

    def __init__(
        self,
        model_dir: str | Path,
        *,
        port: int | None = None,
        host: str = "127.0.0.1",
        env: dict[str, str] | None = None,
        startup_timeout: float = 60.0,
        log_path: str | Path | None = None,
    ):
        self.model_dir = Path(model_dir)
        self.host = host
        self.port = port or free_port(host)
        self.env = dict(env or {})
        self.startup_timeout = startup_timeout
        if log_path is None:
            handle, log_path = tempfile.mkstemp(prefix="amlvision-serve-", suffix=".log")
            os.close(handle)
        self.log_path = Path(log_path)
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def score_url(self) -> str:
        return f"{self.url}/score"

    def log_text(self, last_chars: int = 6000) -> str:
        """The end of the server's combined stdout/stderr."""
        try:
            return self.log_path.read_text(errors="replace")[-last_chars:]
        except OSError:
            return ""

    def answers(self, timeout: float = 2.0) -> bool:
        """True when ``GET /`` answers 200 now."""
        try:
            return requests.get(self.url + "/", timeout=timeout).status_code == 200
        except requests.RequestException:
            return False

    def start(self) -> LocalServer:
        if self.process is not None:
            raise RuntimeError(f"server for {self.model_dir} already started on {self.url}")
        command = [sys.executable, "-m", "amlvision", "serve", str(self.model_dir)]
        command += ["--host", self.host, "--port", str(self.port)]
        with self.log_path.open("w") as log:
            self.process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **self.env}, start_new_session=True
            )
        atexit.register(self.stop)
        deadline = time.monotonic() + self.startup_timeout
        while not self.answers(timeout=1.0):
            if self.process.poll() is not None or time.monotonic() > deadline:
                reason = f"exited with {self.process.returncode}" if self.process.poll() is not None else "timed out"
                self.stop()
                raise ServerStartError(f"amlvision serve {self.model_dir} on {self.url} {reason}:\n{self.log_text()}")
            time.sleep(0.2)
        return self

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM to the server's process group, SIGKILL after ``timeout`` seconds; idempotent."""
        process, self.process = self.process, None
        atexit.unregister(self.stop)
        if process is None or process.poll() is not None:
            return
        try:
            os.killpg(process.pid, signal.SIGTERM)  # gunicorn master and its workers
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
