"""Minibatch sources (CNTK "deserializers"): packed arrays, image map files, CTF text.

Every source yields ``(features, labels)`` as ``float32 N x C x H x W`` (0-255 RGB) and ``int64``
labels with CNTK's sweep / epoch / partition semantics; see ``base.py`` and docs/sources.md.
"""

from amlvision.sources.base import FULL_DATA_SWEEP, INFINITELY_REPEAT, BatchPlan, Minibatch, MinibatchSource

__all__ = ["FULL_DATA_SWEEP", "INFINITELY_REPEAT", "BatchPlan", "Minibatch", "MinibatchSource"]
