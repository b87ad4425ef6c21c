"""``submit --target docker``: train.py in a container of the training image, outputs collected in the run folder.

The project is bind-mounted at its own path (so relative and absolute paths in train.py's
arguments mean the same inside and out), the run folder is where train.py writes ``outputs/``,
and any absolute path argument outside the project (a data set) is mounted read-only at its own
path. The container runs as the calling user, so everything it writes belongs to that user.
"""

from __future__ import annotations

import os
from pathlib import Path

from amlvision.azure.v1 import load_run_configuration
from amlvision.submit.command_line import SubmitError, train_command
from amlvision.submit.images import DEFAULT_BASE_IMAGE, IMAGE_REPOSITORY, ensure_training_image
from amlvision.submit.runs import RunRecord, new_run, stream_process

# Passed through to the container when set here (thread counts matter on shared machines).
PASSTHROUGH_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "AMLVISION_SHARED_DATA", "AMLVISION_CACHE")


def data_mounts(train_args: list[str], project: Path) -> list[str]:
    """``-v path:path:ro`` for each existing absolute path in the arguments that lies outside the project."""
    mounts: list[str] = []
    for arg in train_args:
        value = arg.split("=", 1)[1] if arg.startswith("--") and "=" in arg else arg
        path = Path(value)
        if not path.is_absolute() or not path.exists():
            continue
        resolved = path.resolve()
        if resolved == project or project in resolved.parents:
            continue
        for mount in {path, resolved}:
            spec = f"{mount}:{mount}:ro"
            if spec not in mounts:
                mounts += ["-v", spec]
    return mounts


def run_docker(
    project: Path,
    runconfig: str = "docker",
    train_args: list[str] | None = None,
    nproc_per_node: int = 1,
    base_image: str = DEFAULT_BASE_IMAGE,
    wheelhouse: Path | None = None,
    echo: bool = True,
    gpus: str | None = None,
) -> RunRecord:
    """``gpus`` is passed to ``docker run --gpus`` (e.g. ``all``; needs the NVIDIA container toolkit)."""
    project = project.resolve()
    train_args = list(train_args or [])
    rc = load_run_configuration(project, runconfig)
    if not rc.environment.docker.enabled:
        raise SubmitError(f"run configuration {runconfig!r} does not enable Docker (environment.docker.enabled)")
    train_command(rc, train_args, "outputs", nproc_per_node)  # refuse bad arguments before a long build
    # docker.compute's baseDockerImage names the image repository; the tag is the content hash.
    repository = (rc.environment.docker.base_image or IMAGE_REPOSITORY).split(":")[0]
    tag = ensure_training_image(project, base_image=base_image, wheelhouse=wheelhouse, repository=repository)
    record = new_run(project, "docker", runconfig)
    record.details.update(image=tag, base_image=base_image, nproc_per_node=nproc_per_node)
    env = {k: str(v) for k, v in (rc.environment.environment_variables or {}).items()}
    env.update({k: os.environ[k] for k in PASSTHROUGH_ENV if k in os.environ})
    env["AMLVISION_RUN_ID"] = record.run_id
    cmd = [
        "docker",
        "run",
        "--rm",
        "--name",
        record.run_id,
        "--user",
        f"{os.getuid()}:{os.getgid()}",
        "--shm-size",
        rc.environment.docker.shm_size or "2g",
        "--workdir",
        str(project),
        "-v",
        f"{project}:{project}",
        *data_mounts(train_args, project),
    ]
    if gpus:
        cmd += ["--gpus", gpus]
    for key, value in env.items():
        cmd += ["-e", f"{key}={value}"]
    cmd += [tag, *train_command(rc, train_args, str(record.outputs), nproc_per_node, python="python")]
    stream_process(cmd, record, cwd=project, echo=echo)
    return record
