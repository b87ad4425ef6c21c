"""Class-balanced sweep orders: which dataset samples one sweep visits when ``sampler="balanced"``.

A uniform sweep is a permutation of ``range(N)``. A balanced sweep has the same length N, but
every class present gets an equal share of the N positions (shares differ by at most one).
Within a class the members are drawn *without* replacement, cycling through fresh permutations
of the class when its share is larger than the class (so each minority image is repeated the same
number of times, give or take one, and each majority image is seen at most once per sweep); the
N picks are then shuffled. Everything comes from ``np.random.default_rng([seed, sweep, 0xBA1])``,
so a balanced sweep, like a uniform one, depends only on ``(seed, sweep)``: the same for every
batch size, on every DDP rank (which then take their usual ``p % world_size`` share) and after a
resume.
"""

from __future__ import annotations

import numpy as np

SAMPLERS = ("uniform", "balanced")
_STREAM = 0xBA1  # keeps balanced draws independent of the uniform permutation of the same sweep


def class_shares(labels: np.ndarray, length: int) -> dict[int, int]:
    """How many of ``length`` positions each class present in ``labels`` receives (equal, +-1)."""
    present = np.flatnonzero(np.bincount(labels)) if len(labels) else np.zeros(0, dtype=np.int64)
    if not len(present):
        return {}
    base, extra = divmod(length, len(present))
    return {int(c): base + (1 if i < extra else 0) for i, c in enumerate(present)}


def balanced_order(labels: np.ndarray, seed: int, sweep: int, length: int | None = None) -> np.ndarray:
    """Dataset indexes (int64) of one class-balanced sweep of ``length`` (default ``len(labels)``) samples."""
    labels = np.asarray(labels, dtype=np.int64)
    length = len(labels) if length is None else int(length)
    if labels.ndim != 1 or (len(labels) and labels.min() < 0):
        raise ValueError("balanced sampling needs one non-negative class index per sample")
    rng = np.random.default_rng([seed, sweep, _STREAM])
    picks = []
    for cls, share in class_shares(labels, length).items():
        members = np.flatnonzero(labels == cls)
        rounds = -(-share // len(members))
        cycled = np.concatenate([rng.permutation(members) for _ in range(rounds)])
        picks.append(cycled[:share])
    order = np.concatenate(picks) if picks else np.zeros(0, dtype=np.int64)
    return rng.permutation(order).astype(np.int64)
