"""The split vocabulary, written once: which names mean train, held-out validation, test or "everything".

Sources name splits many ways (``training/``, ``valid/``, ``trainLabels.csv``, ``validation_map.txt``);
``split_of`` maps each to one canonical name. ``validation`` and ``val`` are the same split: sources
say ``val``; the stratified held-out part train.py derives is written as ``validation`` (its files and
run records have always been named so), and lookups accept either via ``HELDOUT_SPLITS``.
"""

from __future__ import annotations

from collections.abc import Iterable

SPLIT_NAMES = {
    "train": "train",
    "training": "train",
    "test": "test",
    "testing": "test",
    "val": "val",
    "valid": "val",
    "validation": "val",
}
TRAIN_SPLITS = ("train", "all")  # what a model trains on, in order of preference
HELDOUT_SPLITS = ("test", "validation", "val")  # what it is evaluated on, in order of preference
SPLIT_ORDER = ("train", "val", "validation", "test", "all")  # how splits are listed and packed
DERIVED_HELDOUT = "validation"  # the held-out split drawn from train when the data has none


def split_of(name: str) -> str | None:
    """The split a file or folder name stands for (``trainLabels.csv`` stem -> ``train``), or None."""
    lowered = name.lower()
    if lowered in SPLIT_NAMES:
        return SPLIT_NAMES[lowered]
    for prefix, split in sorted(SPLIT_NAMES.items(), key=lambda kv: -len(kv[0])):
        if lowered.startswith(prefix):
            return split
    return None


def first_present(wanted: Iterable[str], present: Iterable[str]) -> str | None:
    """The first of ``wanted`` that is in ``present`` (e.g. ``first_present(HELDOUT_SPLITS, splits)``)."""
    have = set(present)
    return next((name for name in wanted if name in have), None)


def ordered(splits: Iterable[str]) -> list[str]:
    """``splits`` in ``SPLIT_ORDER`` (unknown names last, alphabetically)."""
    rank = {name: i for i, name in enumerate(SPLIT_ORDER)}
    return sorted(splits, key=lambda name: (rank.get(name, len(rank)), name))
