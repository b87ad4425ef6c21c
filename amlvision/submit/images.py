"""Build (once) the training image of docker/train.Dockerfile from conda_dependencies.yml.

The tag is a hash of everything that goes into the image (Dockerfile, dependency list, helper script,
base image and pip options), so an unchanged environment is never rebuilt and a changed one always is.

Where no package index is reachable from inside ``docker build`` (a machine whose PyPI access goes
through a proxy the base image does not trust), pass ``wheelhouse``: a folder of wheels prepared
on the host with :func:`download_wheelhouse`. It is served over HTTP on the Docker bridge for the
length of the build only, so the wheels are neither copied into the build context nor into a layer.
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from amlvision.formats.conda import pip_requirements

# The public image a user's machine pulls; scripts/build-base-image.sh makes a registry-free equivalent.
DEFAULT_BASE_IMAGE = "python:3.11-slim-bookworm"
IMAGE_REPOSITORY = "amlvision/train"
DOCKERFILE = Path("docker/train.Dockerfile")
PIP_LIST_SCRIPT = Path("docker/conda_pip_list.py")
CONDA_FILE = Path("conda_dependencies.yml")


class ImageBuildError(RuntimeError):
    """docker build failed; the message ends with the build log's last lines."""


def image_tag(project: Path, base_image: str, pip_options: str = "", repository: str = IMAGE_REPOSITORY) -> str:
    digest = hashlib.sha256()
    for part in (DOCKERFILE, PIP_LIST_SCRIPT, CONDA_FILE):
        digest.update((project / part).read_bytes())
    digest.update(base_image.encode())
    digest.update(_base_image_id(base_image).encode())
    digest.update(pip_options.encode())
    return f"{repository}:{digest.hexdigest()[:12]}"


def _base_image_id(base_image: str) -> str:
    """The local id of the base image (so a rebuilt base gives a new tag), or '' when not pulled yet."""
    result = subprocess.run(["docker", "image", "inspect", "-f", "{{.Id}}", base_image], capture_output=True, text=True)
    return result.stdout.strip() if result.returncode == 0 else ""


def _pull(image: str) -> None:
    result = subprocess.run(["docker", "pull", image], capture_output=True, text=True)
    if result.returncode != 0:
        raise ImageBuildError(
            f"base image {image} is not here and cannot be pulled ({result.stderr.strip()}); build "
            "one with scripts/build-base-image.sh and pass --base-image amlvision/base:bookworm"
        )


def image_exists(tag: str) -> bool:
    return subprocess.run(["docker", "image", "inspect", tag], capture_output=True).returncode == 0


def bridge_gateway() -> str:
    """The host's address on Docker's default bridge, which build containers can reach."""
    out = subprocess.run(
        ["docker", "network", "inspect", "bridge", "-f", "{{(index .IPAM.Config 0).Gateway}}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    return out or "172.17.0.1"


@contextmanager
def serve_folder(folder: Path, host: str) -> Iterator[str]:
    """Serve ``folder`` read-only over HTTP on ``host`` (an ephemeral port) and yield its URL."""
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer((host, 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        pass


def download_wheelhouse(project: Path, dest: Path) -> Path:
    """``pip download`` the pip list of conda_dependencies.yml (and its dependencies) into ``dest``.

    Uses this interpreter's pip and pip configuration, so local wheel mirrors configured on the host
    are used. Re-running with everything present is fast (pip only checks).
    """
    dest.mkdir(parents=True, exist_ok=True)
    requirements = pip_requirements(project / CONDA_FILE) + ["pyyaml>=6.0"]
    subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--dest", str(dest), *requirements], check=True)
    return dest


def ensure_training_image(
    project: Path,
    base_image: str = DEFAULT_BASE_IMAGE,
    wheelhouse: Path | None = None,
    force: bool = False,
    log: Callable[[str], None] = print,
    repository: str = IMAGE_REPOSITORY,
) -> str:
    """Return the tag of the training image, building it first unless an identical one exists."""
    project = project.resolve()
    if not _base_image_id(base_image):
        _pull(base_image)  # so the tag below already knows the base image's id
    pip_options_key = "wheelhouse" if wheelhouse else ""
    tag = image_tag(project, base_image, pip_options_key, repository)
    if image_exists(tag) and not force:
        return tag
    with tempfile.TemporaryDirectory(prefix="amlvision-train-context-") as context:
        # The smallest context that builds the image: the Dockerfile's COPY sources only.
        for part in (DOCKERFILE, PIP_LIST_SCRIPT, CONDA_FILE):
            (Path(context) / part).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(project / part, Path(context) / part)
        if wheelhouse is None:
            _docker_build(Path(context), tag, base_image, "", log)
        else:
            gateway = bridge_gateway()
            with serve_folder(wheelhouse, gateway) as url:
                options = f"--no-index --find-links {url} --trusted-host {gateway}"
                _docker_build(Path(context), tag, base_image, options, log)
    _remove_older_images(repository, tag)
    return tag


def _remove_older_images(repository: str, keep: str) -> None:
    """Untag earlier training images (each is several GB) once a new one is built."""
    listed = subprocess.run(
        ["docker", "images", repository, "--format", "{{.Repository}}:{{.Tag}}"], capture_output=True, text=True
    ).stdout.split()
    for old in listed:
        if old != keep and not old.endswith(":<none>"):
            subprocess.run(["docker", "rmi", old], capture_output=True)


def _docker_build(context: Path, tag: str, base_image: str, pip_options: str, log: Callable[[str], None]) -> None:
    log(f"building {tag} from {DOCKERFILE} on {base_image}")
    cmd = [
        "docker",
        "build",
        "-f",
        str(context / DOCKERFILE),
        "-t",
        tag,
        "--build-arg",
        f"BASE_IMAGE={base_image}",
        "--build-arg",
        f"PIP_OPTIONS={pip_options}",
        str(context),
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    tail: list[str] = []
    assert proc.stdout is not None
    for line in proc.stdout:
        tail = (tail + [line.rstrip()])[-40:]
    if proc.wait() != 0:
        hint = ""
        unreachable = ("Could not fetch URL", "No matching distribution")
        if not pip_options and any(marker in line for line in tail for marker in unreachable):
            hint = (
                "\nNo package index was reachable from inside the build: prepare a wheel folder on this machine "
                "and pass --wheelhouse (see docs/azure.md, 'How the training image gets its packages')."
            )
        raise ImageBuildError(f"docker build of {tag} failed (exit {proc.returncode}):\n" + "\n".join(tail) + hint)
    log(f"built {tag}")
