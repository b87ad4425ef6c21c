"""Pack an image source into CNTK Text Format (ctf), a CNTK map-file folder (map) or the packed format,
or convert detection data between COCO, Pascal VOC, CNTK Faster R-CNN files and YOLO (--to coco|voc|cntk|yolo).

SRC is a class-folder tree, split folders (train/ test/), a label file, a CNTK map file, CTF files, the CIFAR-10
python batches, or an archive (.tar, .tar.gz, .tgz, .zip) of any of these. The output folder is
written atomically: it appears only when complete. See docs/data.md.
"""

from __future__ import annotations

import argparse
import sys

from amlvision.data.cli_options import add_source_options, source_options

DETECTION_FORMATS = ("coco", "voc", "cntk", "yolo")  # amlvision.detection.convert.FORMATS, without importing it


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("src", metavar="SRC", help="source folder, label file, map file, CTF file or archive")
    parser.add_argument(
        "--to",
        required=True,
        choices=("ctf", "map", "packed", *DETECTION_FORMATS),
        help="output format: ctf, map, packed (classification) or coco, voc, cntk, yolo (detection)",
    )
    parser.add_argument("--out", required=True, help="output folder (must not exist unless --overwrite)")
    parser.add_argument("--size", help="resize every image to HxW (bilinear), e.g. 32x32; needed for mixed sizes")
    parser.add_argument("--channels", type=int, choices=(1, 3), default=3, help="1 (gray) or 3 (RGB); default 3")
    parser.add_argument("--skip-bad", action="store_true", help="skip bad items and report each, instead of failing")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
    parser.add_argument("--workers", type=int, help="decoding processes (default: every available CPU)")
    parser.add_argument("--sparse-labels", action="store_true", help="ctf: write |labels as index:1, not one-hot")
    add_source_options(parser)


def _run_detection(args: argparse.Namespace) -> int:
    from amlvision.detection.convert import pack_detection

    try:
        classes = source_options(args)["class_names"]  # --classes: the class order (VOC, YOLO, older CNTK files)
        report = pack_detection(args.src, args.to, args.out, overwrite=args.overwrite, class_names=classes)
    except (ValueError, OSError) as exc:
        print(f"amlvision pack: error: {exc}", file=sys.stderr)
        return 1
    print(report.summary())
    return 0


def run(args: argparse.Namespace) -> int:
    from amlvision.pack import pack

    if args.to in DETECTION_FORMATS:
        return _run_detection(args)

    try:
        report = pack(
            args.src,
            args.to,
            args.out,
            size=args.size,
            channels=args.channels,
            skip_bad=args.skip_bad,
            overwrite=args.overwrite,
            workers=args.workers,
            sparse_labels=args.sparse_labels,
            **source_options(args),
        )
    except (ValueError, OSError) as exc:
        print(f"amlvision pack: error: {exc}", file=sys.stderr)
        return 1
    print(report.summary())
    return 0
