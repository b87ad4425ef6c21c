"""Download a public dataset (cifar10: the official CIFAR-10 python archive) and verify its published md5.

A file whose md5 does not match is deleted, never used. Without internet access the command says
how to fetch the archive elsewhere and use it.
"""

from __future__ import annotations

import argparse
import sys

from amlvision.data.download import DATASETS, DownloadError, default_dest, fetch


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", choices=sorted(DATASETS), help="dataset to download")
    parser.add_argument("--dest", help=f"folder to save it in (default {default_dest()})")
    parser.add_argument("--url", help="download from this URL instead (a mirror); the md5 is still checked")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for the server (default 30)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    try:
        path = fetch(args.name, args.dest, url=args.url, timeout=args.timeout, progress=not args.quiet)
    except DownloadError as exc:
        print(f"amlvision download: error: {exc}", file=sys.stderr)
        return 1
    print(f"{path} (md5 {DATASETS[args.name].md5} verified)")
    return 0
