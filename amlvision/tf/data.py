"""The TensorFlow engine's input pipeline: the same resolver and packed format, then ``tf.data``.

The data is resolved exactly as for the PyTorch engine (``amlvision.training.data.load_training_data``:
packing, the held-out split, the checksum), then both splits are read from the packed files into
memory. Each epoch is a seeded permutation cut into batches; a batch is one ``tf.gather`` and the
tutorial's augmentation on the whole batch with stateless random ops seeded by (seed, epoch, step), so
there is no per-image Python and a resumed run sees exactly the same batches as an uninterrupted one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from amlvision.tf.runtime import tf
from amlvision.training.config import TrainConfig
from amlvision.training.data import load_training_data


@dataclass
class TFData:
    train_images: np.ndarray  # N x H x W x C uint8
    train_labels: np.ndarray  # N int64
    heldout_images: np.ndarray
    heldout_labels: np.ndarray
    class_names: list[str]
    image_shape: tuple[int, int, int]  # C, H, W
    heldout_name: str
    checksum: str
    split: dict[str, Any] = field(default_factory=dict)


def load_tf_data(cfg: TrainConfig) -> TFData:
    """Resolve ``cfg.data`` with the shared resolver (packed reader) and read both splits' arrays."""
    resolved = load_training_data(cfg)
    arrays = []
    for source in (resolved.train, resolved.heldout):
        packed, split = source.dataset, source.split
        arrays += [np.array(packed.images(split)), np.array(packed.labels(split), dtype=np.int64)]
    return TFData(
        *arrays,
        class_names=list(resolved.class_names),
        image_shape=tuple(resolved.image_shape),
        heldout_name=resolved.heldout_name,
        checksum=resolved.checksum,
        split=resolved.split,
    )


def tutorial_augment(images: tf.Tensor, seed: tf.Tensor, crop: tuple[int, int]) -> tf.Tensor:
    """cifar10_input.py ``distorted_inputs`` on a whole uint8 NHWC batch, one independent draw per image.

    random_crop to ``crop``, random_flip_left_right, random_brightness(max_delta=63),
    random_contrast(0.2, 1.8), per_image_standardization, in that order (float pixels, no clipping,
    as the tutorial).
    """
    x = tf.cast(images, tf.float32)
    n = tf.shape(x)[0]
    height, width = x.shape[1], x.shape[2]
    seeds = tf.random.experimental.stateless_split(seed, 6)
    top = tf.random.stateless_uniform([n], seeds[0], 0, height - crop[0] + 1, dtype=tf.int32)
    left = tf.random.stateless_uniform([n], seeds[1], 0, width - crop[1] + 1, dtype=tf.int32)
    x = tf.gather(x, top[:, None] + tf.range(crop[0])[None, :], axis=1, batch_dims=1)
    x = tf.gather(x, left[:, None] + tf.range(crop[1])[None, :], axis=2, batch_dims=1)
    flip = tf.random.stateless_uniform([n, 1, 1, 1], seeds[2]) < 0.5
    x = tf.where(flip, tf.reverse(x, axis=[2]), x)
    x = x + tf.random.stateless_uniform([n, 1, 1, 1], seeds[3], -63.0, 63.0)
    factor = tf.random.stateless_uniform([n, 1, 1, 1], seeds[4], 0.2, 1.8)
    mean = tf.reduce_mean(x, axis=[1, 2], keepdims=True)
    x = (x - mean) * factor + mean
    return tf.image.per_image_standardization(x)


def scale_only(images: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    """The Keras CNN tutorial's input: pixels / 255, no augmentation (``seed`` unused)."""
    del seed
    return tf.cast(images, tf.float32) / 255.0


def epoch_order(num_samples: int, seed: int, epoch: int) -> np.ndarray:
    """The sample order of one epoch: a permutation that depends only on (seed, epoch)."""
    return np.random.default_rng([seed, epoch]).permutation(num_samples)


def train_batches(
    images: tf.Tensor,
    labels: tf.Tensor,
    *,
    seed: int,
    epoch: int,
    batch_size: int,
    drop_last: bool,
    skip: int,
    augment: Any,
) -> tf.data.Dataset:
    """(augmented images, labels) batches of one epoch, starting after ``skip`` batches.

    ``augment(uint8 batch, seed[2]) -> model input``; the seed of step s is (seed, epoch * 1,000,003 + s).
    """
    order = epoch_order(int(labels.shape[0]), seed, epoch)

    def load(step, index):
        step_seed = tf.stack([tf.constant(seed, tf.int64), tf.constant(epoch * 1_000_003, tf.int64) + step])
        return augment(tf.gather(images, index), step_seed), tf.gather(labels, index)

    return (
        tf.data.Dataset.from_tensor_slices(order)
        .batch(batch_size, drop_remainder=drop_last)
        .enumerate()
        .skip(skip)
        .map(tf.autograph.experimental.do_not_convert(load), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        .prefetch(2)
    )


def eval_batches(images: np.ndarray, labels: np.ndarray, batch_size: int) -> tf.data.Dataset:
    """Un-augmented uint8 batches in file order (the input stage runs inside the prediction function)."""
    return tf.data.Dataset.from_tensor_slices((images, labels)).batch(batch_size).prefetch(2)
