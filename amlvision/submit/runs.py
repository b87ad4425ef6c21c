"""Run folders: ``runs/<run-id>/`` with ``outputs/``, ``logs/std_log.txt`` and ``run.json``.

The layout copies what Azure ML keeps for a run (outputs and logs side by side, a status record),
so a local, Docker and Azure run of the same script leave the same artefacts behind.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections import deque
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from amlvision.submit.command_line import SubmitError

LOG_NAME = "std_log.txt"


@dataclass
class RunRecord:
    run_id: str
    target: str
    runconfig: str
    command: list[str]
    run_dir: str
    status: str = "Running"
    exit_code: int | None = None
    started: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    finished: str | None = None
    duration_s: float | None = None
    details: dict = field(default_factory=dict)

    @property
    def outputs(self) -> Path:
        return Path(self.run_dir) / "outputs"

    @property
    def log(self) -> Path:
        return Path(self.run_dir) / "logs" / LOG_NAME

    def save(self) -> None:
        (Path(self.run_dir) / "run.json").write_text(json.dumps(asdict(self), indent=2) + "\n")


def new_run(project: Path, target: str, runconfig: str, experiment: str = "amlvision") -> RunRecord:
    """Create ``runs/<experiment>_<UTC time>_<8 hex>/`` with empty outputs/ and logs/ folders."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    run_id = f"{experiment}_{stamp}_{uuid.uuid4().hex[:8]}"
    run_dir = project / "runs" / run_id
    (run_dir / "outputs").mkdir(parents=True)
    (run_dir / "logs").mkdir()
    return RunRecord(run_id=run_id, target=target, runconfig=runconfig, command=[], run_dir=str(run_dir))


def stream_process(
    cmd: list[str], record: RunRecord, cwd: Path, env: dict[str, str] | None = None, echo: bool = True
) -> int:
    """Run ``cmd``, copying its combined output line by line to the run's log (and to stdout when
    ``echo``), then record the exit code, status and duration in ``run.json``."""
    record.command = list(cmd)
    record.save()
    start = time.monotonic()
    tail: deque[str] = deque(maxlen=30)
    with record.log.open("w") as log:
        try:
            proc = subprocess.Popen(
                cmd,
                cwd=cwd,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                bufsize=1,
                errors="replace",
            )
        except OSError as err:  # e.g. no docker client installed: record the failure like a shell would (127)
            log.write(f"cannot start {cmd[0]}: {err}\n")
            finish(record, 127, time.monotonic() - start)
            raise SubmitError(f"cannot start {cmd[0]}: {err}") from err
        assert proc.stdout is not None
        try:
            for line in proc.stdout:
                log.write(line)
                log.flush()
                tail.append(line)
                if echo:
                    sys.stdout.write(line)
                    sys.stdout.flush()
            code = proc.wait()
        except KeyboardInterrupt:
            proc.terminate()
            code = proc.wait()
            raise
        finally:
            finish(record, proc.poll() if proc.poll() is not None else -1, time.monotonic() - start)
    if code != 0:
        print(
            f"run {record.run_id} failed with exit code {code}; log: {record.log}\n--- last lines ---\n"
            + "".join(tail),
            file=sys.stderr,
            end="",
        )
    return code


def finish(record: RunRecord, code: int, seconds: float) -> None:
    record.exit_code = code
    record.status = "Completed" if code == 0 else "Failed"
    record.finished = datetime.now(UTC).isoformat(timespec="seconds")
    record.duration_s = round(seconds, 2)
    record.details["outputs"] = sorted(
        str(p.relative_to(record.outputs)) for p in record.outputs.rglob("*") if p.is_file()
    )
    record.save()
