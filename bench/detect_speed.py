"""Detection speed on this CPU: training images/s per model, and inference images/s of PyTorch eager vs ONNX Runtime.

For each torchvision Faster R-CNN (at its own default size: min_size/max_size 320/640 for
``fasterrcnn_mobilenet_v3_large_320_fpn``, 800/1333 for the others), in one process:

* train: a few SGD steps (batch 2, lr 0.005, momentum 0.9, as torchvision's reference recipe) on real
  coco-tiny training images with their COCO boxes; the first step is a warm-up and not timed;
* infer: the same real coco-tiny validation images, one at a time (as a server sees them), through
  PyTorch eager and through the exported ``model.onnx`` (amlvision.detection.export, which also
  checks that both give the same detections), each after one warm-up image; ONNX Runtime / PyTorch
  is the ratio (PyTorch is the baseline).

The models are untrained (no weights can be downloaded here) with batch-norm statistics from real
images (amlvision.testing.tiny_detector), which costs the same time per image as trained weights.
Prints one JSON line per model and the CPU with its load average before and after.

    nice -n 5 python bench/detect_speed.py --threads 2 [--models NAME ...] [--train-steps 3] [--images 6]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

MODELS = (
    "fasterrcnn_mobilenet_v3_large_320_fpn",
    "fasterrcnn_mobilenet_v3_large_fpn",
    "fasterrcnn_resnet50_fpn",
)


def cpu_name() -> str:
    """``model name (family F model M)`` of the first CPU: figures are only comparable on the same one."""
    info: dict[str, str] = {}
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        key, _, value = line.partition(":")
        info.setdefault(key.strip(), value.strip())
        if not line.strip():
            break
    return (
        f"{info.get('model name', 'unknown CPU')} (family {info.get('cpu family', '?')} model {info.get('model', '?')})"
    )


def training_batches(count: int, batch: int):
    """``count`` batches of real coco-tiny training images (float 0-1) with their boxes and labels (1-based)."""
    import torch

    from amlvision.data.images import load_image
    from amlvision.detection.coco import read_coco
    from amlvision.testing.tiny_detector import COCO_TINY

    data = read_coco(COCO_TINY / "annotations" / "instances_train2017.json")
    with_boxes = [image for image in data.images if len(image.boxes)]
    batches = []
    for b in range(count):
        images, targets = [], []
        for image in (with_boxes[(b * batch + i) % len(with_boxes)] for i in range(batch)):
            images.append(torch.from_numpy(load_image(image.path, 3).transpose(2, 0, 1).copy()).float() / 255)
            targets.append({"boxes": torch.from_numpy(image.boxes), "labels": torch.from_numpy(image.labels + 1)})
        batches.append((images, targets))
    return data.class_names, batches


def train_speed(name: str, num_classes: int, batches) -> float:
    """Training images/s: forward (losses) + backward + SGD step, the first batch untimed."""
    import torch

    from amlvision.testing.tiny_detector import build_detector

    model = build_detector(num_classes, name=name)
    model.train()
    optimiser = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.005, momentum=0.9)
    images_done, start = 0, None
    for step, (images, targets) in enumerate(batches):
        if step == 1:
            start = time.perf_counter()
        losses = model(images, targets)
        optimiser.zero_grad()
        sum(losses.values()).backward()
        optimiser.step()
        if step >= 1:
            images_done += len(images)
    return images_done / (time.perf_counter() - start)


def load_all_sizes(folder: Path):
    """The folder's images, decoded one at a time (the export check needs a second size)."""
    from amlvision.data.images import load_image

    for path in sorted(folder.glob("*.jpg")):
        yield load_image(path, 3)


def infer_speed(name: str, class_names: list[str], files: list[Path], threads: int) -> dict:
    """Inference images/s of PyTorch eager and ONNX Runtime on the same images, one image per call."""
    import numpy as np
    import onnxruntime as ort
    import torch

    from amlvision.data.images import load_image
    from amlvision.detection.export import DetectionGraph, export_checked
    from amlvision.testing.tiny_detector import build_detector

    model = build_detector(len(class_names), name=name)
    transform = model.transform
    pixels = [load_image(p, 3) for p in files]
    tensors = [torch.from_numpy(p.transpose(2, 0, 1).copy()).float() / 255 for p in pixels]
    other = next((p for p in load_all_sizes(files[0].parent) if p.shape != pixels[0].shape), None)
    with tempfile.TemporaryDirectory(prefix="detect-speed-") as tmp:
        started = time.perf_counter()
        checks = export_checked(model, tmp, class_names, transform.min_size[-1], transform.max_size, [pixels[0], other])
        export_s = time.perf_counter() - started
        size_mb = (Path(tmp) / "model.onnx").stat().st_size / 1e6
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        session = ort.InferenceSession(str(Path(tmp) / "model.onnx"), options, providers=["CPUExecutionProvider"])

    graph = DetectionGraph(model).eval()
    with torch.no_grad():
        graph(tensors[0])  # warm-up
        start = time.perf_counter()
        torch_boxes = [len(graph(t)[0]) for t in tensors]
        torch_s = time.perf_counter() - start
    inputs = [t.numpy().astype(np.float32) for t in tensors]
    session.run(None, {"images": inputs[0]})  # warm-up
    start = time.perf_counter()
    onnx_boxes = [len(session.run(None, {"images": x})[0]) for x in inputs]
    onnx_s = time.perf_counter() - start
    return {
        "torch_images_per_s": round(len(inputs) / torch_s, 3),
        "onnx_images_per_s": round(len(inputs) / onnx_s, 3),
        "onnx_over_torch": round(torch_s / onnx_s, 2),
        "boxes_per_image": round(float(np.mean(torch_boxes)), 1),
        "onnx_boxes_per_image": round(float(np.mean(onnx_boxes)), 1),
        "export_s": round(export_s, 1),
        "onnx_mb": round(size_mb, 1),
        "check_max_box_diff_px": round(max(c.max_box_diff_px for c in checks), 4),
        "min_size": transform.min_size[-1],
        "max_size": transform.max_size,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--threads", type=int, default=2, help="PyTorch and ONNX Runtime intra-op threads")
    parser.add_argument("--train-steps", type=int, default=3, help="timed training steps (after one warm-up)")
    parser.add_argument("--batch", type=int, default=2, help="training batch size")
    parser.add_argument("--images", type=int, default=6, help="validation images timed for inference")
    args = parser.parse_args(argv)

    import torch

    from amlvision.testing.tiny_detector import coco_tiny_images

    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()
    print(f"CPU {cpu_name()}, {os.cpu_count()} logical CPUs, threads {args.threads}, "
          f"load average {load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}", flush=True)  # fmt: skip
    class_names, batches = training_batches(args.train_steps + 1, args.batch)
    files = coco_tiny_images("val2017", args.images)
    for name in args.models:
        started = time.perf_counter()
        row = {"model": name, "train_images_per_s": round(train_speed(name, len(class_names), batches), 3)}
        row.update(infer_speed(name, class_names, files, args.threads))
        row["load_average"] = round(os.getloadavg()[0], 2)
        row["wall_s"] = round(time.perf_counter() - started, 1)
        print(json.dumps(row), flush=True)
    load_after = os.getloadavg()
    print(f"load average after {load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
