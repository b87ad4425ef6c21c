"""Class imbalance in training: per-class loss weights (``--class-weights``) and what the run records about it.

``--class-weights none`` leaves the loss alone; ``balanced`` gives class c the weight
``n_samples / (n_classes * n_c)`` (scikit-learn's ``compute_class_weight("balanced")``, so a
class twice as rare counts twice as much); ``FILE`` reads the weights from a YAML/JSON file:
either a mapping ``class name: weight`` naming every class, or a list of one weight per class in
``labels.json`` order. The class-balanced *sampler* lives with the sources
(``amlvision.sources.sampling``) because it decides which samples a sweep visits.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from sklearn.utils.class_weight import compute_class_weight

WEIGHT_MODES = ("none", "balanced")


def class_counts(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Training samples per class index (int64, length ``num_classes``)."""
    return np.bincount(np.asarray(labels, dtype=np.int64), minlength=num_classes)[:num_classes]


def _from_file(path: Path, class_names: Sequence[str]) -> list[float]:
    if not path.is_file():
        raise FileNotFoundError(f"--class-weights {path}: no such file (or use 'none' / 'balanced')")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ValueError(f"--class-weights {path}: invalid YAML/JSON ({exc})") from exc
    names = [str(n) for n in class_names]
    if isinstance(raw, list):
        if len(raw) != len(names):
            raise ValueError(f"--class-weights {path}: {len(raw)} weights for {len(names)} classes {names}")
        items = list(zip(names, raw, strict=True))
    elif isinstance(raw, dict):
        given = {str(k): v for k, v in raw.items()}
        unknown = sorted(set(given) - set(names))
        missing = [n for n in names if n not in given]
        if unknown or missing:
            raise ValueError(
                f"--class-weights {path}: "
                + "; ".join(
                    part
                    for part in (
                        f"unknown classes {unknown}" if unknown else "",
                        f"no weight for classes {missing}" if missing else "",
                    )
                    if part
                )
                + f" (classes: {names})"
            )
        items = [(n, given[n]) for n in names]
    else:
        kind = type(raw).__name__
        raise ValueError(f"--class-weights {path}: expected a mapping class: weight or a list, got {kind}")
    weights = []
    for name, value in items:
        try:
            weight = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"--class-weights {path}: class {name!r}: weight {value!r} is not a number") from None
        if not np.isfinite(weight) or weight < 0:
            raise ValueError(f"--class-weights {path}: class {name!r}: weight must be finite and >= 0, got {value!r}")
        weights.append(weight)
    if not any(weights):
        raise ValueError(f"--class-weights {path}: every weight is 0")
    return weights


def resolve_class_weights(spec: str, counts: np.ndarray, class_names: Sequence[str]) -> list[float] | None:
    """The loss weight of each class index for ``--class-weights spec`` (``None``: unweighted)."""
    if spec == "none":
        return None
    if spec == "balanced":
        present = np.flatnonzero(counts)
        weights = np.zeros(len(counts))
        # scikit-learn's definition, over the classes that occur (an absent class cannot be weighted)
        labels = np.repeat(present, counts[present])
        weights[present] = compute_class_weight("balanced", classes=present, y=labels)
        return [round(float(w), 6) for w in weights]
    return _from_file(Path(spec), class_names)


def balance_record(
    class_names: Sequence[str], counts: np.ndarray, weights: list[float] | None, spec: str, sampler: str
) -> dict[str, Any]:
    """What outputs/class_balance.json, metrics.json and the run log say about the training classes."""
    present = counts[counts > 0]
    return {
        "class_weights": spec,
        "sampler": sampler,
        "train_counts": {str(n): int(c) for n, c in zip(class_names, counts, strict=True)},
        "imbalance_ratio": float(present.max() / present.min()) if len(present) else float("nan"),
        "weights": None if weights is None else {str(n): w for n, w in zip(class_names, weights, strict=True)},
    }
