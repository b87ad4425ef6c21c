"""Import TensorFlow so that it can share a process with PyTorch: every TensorFlow import goes through here.

TensorFlow 2.21 and triton (which ``torch._dynamo`` loads, e.g. via torchvision) both bring LLVM; when
triton is loaded *after* TensorFlow the process dies with a segmentation fault (reproduced here:
``import tensorflow, torch._dynamo`` crashes, the reverse order works). So PyTorch's compiler stack is
loaded first whenever PyTorch is installed; the scoring image has neither and never imports this.
"""

from __future__ import annotations

import importlib.util
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's start-up banner is not a warning

if importlib.util.find_spec("torch") is not None:
    import torch._dynamo  # noqa: F401

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

__all__ = ["keras", "tf"]
