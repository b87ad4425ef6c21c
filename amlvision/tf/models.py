"""The TensorFlow engine's networks (Keras 3 on the TensorFlow backend) and their input stages.

* ``tf-cifar10``: tensorflow/models ``tutorials/image/cifar10/cifar10.py`` ``inference()`` layer for
  layer: conv1 5x5 64 -> pool1 3x3/2 SAME -> norm1 LRN -> conv2 5x5 64 (bias 0.1) -> norm2 -> pool2 ->
  local3 384 -> local4 192 (L2 0.004 on both kernels) -> softmax_linear, truncated-normal initialisers.
  Input stage: central crop 24x24 (3/4 of the side) and ``per_image_standardization``.
* ``keras-cnn``: tensorflow.org/tutorials/images/cnn: conv 32/64/64 3x3 VALID with 2x2 pools, dense 64,
  logits; input stage: pixels / 255.

Every model sees NHWC float32 after its input stage; :func:`serving_function` wraps model and stage
for export (NCHW 0-255 pixels in, per docs/CONTRACTS.md).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

from amlvision.tf import TF_MODELS
from amlvision.tf.runtime import keras, tf

# tf.nn.local_response_normalization(depth_radius=4, bias=1.0, alpha=0.001 / 9.0, beta=0.75), as cifar10.py
LRN = {"depth_radius": 4, "bias": 1.0, "alpha": 0.001 / 9.0, "beta": 0.75}


@keras.saving.register_keras_serializable(package="amlvision")
class LocalResponseNorm(keras.layers.Layer):
    """``tf.nn.local_response_normalization`` across channels (Keras has no LRN layer)."""

    def __init__(self, depth_radius: int = 4, bias: float = 1.0, alpha: float = 0.001 / 9.0, beta: float = 0.75, **kw):
        super().__init__(**kw)
        self.depth_radius, self.bias, self.alpha, self.beta = depth_radius, bias, alpha, beta

    def call(self, x):
        return tf.nn.local_response_normalization(
            x, depth_radius=self.depth_radius, bias=self.bias, alpha=self.alpha, beta=self.beta
        )

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "depth_radius": self.depth_radius,
            "bias": self.bias,
            "alpha": self.alpha,
            "beta": self.beta,
        }


def tutorial_crop(height: int, width: int) -> tuple[int, int]:
    """24x24 for CIFAR's 32x32: the same 3/4 of the side for any image size."""
    return max(1, height * 3 // 4), max(1, width * 3 // 4)


def _tn(stddev: float) -> keras.initializers.Initializer:
    return keras.initializers.TruncatedNormal(stddev=stddev)  # re-drawn beyond 2 std, as tf.truncated_normal


def build_tf_cifar10(num_classes: int, image_shape: tuple[int, int, int], weight_decay: float) -> keras.Model:
    """cifar10.py ``inference()``; ``weight_decay`` goes on local3/local4 kernels as ``wd * l2_loss(w)``."""
    channels, height, width = image_shape
    crop_h, crop_w = tutorial_crop(height, width)
    layers = keras.layers
    # keras L2(l) adds l * sum(w^2); the tutorial adds wd * tf.nn.l2_loss(w) = wd * sum(w^2) / 2.
    decay = keras.regularizers.L2(weight_decay / 2) if weight_decay else None
    zeros, tenth = keras.initializers.Zeros(), keras.initializers.Constant(0.1)
    inputs = keras.Input((crop_h, crop_w, channels), name="images")
    x = layers.Conv2D(64, 5, padding="same", activation="relu", kernel_initializer=_tn(5e-2), name="conv1")(inputs)
    x = layers.MaxPooling2D(3, 2, padding="same", name="pool1")(x)
    x = LocalResponseNorm(**LRN, name="norm1")(x)
    x = layers.Conv2D(
        64, 5, padding="same", activation="relu", kernel_initializer=_tn(5e-2), bias_initializer=tenth, name="conv2"
    )(x)
    x = LocalResponseNorm(**LRN, name="norm2")(x)
    x = layers.MaxPooling2D(3, 2, padding="same", name="pool2")(x)
    x = layers.Flatten(name="flatten")(x)
    for units, name in ((384, "local3"), (192, "local4")):
        x = layers.Dense(
            units,
            activation="relu",
            kernel_initializer=_tn(0.04),
            bias_initializer=tenth,
            kernel_regularizer=decay,
            name=name,
        )(x)
    outputs = layers.Dense(
        num_classes, kernel_initializer=_tn(1 / 192.0), bias_initializer=zeros, name="softmax_linear"
    )(x)
    return keras.Model(inputs, outputs, name="tf_cifar10")


def build_keras_cnn(num_classes: int, image_shape: tuple[int, int, int], weight_decay: float = 0.0) -> keras.Model:
    """The Keras CNN tutorial's model (Keras' default Glorot-uniform initialisers)."""
    channels, height, width = image_shape
    layers = keras.layers
    return keras.Sequential(
        [
            keras.Input((height, width, channels), name="images"),
            layers.Conv2D(32, 3, activation="relu", name="conv1"),
            layers.MaxPooling2D(2, name="pool1"),
            layers.Conv2D(64, 3, activation="relu", name="conv2"),
            layers.MaxPooling2D(2, name="pool2"),
            layers.Conv2D(64, 3, activation="relu", name="conv3"),
            layers.Flatten(name="flatten"),
            layers.Dense(64, activation="relu", name="dense1"),
            layers.Dense(num_classes, name="logits"),
        ],
        name="keras_cnn",
    )


def _scale(images: tf.Tensor) -> tf.Tensor:
    return images / 255.0


def central_crop_standardize(images: tf.Tensor, crop: tuple[int, int]) -> tf.Tensor:
    """Evaluation input of cifar10_input.py: ``resize_image_with_crop_or_pad`` then ``per_image_standardization``."""
    height, width = images.shape[1], images.shape[2]
    top, left = (height - crop[0]) // 2, (width - crop[1]) // 2
    images = images[:, top : top + crop[0], left : left + crop[1], :]
    return tf.image.per_image_standardization(images)


@dataclass(frozen=True)
class TFNet:
    """A built model with the input stage it expects (NHWC float32 0-255 -> model input) at evaluation."""

    name: str
    model: keras.Model
    image_shape: tuple[int, int, int]  # C, H, W of the data
    eval_input: Callable[[tf.Tensor], tf.Tensor]


def build(name: str, num_classes: int, image_shape: tuple[int, int, int], weight_decay: float) -> TFNet:
    """Build model ``name`` (one of TF_MODELS) for data of ``image_shape`` = (C, H, W)."""
    shape = tuple(int(v) for v in image_shape)
    if name == "tf-cifar10":
        crop = tutorial_crop(shape[1], shape[2])
        model = build_tf_cifar10(num_classes, shape, weight_decay)
        return TFNet(name, model, shape, functools.partial(central_crop_standardize, crop=crop))
    if name == "keras-cnn":
        return TFNet(name, build_keras_cnn(num_classes, shape, weight_decay), shape, _scale)
    raise ValueError(f"unknown tensorflow model {name!r}; choose one of {', '.join(TF_MODELS)}")


def serving_function(net: TFNet) -> tf.types.experimental.PolymorphicFunction:
    """NCHW float32 0-255 pixels (``input``) -> ``logits``: the graph tf2onnx exports and the parity check runs."""
    channels, height, width = net.image_shape

    @tf.function(
        input_signature=[tf.TensorSpec([None, channels, height, width], tf.float32, name="input")], autograph=False
    )
    def serve(pixels):
        images = tf.transpose(pixels, [0, 2, 3, 1])
        return {"logits": net.model(net.eval_input(images), training=False)}

    return serve
