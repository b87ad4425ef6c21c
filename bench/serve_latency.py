"""Scoring latency and throughput: the Docker scoring image vs the same server with the PyTorch model.

    .venv/bin/python bench/serve_latency.py [--model-dir DIR] [--fast-model-dir DIR] [--seconds 3] [--batch 64]

Builds the scoring image (offline, like the tests), starts it with ``--cpus 2``, and on loopback
measures p50/p99 latency for one 32x32 image sent as base64 and as a float32 array, then throughput
in images/s with 1, 4 and 16 concurrent clients, for single-image and batched requests. In the same
run it starts azmlinfsrv locally with ONNX Runtime (``amlvision serve``) and with the PyTorch model
(bench/score_torch.py, same request parsing), so the ratios compare engines on the same machine.
It then measures the model users actually serve: the architecture ``make train`` writes (``--model fast``),
either ``--fast-model-dir`` or one trained here for one epoch on the CIFAR-10 subset (accuracy does not
matter for latency), in the container and locally.
The clients share the machine's cores with the servers; figures are for the whole loop.
Goals (2 cores): p50 <= 5 ms for one image, >= 1,000 images/s batched, image <= 400 MB.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from amlvision.inference.decode import decode_image_file  # noqa: E402
from amlvision.testing import docker  # noqa: E402
from amlvision.testing.datasets import CACHE, cifar10_png_subset  # noqa: E402
from amlvision.testing.tiny_model import cached_tiny_model  # noqa: E402

SERVER_ENV = {"WORKER_COUNT": "2", "AMLVISION_ORT_THREADS": "1", "OMP_NUM_THREADS": "1"}


def _post(conn: http.client.HTTPConnection, body: bytes, content_type: str) -> None:
    conn.request("POST", "/score", body=body, headers={"Content-Type": content_type})
    response = conn.getresponse()
    payload = response.read()
    if response.status != 200:
        raise RuntimeError(f"HTTP {response.status}: {payload[:300]!r}")


def latency_ms(port: int, body: bytes, content_type: str, n: int = 300) -> tuple[float, float]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    for _ in range(30):
        _post(conn, body, content_type)
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        _post(conn, body, content_type)
        samples.append((time.perf_counter() - start) * 1e3)
    conn.close()
    return statistics.median(samples), float(np.percentile(samples, 99))


def throughput(port: int, body: bytes, images_per_request: int, clients: int, seconds: float) -> float:
    stop = time.perf_counter() + seconds
    counts = [0] * clients
    errors: list[BaseException] = []

    def client(i: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        try:
            while time.perf_counter() < stop:
                _post(conn, body, "application/json")
                counts[i] += images_per_request
        except BaseException as exc:  # reported after the run
            errors.append(exc)
        finally:
            conn.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise RuntimeError(f"{len(errors)} client(s) failed: {errors[0]}")
    return sum(counts) / (time.perf_counter() - start)


def wait_ready(port: int, proc: subprocess.Popen | None = None, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError("server exited during start-up")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/")
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"server on port {port} not ready after {timeout}s")


@contextmanager
def local_server(entry_script: Path, model_dir: Path):
    """azmlinfsrv on 127.0.0.1 (gunicorn, 2 workers) running ``entry_script``."""
    port = docker.free_port()
    env = {**os.environ, **SERVER_ENV, "AZUREML_MODEL_DIR": str(model_dir), "AZUREML_ENTRY_SCRIPT": str(entry_script),
           "AML_APP_ROOT": str(entry_script.parent), "SERVER_PORT": str(port), "HEALTH_PORT": str(port),
           "AML_APP_INSIGHTS_ENABLED": "false", "PYTHONPATH": str(REPO)}  # fmt: skip
    code = (
        "import sys; from azureml_inference_server_http import amlserver_linux as s; "
        "s.run('127.0.0.1', int(sys.argv[1]), 2)"
    )
    proc = subprocess.Popen([sys.executable, "-c", code, str(port)], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
    try:
        wait_ready(port, proc)
        yield port
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


def fast_model(cache: Path, data: Path) -> Path:
    """The ``make train`` architecture (FastNet) trained for one epoch on ``data``; cached."""
    out = cache / "bench-fast-model"
    if not (out / "model.onnx").is_file():
        print("training the make-train model (fast) for one epoch ...", file=sys.stderr, flush=True)
        subprocess.run([sys.executable, str(REPO / "train.py"), "--data", str(data), "--model", "fast", "--epochs", "1",
                        "--outputs", str(out), "--progress", "log"], check=True, stdout=subprocess.DEVNULL,
                       env={**os.environ, "PYTHONPATH": str(REPO)})  # fmt: skip
    return out


def measure(name: str, port: int, bodies: dict[str, bytes], batch: int, seconds: float) -> dict:
    result = {"target": name}
    result["p50_b64"], result["p99_b64"] = latency_ms(port, bodies["b64"], "application/json")
    result["p50_arr"], result["p99_arr"] = latency_ms(port, bodies["array"], "application/json")
    for clients in (1, 4, 16):
        result[f"single_c{clients}"] = throughput(port, bodies["b64"], 1, clients, seconds)
        result[f"batch_c{clients}"] = throughput(port, bodies["batch"], batch, clients, seconds)
    print(f"  measured {name}", file=sys.stderr, flush=True)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", type=Path, help="default: the tiny CNN the serving tests train")
    parser.add_argument("--fast-model-dir", type=Path, help="a model written by make train (default: train one)")
    parser.add_argument("--seconds", type=float, default=3.0, help="seconds per throughput point")
    parser.add_argument("--batch", type=int, default=64, help="images per batched request")
    parser.add_argument("--skip-baseline", action="store_true", help="no PyTorch baseline (model lacks model.pt)")
    args = parser.parse_args()

    subset = cifar10_png_subset(150, 50)
    model_dir = (args.model_dir or cached_tiny_model(subset / "train", CACHE)).resolve()
    files = sorted((subset / "test").glob("*/*.png"))[: args.batch]
    png = files[0].read_bytes()
    pixels = decode_image_file(files[0], channels=3).astype(np.float32).transpose(2, 0, 1)
    bodies = {
        "b64": json.dumps({"image": base64.b64encode(png).decode()}).encode(),
        "array": json.dumps({"data": pixels[None].tolist()}).encode(),
        "batch": json.dumps({"images": [base64.b64encode(f.read_bytes()).decode() for f in files]}).encode(),
    }

    print("building the scoring image ...", file=sys.stderr, flush=True)
    image = docker.build_score_image(docker.SCORE_IMAGE, target="runtime")
    size = int(subprocess.run(["docker", "image", "inspect", "--format", "{{.Size}}", image],
                              capture_output=True, text=True, check=True).stdout)  # fmt: skip
    results = []
    container = docker.run_container(image, volumes={model_dir: "/var/azureml-models/model"}, env=SERVER_ENV, cpus=2)
    try:
        docker.wait_ready(container)
        results.append(measure("container (ONNX Runtime)", container.port, bodies, args.batch, args.seconds))
    finally:
        container.remove()
    with local_server(REPO / "amlvision" / "serving" / "entry.py", model_dir) as port:
        results.append(measure("local azmlinfsrv, ONNX Runtime", port, bodies, args.batch, args.seconds))
    fast_dir = (args.fast_model_dir or fast_model(CACHE, subset)).resolve()
    container = docker.run_container(image, volumes={fast_dir: "/var/azureml-models/model"}, env=SERVER_ENV, cpus=2)
    try:
        docker.wait_ready(container)
        results.append(measure("container, make-train model (fast)", container.port, bodies, args.batch, args.seconds))
    finally:
        container.remove()
    with local_server(REPO / "amlvision" / "serving" / "entry.py", fast_dir) as port:
        results.append(measure("local azmlinfsrv, make-train model", port, bodies, args.batch, args.seconds))
    baseline = None
    if not args.skip_baseline and (model_dir / "tiny_model.json").is_file():
        with local_server(REPO / "bench" / "score_torch.py", model_dir) as port:
            baseline = measure("local azmlinfsrv, PyTorch (baseline)", port, bodies, args.batch, args.seconds)
        results.append(baseline)

    print(f"scoring image {image}: {size / 1e6:.0f} MB (goal <= 400 MB)")
    load = os.getloadavg()
    print(f"load average during the run: {load[0]:.1f} (1 min), {load[1]:.1f} (5 min); other work skews the figures")
    print(f"CPU: {cpu_name()}")
    print(f"models: tiny {model_dir}, make-train (fast) {fast_dir}")
    print(f"model: {model_dir}  image: 32x32 PNG ({len(png)} bytes)  batch: {args.batch}  cores: {os.cpu_count()}")
    header = (f"{'target':38} {'p50 b64':>8} {'p99 b64':>8} {'p50 arr':>8} {'p99 arr':>8}   images/s single c1/c4/c16"
              f"   images/s batched c1/c4/c16")  # fmt: skip
    print(header)
    for r in results:
        single = "/".join(f"{r[f'single_c{c}']:.0f}" for c in (1, 4, 16))
        batched = "/".join(f"{r[f'batch_c{c}']:.0f}" for c in (1, 4, 16))
        print(f"{r['target']:38} {r['p50_b64']:7.2f}ms {r['p99_b64']:7.2f}ms {r['p50_arr']:7.2f}ms "
              f"{r['p99_arr']:7.2f}ms   {single:>26}   {batched:>26}")  # fmt: skip
    if baseline:
        for r in results[:2]:
            ratio_p50 = baseline["p50_b64"] / r["p50_b64"]
            ratio_tp = r["batch_c16"] / baseline["batch_c16"]
            print(f"{r['target']} vs PyTorch baseline: p50 latency speed-up {ratio_p50:.2f}x, "
                  f"batched throughput (16 clients) {ratio_tp:.2f}x")  # fmt: skip
    best = results[0]
    batched_best = max(best[f"batch_c{c}"] for c in (1, 4, 16))
    print(f"goals: p50 one image {best['p50_b64']:.2f} ms (<= 5), batched {batched_best:.0f} images/s (>= 1000), "
          f"image {size / 1e6:.0f} MB (<= 400)")  # fmt: skip
    return 0


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
