"""``summarize``: what is in a source or packed dataset — counts, sizes, modes, unreadable files, duplicates.

Every image file is read and fully decoded (in parallel worker processes), so truncated files that
only fail half-way through are found too. Duplicates are files (or packed images) with identical
content, found by sha256.
"""

from __future__ import annotations

import hashlib
import multiprocessing
from collections import Counter, defaultdict
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from amlvision.data.collection import LabeledImages
from amlvision.data.decoding import available_cpus
from amlvision.data.images import ImageReadError, decode
from amlvision.data.resolve import Dataset, resolve
from amlvision.formats import packed

_CHUNK = 500


def _probe(paths: list[str]) -> list[tuple[str | None, str | None, str | None, str | None]]:
    """``(sha256, "WxH", mode, error)`` per file, decoding each fully."""
    results = []
    for path in paths:
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            results.append((None, None, None, f"{path}: cannot read ({exc.strerror or exc})"))
            continue
        digest = hashlib.sha256(data).hexdigest()
        try:
            img = decode(data, name=path)
            results.append((digest, f"{img.size[0]}x{img.size[1]}", img.mode, None))
        except ImageReadError as exc:
            results.append((digest, None, None, str(exc)))
    return results


def _probe_all(paths: list[str], workers: int | None) -> list[tuple[str | None, str | None, str | None, str | None]]:
    chunks = [paths[i : i + _CHUNK] for i in range(0, len(paths), _CHUNK)]
    workers = available_cpus() if workers is None else max(1, workers)
    if workers == 1 or len(chunks) <= 1:
        return [r for chunk in chunks for r in _probe(chunk)]
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else None)
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        return [r for part in pool.map(_probe, chunks) for r in part]


def _duplicates(hashes: list[str | None], names: list[str]) -> list[list[str]]:
    groups: dict[str, list[str]] = defaultdict(list)
    for digest, name in zip(hashes, names, strict=True):
        if digest is not None:
            groups[digest].append(name)
    return [group for group in groups.values() if len(group) > 1]


def _summarize_split(
    split: str, images: LabeledImages, workers: int | None, hashes_out: dict[str, tuple[str, str]]
) -> dict[str, Any]:
    info: dict[str, Any] = {"count": len(images), "per_class": images.counts()}
    if images.paths is not None:
        names = [str(p) for p in images.paths]
        probed = _probe_all(names, workers)
        info["sizes"] = dict(Counter(r[1] for r in probed if r[1]).most_common())
        info["modes"] = dict(Counter(r[2] for r in probed if r[2]).most_common())
        info["unreadable"] = [r[3] for r in probed if r[3]]
        info["duplicates"] = _duplicates([r[0] for r in probed], names)
        hashes_out.update((name, (split, r[0])) for name, r in zip(names, probed, strict=True) if r[0])
    else:
        arrays = images.arrays
        info["sizes"] = {f"{arrays.shape[2]}x{arrays.shape[1]}": len(arrays)}
        info["modes"] = {{1: "L", 3: "RGB", 4: "RGBA"}[arrays.shape[3]]: len(arrays)}
        info["unreadable"] = []
        hashes = [hashlib.sha256(a.tobytes()).hexdigest() for a in arrays]
        names = [images.describe(i) for i in range(len(images))]
        info["duplicates"] = _duplicates(hashes, names)
        hashes_out.update((name, (split, h)) for name, h in zip(names, hashes, strict=True))
    info["skipped"] = [f"{item}: {reason}" for item, reason in images.skipped]
    return info


def _summarize_packed(path: Path, verify: bool) -> dict[str, Any]:
    ds = packed.PackedDataset(path)
    checksums = "not checked"
    if verify:
        try:
            ds.verify()
            checksums = "ok"
        except packed.PackedFormatError as exc:
            checksums = f"MISMATCH: {exc}"
    h, w, c = ds.image_shape
    splits = {}
    all_hashes: dict[str, tuple[str, str]] = {}
    for split in ds.splits:
        labels = ds.labels(split)
        images = ds.images(split)
        hashes = [hashlib.sha256(images[i].tobytes()).hexdigest() for i in range(len(labels))]
        per_class = np.bincount(labels, minlength=len(ds.class_names))
        all_hashes.update((f"{split}[{i}]", (split, h)) for i, h in enumerate(hashes))
        splits[split] = {
            "count": len(labels),
            "per_class": {name: int(n) for name, n in zip(ds.class_names, per_class, strict=True)},
            "sizes": {f"{w}x{h}": len(labels)},
            "modes": {"L" if c == 1 else "RGB": len(labels)},
            "unreadable": [],
            "duplicates": _duplicates(hashes, [f"{split}[{i}]" for i in range(len(labels))]),
            "skipped": [],
        }
    skipped = [f"{item}: {reason}" for item, reason in ds.manifest.get("source", {}).get("skipped", [])]
    return {
        "path": str(path),
        "kind": "packed",
        "class_names": ds.class_names,
        "image_shape": [h, w, c],
        "checksums": checksums,
        "splits": splits,
        "skipped_when_packed": skipped,
        "duplicates_across_splits": _across(all_hashes),
    }


IMBALANCE_THRESHOLD = 3.0
IMBALANCE_ADVICE = (
    "train with --class-weights balanced or --sampler balanced, choose the exported epoch with "
    "--select-metric macro_f1 (or balanced_accuracy), and judge the model by per-class recall, "
    "pr_curves.png and the threshold report rather than accuracy"
)


def class_balance(per_class: dict[str, int], threshold: float = IMBALANCE_THRESHOLD) -> dict[str, Any]:
    """Largest / smallest class (among classes with images) and whether their ratio exceeds ``threshold``."""
    present = {name: n for name, n in per_class.items() if n > 0}
    if not present:
        return {"ratio": None, "largest": None, "smallest": None, "empty_classes": list(per_class), "warning": False}
    largest = max(present, key=present.__getitem__)
    smallest = min(present, key=present.__getitem__)
    ratio = present[largest] / present[smallest]
    return {
        "ratio": round(ratio, 3),
        "largest": largest,
        "smallest": smallest,
        "empty_classes": [name for name, n in per_class.items() if n == 0],
        "warning": ratio > threshold,
    }


def add_class_balance(summary: dict[str, Any], threshold: float = IMBALANCE_THRESHOLD) -> dict[str, Any]:
    """Add ``imbalance`` to every split of ``summary`` (and the threshold used) in place; returns it."""
    summary["imbalance_threshold"] = threshold
    for info in summary["splits"].values():
        info["imbalance"] = class_balance(info["per_class"], threshold)
    return summary


def summarize(
    path: str | Path | Dataset,
    *,
    verify: bool = True,
    workers: int | None = None,
    imbalance_threshold: float = IMBALANCE_THRESHOLD,
    **options: Any,
) -> dict[str, Any]:
    """A JSON-ready summary of ``path`` (a ``Dataset``, or ``--data`` resolved here with ``options``).

    ``data_kind`` and ``label_rule`` say how the data was recognised and where its labels come from.
    """
    dataset = path if isinstance(path, Dataset) else resolve(path, skip_bad=True, **options)
    resolution = {"data_kind": dataset.kind, "label_rule": dataset.label_rule}
    if dataset.kind == "packed":
        summary = {**_summarize_packed(dataset.root, verify), **resolution}
        return add_class_balance(summary, imbalance_threshold)
    if dataset.task != "classification":
        raise ValueError(
            f"{dataset.source}: a {dataset.kind} dataset ({dataset.task}); inspect summarises labelled images"
        )
    collections = dataset.collection()
    class_names = next(iter(collections.values())).class_names if collections else []
    all_hashes: dict[str, tuple[str, str]] = {}
    splits = {split: _summarize_split(split, images, workers, all_hashes) for split, images in collections.items()}
    summary = {
        "path": str(dataset.source),
        "kind": "source",
        **resolution,
        "class_names": class_names,
        "splits": splits,
        "duplicates_across_splits": _across(all_hashes) if len(splits) > 1 else [],
    }
    return add_class_balance(summary, imbalance_threshold)


def _across(hashes: dict[str, tuple[str, str]]) -> list[list[str]]:
    """Duplicate groups whose members are in more than one split (train/test leakage)."""
    groups = _duplicates([digest for _, digest in hashes.values()], list(hashes))
    return [g for g in groups if len({hashes[name][0] for name in g}) > 1]


def format_summary(summary: dict[str, Any], *, max_items: int = 20) -> str:
    """Human-readable text for ``summarize``'s result."""
    lines = [f"{summary['path']}: {summary['kind']}, {len(summary['class_names'])} classes"]
    if summary.get("data_kind"):
        lines.append(f"recognised as: {summary['data_kind']}; labels from: {summary.get('label_rule') or '-'}")
    if summary["kind"] == "packed":
        lines.append(
            f"image shape (HxWxC): {'x'.join(map(str, summary['image_shape']))}; checksums: {summary['checksums']}"
        )
    for split, info in summary["splits"].items():
        lines.append(f"\n[{split}] {info['count']} images")
        width = max((len(name) for name in info["per_class"]), default=0)
        lines += [f"  {name.ljust(width)}  {n}" for name, n in info["per_class"].items()]
        balance = info.get("imbalance") or {}
        if balance.get("warning"):
            lines.append(
                f"  WARNING: imbalanced classes: {balance['largest']!r} has {balance['ratio']:g}x the images of "
                f"{balance['smallest']!r} (threshold {summary.get('imbalance_threshold', IMBALANCE_THRESHOLD):g}); "
                + IMBALANCE_ADVICE
            )
        if balance.get("empty_classes"):
            lines.append(f"  WARNING: classes without images: {', '.join(balance['empty_classes'])}")
        lines.append("  sizes (WxH): " + ", ".join(f"{k}: {v}" for k, v in info["sizes"].items()))
        lines.append("  modes: " + ", ".join(f"{k}: {v}" for k, v in info["modes"].items()))
        for key, title in (("unreadable", "unreadable files"), ("skipped", "left out (not images / bad entries)")):
            items = info[key]
            lines.append(f"  {title}: {len(items)}")
            lines += [f"    {item}" for item in items[:max_items]]
            if len(items) > max_items:
                lines.append(f"    ... and {len(items) - max_items} more")
        groups = info["duplicates"]
        lines.append(f"  duplicate groups (identical content): {len(groups)}")
        for group in groups[:max_items]:
            lines.append("    " + " = ".join(group))
        if len(groups) > max_items:
            lines.append(f"    ... and {len(groups) - max_items} more")
    across = summary.get("duplicates_across_splits", [])
    if across:
        lines.append(f"\nidentical images in more than one split: {len(across)} group(s)")
        lines += ["  " + " = ".join(group) for group in across[:max_items]]
    if summary.get("skipped_when_packed"):
        lines.append(f"\nskipped when packed: {len(summary['skipped_when_packed'])}")
        lines += [f"  {item}" for item in summary["skipped_when_packed"][:max_items]]
    return "\n".join(lines)
