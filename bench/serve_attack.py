"""Issue 15's hostile-input table, replayed against `amlvision serve` on 127.0.0.1 (bounded: stops by itself).

    .venv/bin/python bench/serve_attack.py [--model-dir DIR] [--slow-seconds 30] [--worker-class gevent|sync]

Starts the scoring server (the same azmlinfsrv + gunicorn configuration as the Docker image, default
limits) on a free loopback port and sends every row of the issue's table (F1-F11): hostile bodies,
20 slow clients beside normal traffic, corrupt model folders, a shutdown. Each row prints the HTTP
status or exit code, the latency, the worker's peak memory growth (VmHWM, reset per row) and whether
it is fixed. Nothing leaves 127.0.0.1; every request, client and subprocess has a time limit.
``--worker-class sync`` runs the F3 row against gunicorn's default workers, to show the difference.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import requests

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from amlvision.testing import hostile  # noqa: E402
from amlvision.testing.datasets import CACHE, cifar10_png_subset  # noqa: E402
from amlvision.testing.docker import free_port  # noqa: E402
from amlvision.testing.tiny_model import cached_tiny_model  # noqa: E402

ROWS: list[tuple[str, str, str, str, str, bool]] = []  # row, what, outcome, latency, memory, fixed


def row(name: str, what: str, outcome: str, seconds: float | None, memory_mib: float | None, fixed: bool) -> None:
    latency = f"{seconds * 1e3:,.0f} ms" if seconds is not None else "-"
    memory = f"+{memory_mib:,.0f} MiB" if memory_mib is not None else "-"
    ROWS.append((name, what, outcome, latency, memory, fixed))
    print(
        f"{name:4} {what:52} {outcome:34} {latency:>10} {memory:>10}  {'fixed' if fixed else 'NOT FIXED'}", flush=True
    )


class Server:
    """`amlvision serve` in its own process group, with its log in a file."""

    def __init__(self, model_dir: Path, log: Path, env: dict[str, str]):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        with log.open("w") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "amlvision", "serve", str(model_dir), "--port", str(self.port)],
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                env={**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "AMLVISION_ORT_THREADS": "1",
                     **env},
            )  # fmt: skip
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                if requests.get(self.url + "/", timeout=2).status_code == 200:
                    break
            except (requests.ConnectionError, requests.Timeout):
                pass
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited:\n{log.read_text()[-3000:]}")
            time.sleep(0.3)
        else:
            self.stop()
            raise RuntimeError("server did not start within 90 s")
        self.worker = hostile.children(self.proc.pid)[0]

    def post(
        self, body: bytes, content_type: str = "application/json", query: str = ""
    ) -> tuple[requests.Response, float, float]:
        """(response, seconds, worker peak growth in MiB) for one request."""
        before, _ = hostile.rss_bytes(self.worker)
        hostile.reset_peak(self.worker)
        started = time.perf_counter()
        response = requests.post(f"{self.url}/score{query}", data=body, headers={"Content-Type": content_type},
                                 timeout=120)  # fmt: skip
        seconds = time.perf_counter() - started
        _, peak = hostile.rss_bytes(self.worker)
        return response, seconds, (peak - before) / 2**20

    def stop(self) -> int | None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                return self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
                return None
        return self.proc.returncode


def valid_json(text: str) -> bool:
    def refuse(constant: str) -> None:
        raise ValueError(constant)

    try:
        json.loads(text, parse_constant=refuse)
    except ValueError:
        return False
    return True


def http_rows(server: Server, png: bytes) -> None:
    for attack in hostile.memory_attacks():
        response, seconds, mib = server.post(attack.body, attack.content_type)
        outcome = f"HTTP {response.status_code} ({len(attack.body) / 1e6:.1f} MB body)"
        row(attack.row, attack.name, outcome, seconds, mib, response.status_code == attack.expect)
    response, seconds, mib = server.post(png, "image/png", "?top_k=%C2%B2")
    row("F4", "?top_k=%C2%B2 (a Unicode digit)", f"HTTP {response.status_code}", seconds, mib,
        response.status_code == 400)  # fmt: skip
    huge = np.full((1, 3, 32, 32), 3e38, dtype=np.float32).tolist()
    response, seconds, mib = server.post(hostile.js({"data": huge, "normalized": True}))
    outcome = f"HTTP {response.status_code}, valid JSON: {valid_json(response.text)}"
    row("F5", '"normalized": true data near 3e38', outcome, seconds, mib,
        response.status_code == 400 and valid_json(response.text))  # fmt: skip
    body = b'{"' + b"x" * 1_000_000 + b'": 1, "image": "' + hostile.b64(png).encode() + b'"}'
    response, seconds, mib = server.post(body)
    row("F9", "1 MB field name", f"HTTP {response.status_code}, {len(response.content):,} B answer", seconds, mib,
        response.status_code == 400 and len(response.content) < 1000)  # fmt: skip


def slow_client_row(server: Server, png: bytes, seconds: float, worker_class: str) -> None:
    latencies, served, tried = [], 0, 0
    with hostile.SlowClients(server.port, count=20, seconds=seconds):
        deadline = time.monotonic() + seconds - 2
        while time.monotonic() < deadline:
            tried += 1
            started = time.perf_counter()
            try:
                ok = requests.post(f"{server.url}/score", data=png, headers={"Content-Type": "image/png"},
                                   timeout=5).status_code == 200  # fmt: skip
            except requests.RequestException:
                ok = False
            if ok:
                served += 1
                latencies.append(time.perf_counter() - started)
            time.sleep(0.2)
    p99 = float(np.percentile(latencies, 99)) if latencies else None
    outcome = f"{served}/{tried} normal requests served"
    row("F3", f"20 slow clients for {seconds:.0f} s ({worker_class} workers)", outcome, p99, None, served == tried)


def cli_rows(model_dir: Path, work: Path, png_path: Path) -> None:
    truncated = work / "truncated"
    shutil.copytree(model_dir, truncated)
    data = (model_dir / "model.onnx").read_bytes()
    (truncated / "model.onnx").write_bytes(data[: len(data) // 3])
    labels = work / "labels"
    shutil.copytree(model_dir, labels)
    (labels / "labels.json").write_text('["cat", ')
    short = work / "short"
    shutil.copytree(model_dir, short)
    (short / "labels.json").write_text('["cat", "dog"]')
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    cases = [
        ("F6", "predict on a truncated model.onnx", ["predict", str(truncated), str(png_path)], "model.onnx"),
        ("F6", "evaluate on a truncated model.onnx", ["evaluate", str(truncated), str(png_path.parents[2])],
         "model.onnx"),
        ("F7", "serve with labels.json of the wrong length", ["serve", str(short), "--port", str(free_port())],
         "labels.json"),
        ("F8", "predict with a broken labels.json", ["predict", str(labels), str(png_path)], "labels.json"),
    ]  # fmt: skip
    for name, what, args, named in cases:
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "amlvision", *args], capture_output=True, text=True, timeout=120,
                              env=env)  # fmt: skip
        seconds = time.perf_counter() - started
        clean = named in done.stderr and "Traceback" not in done.stderr
        row(name, what, f"exit {done.returncode}, {len(done.stderr.splitlines())} line(s)", seconds, None,
            done.returncode == 2 and clean)  # fmt: skip
    # F7 as the container runs it: azmlinfsrv's own master with a model that fails init().
    port = free_port()
    entry = REPO / "amlvision" / "serving" / "entry.py"
    server_env = {**env, "AZUREML_MODEL_DIR": str(truncated), "AZUREML_ENTRY_SCRIPT": str(entry),
                  "AML_APP_ROOT": str(entry.parent), "AML_APP_INSIGHTS_ENABLED": "false",
                  "GUNICORN_CMD_ARGS": "--config python:amlvision.serving.gunicorn_conf"}  # fmt: skip
    started = time.perf_counter()
    try:
        code = "import sys; from azureml_inference_server_http import amlserver_linux as s; s.run('127.0.0.1', {}, 2)"
        done = subprocess.run([sys.executable, "-c", code.format(port)], capture_output=True, text=True, timeout=60,
                              env={**server_env, "SERVER_PORT": str(port), "HEALTH_PORT": str(port)})  # fmt: skip
        code, text = done.returncode, done.stdout + done.stderr
    except subprocess.TimeoutExpired as exc:
        code, text = None, str(exc.stdout or "")
    seconds = time.perf_counter() - started
    inits = text.count("Invoking user's init function")
    row("F7", "azmlinfsrv's gunicorn (as in the image), bad model", f"exit {code}, init tried {inits}x", seconds,
        None, code not in (0, None) and "std::system_error" not in text)  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", type=Path, help="default: the tiny CNN the serving tests train")
    parser.add_argument("--slow-seconds", type=float, default=30.0, help="how long the 20 slow clients last")
    parser.add_argument("--worker-class", default="gevent", choices=["gevent", "sync"])
    args = parser.parse_args()

    subset = cifar10_png_subset(150, 50)
    model_dir = (args.model_dir or cached_tiny_model(subset / "train", CACHE)).resolve()
    png_path = sorted((subset / "test").glob("*/*.png"))[0]
    png = png_path.read_bytes()
    load = os.getloadavg()
    print(f"model {model_dir}; CPU: {cpu_name()}, {os.cpu_count()} cores; load average {load[0]:.1f}")
    print(f"{'row':4} {'request':52} {'outcome':34} {'latency':>10} {'worker':>10}")
    with tempfile.TemporaryDirectory(prefix="serve-attack-") as tmp:
        work = Path(tmp)
        served = work / "outputs"
        shutil.copytree(model_dir, served)
        (served / "metrics.json").write_text('{"accuracy": 0.5}')  # as make train leaves it
        server = Server(served, work / "serve.log", {"AMLVISION_WORKER_CLASS": args.worker_class})
        try:
            http_rows(server, png)
            slow_client_row(server, png, args.slow_seconds, args.worker_class)
            response, _, _ = server.post(b'{"image": "@@@"}')
            request_id = response.headers.get("x-request-id", "?")
        finally:
            code = server.stop()
        log = server.log.read_text()
        row("F10", "SIGTERM to the master", f"exit {code}, system_error: {'std::system_error' in log}", None, None,
            code == 0 and "std::system_error" not in log)  # fmt: skip
        logged = f"request {request_id}: 400" in log and "amlvision.serving - loaded" in log
        row("F11", "package log lines + request id in the server log", f"found: {logged}", None, None,
            logged and "Error while fetching model IDs" not in log)  # fmt: skip
        cli_rows(model_dir, work, png_path)
    load = os.getloadavg()
    fixed = sum(r[5] for r in ROWS)
    print(f"{fixed}/{len(ROWS)} rows fixed; load average at the end {load[0]:.1f} (1 min), {load[1]:.1f} (5 min)")
    return 0 if fixed == len(ROWS) else 1


def cpu_name() -> str:
    """``model name (family F model M)`` of the first CPU: figures are only comparable on the same one."""
    info = {}
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        key, _, value = line.partition(":")
        info.setdefault(key.strip(), value.strip())
    name, family, model = info.get("model name", "unknown CPU"), info.get("cpu family", "?"), info.get("model", "?")
    return f"{name} (family {family} model {model})"


if __name__ == "__main__":
    raise SystemExit(main())
