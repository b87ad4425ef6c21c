"""Summarise a source or packed dataset: images per class, sizes and modes, unreadable files, duplicates.

Detection data (COCO, Pascal VOC or an image/XML folder pair, CNTK Faster R-CNN files, YOLO) gets
the detection report instead: boxes per class, COCO size buckets, images without boxes and every
invalid box by file and index (docs/detection.md).

Every image is decoded, so truncated files are reported; duplicates are found by content hash.
For a packed dataset the manifest checksums are verified too (skip with --no-verify).
"""

from __future__ import annotations

import argparse
import json
import sys

from amlvision.data.cli_options import add_source_options, source_options


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", metavar="PATH", help="source folder, label file, map file, archive or packed folder")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.add_argument("--no-verify", dest="verify", action="store_false", help="packed: skip the sha256 check")
    parser.add_argument("--workers", type=int, help="decoding processes (default: every available CPU)")
    parser.add_argument("--max-items", type=int, default=20, help="list at most this many files per problem")
    parser.add_argument(
        "--imbalance-threshold",
        type=float,
        default=None,
        help="warn when the largest class has more than this many times the images of the smallest (default 3)",
    )
    add_source_options(parser)


def _run_detection(args: argparse.Namespace, fmt: str) -> int:
    from amlvision.detection.convert import read_detection_splits
    from amlvision.detection.report import detection_summary, format_detection_summary

    splits = read_detection_splits(args.path, fmt, source_options(args)["class_names"])  # --classes
    summary = detection_summary(args.path, fmt, splits)
    print(json.dumps(summary, indent=2) if args.json else format_detection_summary(summary, args.max_items))
    return 0


def run(args: argparse.Namespace) -> int:
    import warnings

    from amlvision.data.summary import IMBALANCE_THRESHOLD, format_summary, summarize
    from amlvision.detection.convert import sniff_detection_format

    fmt = sniff_detection_format(args.path)
    if fmt is not None:  # detection data: the report lists every skipped box, so no warning per box here
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return _run_detection(args, fmt)
        except (ValueError, OSError) as exc:
            print(f"amlvision inspect: error: {exc}", file=sys.stderr)
            return 1

    threshold = IMBALANCE_THRESHOLD if args.imbalance_threshold is None else args.imbalance_threshold
    try:
        summary = summarize(
            args.path,
            verify=args.verify,
            workers=args.workers,
            imbalance_threshold=threshold,
            **source_options(args),
        )
    except (ValueError, OSError) as exc:
        print(f"amlvision inspect: error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(summary, indent=2) if args.json else format_summary(summary, max_items=args.max_items))
    return 0
