"""Copy a TensorFlow ``tf-cifar10`` model's weights into its PyTorch twin (``amlvision.training.models.TFCifar10Net``).

Conv kernels go from TensorFlow's ``H x W x in x out`` to PyTorch's ``out x in x H x W``; dense kernels
(``in x out``) are transposed. The twin flattens its features in TensorFlow's NHWC order, so no
reordering of local3's rows is needed. With these weights the two forward passes agree (the twin test).
"""

from __future__ import annotations

import numpy as np
import torch

from amlvision.tf.runtime import keras

# PyTorch twin layer -> Keras layer of cifar10.py's names
LAYERS = {"conv1": "conv1", "conv2": "conv2", "local3": "local3", "local4": "local4", "logits": "softmax_linear"}


def torch_state_from_keras(model: keras.Model) -> dict[str, torch.Tensor]:
    """The twin's ``state_dict`` holding ``model``'s weights."""
    state = {}
    for twin_name, keras_name in LAYERS.items():
        kernel, bias = (np.asarray(w) for w in model.get_layer(keras_name).get_weights())
        weight = kernel.transpose(3, 2, 0, 1) if kernel.ndim == 4 else kernel.T
        state[f"{twin_name}.weight"] = torch.from_numpy(np.ascontiguousarray(weight))
        state[f"{twin_name}.bias"] = torch.from_numpy(bias.copy())
    return state
