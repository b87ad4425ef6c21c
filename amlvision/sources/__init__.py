"""Minibatch sources (CNTK "deserializers"): packed arrays, image map files, CTF text.

Every source yields ``(features, labels)`` as ``float32 N x C x H x W`` (0-255 RGB) and ``int64``
labels with CNTK's sweep / epoch / partition semantics; see ``base.py`` and docs/sources.md.
The concrete sources load lazily so ``import amlvision.sources.base`` stays light.
"""

from __future__ import annotations

import importlib
from typing import Any

from amlvision.sources.base import FULL_DATA_SWEEP, INFINITELY_REPEAT, BatchPlan, Minibatch, MinibatchSource

_LAZY = {
    "PackedSource": "amlvision.sources.packed_source",
    "ImageSource": "amlvision.sources.image_source",
    "CTFSource": "amlvision.sources.ctf_source",
    "make_source": "amlvision.sources.factory",
}

__all__ = ["FULL_DATA_SWEEP", "INFINITELY_REPEAT", "BatchPlan", "Minibatch", "MinibatchSource", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'amlvision.sources' has no attribute {name!r}")
