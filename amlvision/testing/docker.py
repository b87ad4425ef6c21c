"""Docker helpers for tests and benchmarks: engine, local base image, offline wheels, build, run.

Everything goes through the ``docker`` CLI (no extra Python client), so a failure shows the same
message a user would see. No registry is reachable on test and CI machines, hence the locally
built base image and the wheels downloaded on the host from PyPI and copied into the build.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from amlvision.testing.datasets import REPO_ROOT

BASE_IMAGE = "amlvision/base:bookworm"
# Overridable so that several checkouts on one engine do not rebuild each other's test image.
SCORE_IMAGE = os.environ.get("AMLVISION_SCORE_IMAGE", "amlvision/score:test")
WHEELS_DIR = REPO_ROOT / "build" / "wheels"
SCORE_REQUIREMENTS = REPO_ROOT / "requirements-score.txt"
BUILD_REQUIREMENTS = ("setuptools>=68",)  # the Dockerfile builds amlvision without build isolation


class DockerError(RuntimeError):
    """A docker command failed; the message carries the command and the tail of its output."""


def _run(cmd: list[str], *, timeout: float = 900, env: dict[str, str] | None = None) -> str:
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, check=False)
    except subprocess.TimeoutExpired as exc:
        raise DockerError(f"{' '.join(cmd)}: timed out after {timeout:.0f}s") from exc
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-40:])
        raise DockerError(f"{' '.join(cmd)} exited with {done.returncode}:\n{tail}")
    return done.stdout


def ensure_engine() -> None:
    """Start (and if needed apt-install) a Docker engine; see scripts/docker-engine.sh."""
    _run(["bash", str(REPO_ROOT / "scripts" / "docker-engine.sh")], timeout=600)


def ensure_base_image(tag: str = BASE_IMAGE) -> str:
    """Build the debootstrap base image unless ``tag`` exists; see scripts/build-base-image.sh."""
    _run(["bash", str(REPO_ROOT / "scripts" / "build-base-image.sh"), tag], timeout=900)
    return tag


def download_wheels(dest: Path = WHEELS_DIR, requirements: Path = SCORE_REQUIREMENTS) -> Path:
    """Download the scoring image's wheels from PyPI on the host, once per requirements version."""
    wanted = hashlib.sha256(requirements.read_bytes() + "\n".join(BUILD_REQUIREMENTS).encode()).hexdigest()
    stamp = dest / ".requirements.sha256"
    if stamp.is_file() and stamp.read_text().strip() == wanted:
        return dest
    dest.mkdir(parents=True, exist_ok=True)
    _run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--only-binary=:all:", "--dest", str(dest),
         "-r", str(requirements), *BUILD_REQUIREMENTS],
        timeout=900,
    )  # fmt: skip
    stamp.write_text(wanted + "\n")
    return dest


def _classic_builder_env() -> dict[str, str] | None:
    """Use the classic builder when the buildx plugin is missing (Debian's docker.io client)."""
    has_buildx = subprocess.run(["docker", "buildx", "version"], capture_output=True, check=False).returncode == 0
    return None if has_buildx else {**os.environ, "DOCKER_BUILDKIT": "0"}


def build_image(
    tag: str = SCORE_IMAGE,
    *,
    target: str | None = "runtime",
    build_args: dict[str, str] | None = None,
    context: Path = REPO_ROOT,
) -> str:
    """``docker build`` the repository's Dockerfile; layers are cached, so a rebuild takes seconds."""
    cmd = ["docker", "build", "--tag", tag]
    if target:
        cmd += ["--target", target]
    for key, value in (build_args or {}).items():
        cmd += ["--build-arg", f"{key}={value}"]
    _run([*cmd, str(context)], timeout=1800, env=_classic_builder_env())
    return tag


def build_score_image(tag: str = SCORE_IMAGE, *, target: str | None = "runtime", **build_args: str) -> str:
    """Engine, base image, wheels, then the scoring image built offline from them."""
    ensure_engine()
    base = ensure_base_image()
    wheels = download_wheels()
    args = {"BASE_IMAGE": base, "WHEELS": str(wheels.relative_to(REPO_ROOT)), **build_args}
    return build_image(tag, target=target, build_args=args)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Container:
    """A running container whose port 5001 is published on 127.0.0.1 only."""

    id: str
    port: int
    name: str = ""
    removed: bool = field(default=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def inspect(self) -> dict:
        return json.loads(_run(["docker", "inspect", self.id]))[0]

    def logs(self) -> str:
        done = subprocess.run(["docker", "logs", self.id], capture_output=True, text=True, check=False)
        return done.stdout + done.stderr

    def exec(self, *cmd: str, user: str | None = None) -> subprocess.CompletedProcess:
        prefix = ["docker", "exec"] + (["--user", user] if user else [])
        return subprocess.run([*prefix, self.id, *cmd], capture_output=True, text=True, check=False)

    def health(self) -> str | None:
        state = self.inspect()["State"]
        return (state.get("Health") or {}).get("Status")

    def remove(self) -> None:
        if not self.removed:
            subprocess.run(["docker", "rm", "--force", self.id], capture_output=True, check=False)
            self.removed = True


def run_container(
    image: str,
    *,
    volumes: dict[str | Path, str] | None = None,
    env: dict[str, str] | None = None,
    cpus: float | None = None,
    name: str | None = None,
) -> Container:
    """``docker run -d`` with port 5001 published on a free loopback port; read-only mounts."""
    port = free_port()
    cmd = ["docker", "run", "--detach", "--publish", f"127.0.0.1:{port}:5001"]
    if name:
        cmd += ["--name", name]
    if cpus:
        cmd += ["--cpus", str(cpus)]
    for host, inside in (volumes or {}).items():
        cmd += ["--volume", f"{Path(host).resolve()}:{inside}:ro"]
    for key, value in (env or {}).items():
        cmd += ["--env", f"{key}={value}"]
    container_id = _run([*cmd, image]).strip()
    return Container(container_id, port, name or container_id[:12])


def wait_ready(container: Container, timeout: float = 90.0) -> None:
    """Wait until GET / answers (the server loads the model before it accepts connections)."""
    deadline = time.monotonic() + timeout
    last_error = ""
    while time.monotonic() < deadline:
        state = container.inspect()["State"]
        if not state["Running"]:
            code = state.get("ExitCode")
            raise DockerError(f"container {container.name} exited ({code}):\n{container.logs()[-4000:]}")
        try:
            with urllib.request.urlopen(container.url + "/", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:
            last_error = str(exc)
        time.sleep(0.3)
    raise DockerError(f"container {container.name} not ready after {timeout:.0f}s ({last_error}):\n"
                      f"{container.logs()[-4000:]}")  # fmt: skip


def wait_healthy(container: Container, timeout: float = 60.0) -> str:
    """Wait for Docker's own HEALTHCHECK verdict; returns the final status."""
    deadline = time.monotonic() + timeout
    status = container.health()
    while status != "healthy" and time.monotonic() < deadline:
        if status == "unhealthy":
            break
        time.sleep(0.5)
        status = container.health()
    return status or "none"
