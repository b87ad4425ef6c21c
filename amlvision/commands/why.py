"""Measure why image classification does badly on a box-annotated data set (COCO layout).

Writes OUT/report.md, OUT/why.json and PNG plots: objects and categories per image, class
imbalance, object sizes before and after resizing to a model input, label ambiguity, no-look
baselines, and (with --runs) the results of ``train.py --from-boxes`` runs side by side, all beside
the same statistics of a class-folder data set (--contrast, e.g. the CIFAR-10 PNG archive).
Conclusions are generated from the numbers, largest measured effect first. See docs/coco_why.md.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("data", metavar="DATA", help="COCO root (annotations/instances_<split>.json) or one JSON")
    parser.add_argument("--out", default="why", help="output folder (default why/)")
    parser.add_argument(
        "--contrast",
        metavar="PATH",
        help="class-folder data set (folder or archive, e.g. ../shared/data/cifar10-png.tar.gz) described the "
        "same way, one full-frame object per image",
    )
    parser.add_argument("--contrast-name", default="CIFAR-10", help="its name in the report (default CIFAR-10)")
    parser.add_argument("--runs", nargs="*", default=[], metavar="RUN", help="train.py --from-boxes output folders")
    parser.add_argument("--name", help="the data's name in the report (default: the folder name)")


def contrast_statistics(path: str, name: str) -> dict:
    """The statistics of a class-folder data set, each image one full-frame box of its class."""
    from amlvision.data.resolve import open_collection
    from amlvision.detection.why import dataset_statistics, folder_as_boxes

    collection = open_collection(path)
    train_key = next((s for s in ("train", "all") if s in collection), next(iter(collection)))
    test_key = next((s for s in ("test", "val") if s in collection), None)
    train = collection[train_key]
    train_set = folder_as_boxes(train, train.class_names)
    test_set = folder_as_boxes(collection[test_key], train.class_names) if test_key else None
    stats = dataset_statistics(train_set, test_set)
    stats["name"] = name
    stats["definition"] = (
        f"{path}, splits {train_key}" + (f" + {test_key}" if test_key else "") + ": one object per image whose "
        "box is the whole image (CIFAR-10's objects fill the frame), so instances = images, one category per "
        "image, and an object's size is the image's own size (sizes read from the image files)."
    )
    return stats


def run(args: argparse.Namespace) -> int:
    from amlvision.detection.coco import CocoFormatError, read_coco
    from amlvision.detection.derive import find_annotation_files, split_names
    from amlvision.detection.why import INPUT_SIZES, dataset_statistics, object_sizes
    from amlvision.detection.why_report import run_result, write_report

    try:
        files = find_annotation_files(args.data)
        train_name, heldout_name = split_names(files)
        train = read_coco(files[train_name])
        heldout = read_coco(files[heldout_name]) if heldout_name else None
        data = dataset_statistics(train, heldout)
        data["name"] = args.name or Path(args.data).resolve().name
        data["source"] = {name: str(files[name]) for name in (train_name, heldout_name) if name}
        images = train.images + (heldout.images if heldout else [])
        data["_sides"] = {f"{s}x{s}": object_sizes(images, s) for s in INPUT_SIZES}
        contrast = contrast_statistics(args.contrast, args.contrast_name) if args.contrast else None
        runs = [run_result(r) for r in args.runs]
    except (FileNotFoundError, CocoFormatError, ValueError) as exc:
        print(f"amlvision why: {exc}", file=sys.stderr)
        return 2
    command = "amlvision why " + " ".join(shlex.quote(a) for a in sys.argv[2:]) if len(sys.argv) > 2 else None
    document = write_report(args.out, data, contrast, runs, [command] if command else None)
    print(f"wrote {Path(args.out) / 'report.md'} and why.json ({len(document['conclusions'])} conclusions)")
    for i, finding in enumerate(document["conclusions"][:5], 1):
        print(f"{i}. {finding['text']}")
    return 0
