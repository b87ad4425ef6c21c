"""Load a COCO instances JSON the size of train2017 with read_coco and with pycocotools' COCO().

Builds a synthetic file in a temporary folder (118,287 images, 860,001 annotations with polygon
segmentations, a few crowd RLEs and a few invalid boxes: about 450 MB, train2017's size), then loads
it once per loader, each in its own subprocess so that peak RSS (``getrusage`` maxrss) is that
loader's alone. Prints seconds, peak RSS, the ratios, the CPU model and the load average.

    PYTHONPATH=$PWD nice -n 5 .venv/bin/python bench/coco_load.py            # full size
    PYTHONPATH=$PWD .venv/bin/python bench/coco_load.py --images 2000 --annotations 15000   # quick
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

# COCO 2017's 80 category ids (1..90 with gaps)
COCO_IDS = [i for i in range(1, 91) if i not in (12, 26, 29, 30, 45, 66, 68, 69, 71, 83)]

LOADERS = {
    "read_coco": (
        "from amlvision.detection.coco import read_coco\n"
        "import warnings; warnings.simplefilter('ignore')\n"
        "ds = read_coco(PATH)\n"
        "count = ds.num_boxes + len(ds.invalid)\n"
    ),
    "pycocotools COCO()": (
        "import contextlib, io\n"
        "from pycocotools.coco import COCO\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    coco = COCO(PATH)\n"
        "count = len(coco.anns)\n"
    ),
}

CHILD = """
import resource, sys, time
PATH = sys.argv[1]
start = time.perf_counter()
{body}
seconds = time.perf_counter() - start
print(seconds, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, count)
"""


def build(path: Path, n_images: int, n_annotations: int, seed: int = 0) -> None:
    """Write a train2017-like instances JSON, in chunks so that building it needs little memory."""
    rng = np.random.default_rng(seed)
    widths = rng.choice([640, 480, 612, 500, 427], n_images)
    heights = rng.choice([480, 640, 427, 375, 612], n_images)
    image_ids = np.sort(rng.choice(600_000, n_images, replace=False)) + 1
    with open(path, "w") as out:
        out.write('{"info": {"description": "synthetic train2017-size COCO"}, "licenses": [], "images": [')
        out.write(
            ",".join(
                json.dumps(
                    {
                        "license": 1,
                        "file_name": f"{i:012d}.jpg",
                        "coco_url": f"http://images.cocodataset.org/train2017/{i:012d}.jpg",
                        "height": int(h),
                        "width": int(w),
                        "date_captured": "2013-11-14 11:18:45",
                        "id": int(i),
                    }
                )
                for i, w, h in zip(image_ids, widths, heights, strict=True)
            )
        )
        out.write('], "annotations": [')
        chunk = 20_000
        for start in range(0, n_annotations, chunk):
            n = min(chunk, n_annotations - start)
            which = rng.integers(0, n_images, n)
            w_img, h_img = widths[which], heights[which]
            bw = np.maximum(rng.random(n) * w_img * 0.5, 1.0)
            bh = np.maximum(rng.random(n) * h_img * 0.5, 1.0)
            x = rng.random(n) * (w_img - bw)
            y = rng.random(n) * (h_img - bh)
            points = rng.poisson(18, n) + 3  # about 450 MB in all, like train2017
            crowd = rng.random(n) < 0.009
            broken = rng.random(n) < 0.0001  # zero-size boxes: the reader must skip and list these
            parts = []
            for k in range(n):
                if crowd[k]:
                    segmentation = {"counts": rng.integers(0, 400, 60).tolist(), "size": [int(h_img[k]), int(w_img[k])]}
                else:
                    px = np.round(x[k] + rng.random(points[k]) * bw[k], 2)
                    py = np.round(y[k] + rng.random(points[k]) * bh[k], 2)
                    segmentation = [np.column_stack([px, py]).ravel().tolist()]
                bbox = [round(float(x[k]), 2), round(float(y[k]), 2), round(float(bw[k]), 2), round(float(bh[k]), 2)]
                if broken[k]:
                    bbox[2] = 0.0
                parts.append(
                    json.dumps(
                        {
                            "segmentation": segmentation,
                            "area": round(float(bw[k] * bh[k] * 0.6), 4),
                            "iscrowd": int(crowd[k]),
                            "image_id": int(image_ids[which[k]]),
                            "bbox": bbox,
                            "category_id": int(COCO_IDS[rng.integers(0, 80)]),
                            "id": start + k + 1,
                        }
                    )
                )
            out.write(("," if start else "") + ",".join(parts))
        categories = [{"supercategory": "thing", "id": cid, "name": f"class{cid}"} for cid in COCO_IDS]
        out.write('], "categories": ' + json.dumps(categories) + "}")


def measure(name: str, path: Path) -> tuple[float, int, int]:
    code = CHILD.format(body=LOADERS[name])
    result = subprocess.run(
        [sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True, env=os.environ.copy()
    )
    seconds, rss, count = result.stdout.split()[-3:]
    return float(seconds), int(rss), int(count)


def cpu_model() -> str:
    fields = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            fields.setdefault(key.strip(), value.strip())
    except OSError:
        return "unknown CPU"
    return f"{fields.get('model name', '?')} (family {fields.get('cpu family', '?')} model {fields.get('model', '?')})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=118_287)
    parser.add_argument("--annotations", type=int, default=860_001)
    parser.add_argument("--keep", help="write the JSON here and keep it (default: a temporary folder)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(args.keep) if args.keep else Path(tmp) / "instances_train2017.json"
        start = time.perf_counter()
        if not path.exists():
            build(path, args.images, args.annotations)
        size_mb = path.stat().st_size / 1e6
        print(f"synthetic COCO: {args.images} images, {args.annotations} annotations, {size_mb:.0f} MB "
              f"(built in {time.perf_counter() - start:.0f} s)")  # fmt: skip
        print(f"CPU: {cpu_model()}, {os.cpu_count()} cores; load average before: {os.getloadavg()}")
        results = {name: measure(name, path) for name in LOADERS}
        for name, (seconds, rss, count) in results.items():
            print(f"{name:20s} {seconds:7.1f} s   peak RSS {rss / 2**30:5.2f} GiB   {count} annotations seen")
        (ours_s, ours_rss, _), (ref_s, ref_rss, _) = results["read_coco"], results["pycocotools COCO()"]
        print(f"ratio pycocotools / read_coco: time {ref_s / ours_s:.2f}x, peak RSS {ref_rss / ours_rss:.2f}x")
        print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
