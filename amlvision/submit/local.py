"""``submit --target local``: train.py in this Python environment, outputs in ``runs/<run-id>/outputs/``."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from amlvision.azure.v1 import load_run_configuration
from amlvision.submit.command_line import SubmitError, train_command
from amlvision.submit.runs import RunRecord, new_run, stream_process


def run_local(
    project: Path,
    runconfig: str = "local",
    train_args: list[str] | None = None,
    nproc_per_node: int = 1,
    echo: bool = True,
) -> RunRecord:
    project = project.resolve()
    rc = load_run_configuration(project, runconfig)
    if rc.target != "local":
        raise SubmitError(f"run configuration {runconfig!r} targets {rc.target!r}, not 'local'")
    train_command(rc, list(train_args or []), "outputs", nproc_per_node)  # refuse bad arguments first
    record = new_run(project, "local", runconfig)
    cmd = train_command(rc, list(train_args or []), str(record.outputs), nproc_per_node, python=sys.executable)
    env = dict(os.environ, **{k: str(v) for k, v in (rc.environment.environment_variables or {}).items()})
    env["AMLVISION_RUN_ID"] = record.run_id
    record.details["nproc_per_node"] = nproc_per_node
    stream_process(cmd, record, cwd=project, env=env, echo=echo)
    return record
