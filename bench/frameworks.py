"""TensorFlow vs PyTorch on the same network, data, threads and machine, in one run: images/s.

The network is the TensorFlow CIFAR-10 tutorial CNN (``tf-cifar10``): Keras 3 on TensorFlow, and its
PyTorch twin (``amlvision.training.models.TFCifar10Net``) holding the *same weights* (copied with
``amlvision.tf.twin``). Both see the same real CIFAR-10 batches (uint8 32x32, the subset of
``amlvision.testing.datasets``) and include the tutorial's input stage in the timed step:

* train: augmentation (random crop 24, flip, brightness, contrast, per-image standardisation) +
  forward + backward + SGD update, batch 128;
* infer: central crop + standardisation + forward, batch 512.

Precisions: fp32 for both; bf16 (``--bf16``) as each framework offers it on a CPU -- PyTorch
``torch.autocast("cpu", torch.bfloat16)``, Keras ``mixed_bfloat16`` -- noting that a CPU without native
bf16 (no AVX-512 BF16 / AMX, e.g. AMD Zen 3) emulates it. Prints one JSON line per measurement and
the TensorFlow / PyTorch ratio (the PyTorch figure is the baseline), with the CPU and load average.

    python bench/frameworks.py --threads 2 --steps 20 [--bf16]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def cpu_flags() -> set[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def real_batches(batch: int, count: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """``count`` batches of real CIFAR-10 training images (uint8 NHWC) and labels, cycling over the subset."""
    from amlvision.formats.packed import PackedDataset
    from amlvision.pack import ensure_packed
    from amlvision.testing.datasets import cifar10_png_subset

    packed = PackedDataset(ensure_packed(cifar10_png_subset(train_per_class=150, test_per_class=50)))
    images, labels = np.array(packed.images("train")), np.array(packed.labels("train"))
    order = np.random.default_rng(0).permutation(len(labels))
    picks = [np.take(order, np.arange(i * batch, (i + 1) * batch), mode="wrap") for i in range(count)]
    return [images[p] for p in picks], [labels[p] for p in picks]


def timed(step, inputs: list, warmup: int) -> float:
    """Images per second of ``step`` over ``inputs`` after ``warmup`` untimed calls."""
    for item in inputs[:warmup]:
        step(*item)
    start = time.perf_counter()
    images = 0
    for item in inputs[warmup:]:
        step(*item)
        images += len(item[0])
    return images / (time.perf_counter() - start)


def measure_tensorflow(batches, labels, eval_batch: np.ndarray, warmup: int, bf16: bool) -> dict[str, float]:
    from amlvision.tf.data import tutorial_augment
    from amlvision.tf.models import build, central_crop_standardize
    from amlvision.tf.runtime import keras, tf

    keras.mixed_precision.set_global_policy("mixed_bfloat16" if bf16 else "float32")
    keras.utils.set_random_seed(0)
    net = build("tf-cifar10", 10, (3, 32, 32), weight_decay=0.004)
    model = net.model
    optimizer = keras.optimizers.SGD(learning_rate=0.1)

    @tf.function
    def train_step(x, y, seed):
        x = tutorial_augment(x, seed, (24, 24))
        with tf.GradientTape() as tape:
            logits = tf.cast(model(x, training=True), tf.float32)
            loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits))
            loss += tf.add_n(model.losses)
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
        return loss

    @tf.function
    def infer(x):
        return model(central_crop_standardize(tf.cast(x, tf.float32), (24, 24)), training=False)

    seeds = [tf.constant([0, i], tf.int64) for i in range(len(batches))]
    train = timed(lambda x, y, s: train_step(x, y, s).numpy(), list(zip(batches, labels, seeds, strict=True)), warmup)
    inference = timed(lambda x: infer(x).numpy(), [(eval_batch,)] * (warmup + 4), warmup)
    keras.mixed_precision.set_global_policy("float32")
    return {"train_images_per_sec": train, "infer_images_per_sec": inference, "model": model}


def measure_pytorch(keras_model, batches, labels, eval_batch: np.ndarray, warmup: int, bf16: bool) -> dict[str, float]:
    import contextlib

    import torch

    from amlvision.tf.twin import torch_state_from_keras
    from amlvision.training.models import TFCifar10Net

    torch.manual_seed(0)
    twin = TFCifar10Net(10, (3, 32, 32))
    twin.load_state_dict(torch_state_from_keras(keras_model))
    optimizer = torch.optim.SGD(twin.parameters(), lr=0.1)
    autocast = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if bf16 else contextlib.nullcontext

    def train_step(x, y):
        twin.train()
        pixels = torch.from_numpy(x).permute(0, 3, 1, 2).float()
        with autocast():
            # random 24x24 crop + flip of the tutorial: the packed source's translate 4 + flip, on the batch
            shift = torch.randint(-4, 5, (2,))
            pixels = torch.roll(pixels, shifts=(int(shift[0]), int(shift[1])), dims=(2, 3))
            logits = twin(pixels).float()
            loss = torch.nn.functional.cross_entropy(logits, torch.from_numpy(y))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    @torch.no_grad()
    def infer(x):
        twin.eval()
        with autocast():
            return twin(torch.from_numpy(x).permute(0, 3, 1, 2).float())

    train = timed(train_step, list(zip(batches, labels, strict=True)), warmup)
    inference = timed(infer, [(eval_batch,)] * (warmup + 4), warmup)
    return {"train_images_per_sec": train, "infer_images_per_sec": inference}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=20, help="timed training steps per framework")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--bf16", action="store_true", help="also measure bf16 (emulated on CPUs without it)")
    args = parser.parse_args()

    import torch

    from amlvision.tf.runtime import tf

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    torch.set_num_threads(args.threads)
    batches, labels = real_batches(128, args.warmup + args.steps)
    eval_batch = np.concatenate(batches)[:512]
    flags = cpu_flags()
    native_bf16 = bool({"avx512_bf16", "amx_bf16"} & flags)
    machine = {
        "cpu": cpu_name(),
        "native_bf16": native_bf16,
        "threads": args.threads,
        "tensorflow": tf.__version__,
        "torch": torch.__version__,
    }
    fp32_model = None
    for precision in ("fp32", "bf16") if args.bf16 else ("fp32",):
        bf16 = precision == "bf16"
        load_before = os.getloadavg()[0]
        try:
            tf_figures = measure_tensorflow(batches, labels, eval_batch, args.warmup, bf16)
            tf_model = tf_figures.pop("model")
            fp32_model = fp32_model or tf_model
            tf_error = None
        except tf.errors.InvalidArgumentError as exc:  # e.g. no bf16 CPU kernel for an op of the network
            tf_figures, tf_error = {}, exc.message.splitlines()[0]
        finally:
            from amlvision.tf.runtime import keras

            keras.mixed_precision.set_global_policy("float32")
        torch_figures = measure_pytorch(fp32_model, batches, labels, eval_batch, args.warmup, bf16)
        row = {
            "benchmark": "frameworks",
            "network": "tf-cifar10 (1,068,298 parameters)",
            "precision": precision,
            **machine,
            "pytorch_train_images_per_sec": round(torch_figures["train_images_per_sec"], 1),
            "pytorch_infer_images_per_sec": round(torch_figures["infer_images_per_sec"], 1),
        }
        if tf_error is None:
            tf_train, tf_infer = tf_figures["train_images_per_sec"], tf_figures["infer_images_per_sec"]
            row.update(
                tensorflow_train_images_per_sec=round(tf_train, 1),
                tensorflow_infer_images_per_sec=round(tf_infer, 1),
                train_ratio_tf_over_torch=round(tf_train / torch_figures["train_images_per_sec"], 3),
                infer_ratio_tf_over_torch=round(tf_infer / torch_figures["infer_images_per_sec"], 3),
            )
        else:
            row["tensorflow_unsupported"] = tf_error
        row["load_average"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
        print(json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
