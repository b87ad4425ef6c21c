"""The TensorFlow engine's training run: the PyTorch loop's outputs, logging and checkpoints, in TensorFlow.

Data through ``amlvision.tf.data`` (tf.data, vectorised), the tutorial's recipe (plain SGD with L2 where
the tutorial puts it and an EMA of the weights for evaluation; Adam for the Keras CNN), the same
Tracker (Azure ML run + MLflow + metrics.jsonl), the same evaluation files
(``amlvision.training.evaluation``), ``checkpoint.pt`` via ``amlvision.training.checkpoint`` (weights,
optimiser and EMA variables as NumPy arrays) and ``--resume``, and an ONNX export checked against
TensorFlow. Batches and augmentation depend only on (seed, epoch, step), so a resumed run repeats the
uninterrupted one.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from amlvision.model_dir import Preprocess
from amlvision.tf import data as tfdata
from amlvision.tf.export import export_tf_onnx
from amlvision.tf.models import TFNet, build, serving_function, tutorial_crop
from amlvision.tf.runtime import keras, tf
from amlvision.training import schedule
from amlvision.training.checkpoint import (
    CHECKPOINT_NAME,
    EpochStats,
    RunState,
    check_resumable,
    load_checkpoint,
    save_checkpoint,
)
from amlvision.training.config import TrainConfig
from amlvision.training.epochs import EpochProgress, history_row
from amlvision.training.evaluation import MistakeGallery, evaluate_predictions, per_class_table
from amlvision.training.inputs import resize_used
from amlvision.training.interrupt import Interrupted, SignalGuard
from amlvision.training.runlog import git_commit, logged_params, write_run_files
from amlvision.training.tracking import Tracker, open_tracker

log = logging.getLogger("amlvision.train")


class TFWeightEMA:
    """``tf.train.ExponentialMovingAverage(decay, num_updates=global_step)`` over the trainable variables."""

    def __init__(self, variables: list, decay: float):
        self.decay = decay
        self.variables = list(variables)
        self.shadow = [tf.Variable(tf.convert_to_tensor(v), trainable=False) for v in self.variables]

    def update(self, step: tf.Tensor) -> None:
        step = tf.cast(step, tf.float32)
        decay = tf.minimum(self.decay, (1.0 + step) / (10.0 + step))
        for shadow, var in zip(self.shadow, self.variables, strict=True):
            shadow.assign_sub((1.0 - decay) * (shadow - tf.convert_to_tensor(var)))


def configure_threads(threads: int) -> None:
    """``--threads`` for TensorFlow's intra-op pool (and one inter-op thread, so the count is honest)."""
    if threads:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)


class TFTrainer:
    """One TensorFlow training run; :meth:`run` returns the final metrics (also in outputs/metrics.json)."""

    def __init__(self, cfg: TrainConfig):
        self.cfg = cfg
        self.outputs = Path(cfg.outputs)
        self.interactive = cfg.progress == "bar" or (cfg.progress == "auto" and sys.stderr.isatty())
        try:
            configure_threads(cfg.threads)
        except RuntimeError as exc:  # TensorFlow already running in this process: keep its pools
            log.warning("--threads %d not applied (%s)", cfg.threads, exc)

    # ------------------------------------------------------------------ set-up
    def _prepare(self) -> None:
        cfg = self.cfg
        if cfg.epoch_size:
            raise ValueError("--epoch-size is not supported by the tensorflow engine (one epoch = one sweep)")
        keras.utils.set_random_seed(cfg.seed)  # Python, NumPy and TensorFlow: the initial weights
        tf.config.experimental.enable_op_determinism()  # same run -> same bits (resume tests rely on it)
        self.outputs.mkdir(parents=True, exist_ok=True)
        self.data = tfdata.load_tf_data(cfg)
        num_classes = len(self.data.class_names)
        self.net: TFNet = build(cfg.model, num_classes, self.data.image_shape, cfg.weight_decay)
        self.eval_net: TFNet = build(cfg.model, num_classes, self.data.image_shape, cfg.weight_decay)
        variables = self.net.model.trainable_variables
        if cfg.model == "keras-cnn":
            self.optimizer = keras.optimizers.Adam(learning_rate=cfg.lr)
        else:
            self.optimizer = keras.optimizers.SGD(learning_rate=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov)
        self.optimizer.build(variables)
        self.ema = TFWeightEMA(variables, cfg.ema) if cfg.ema else None
        n = len(self.data.train_labels)
        self.drop_last = n >= cfg.batch_size * 2
        self.steps_per_epoch = n // cfg.batch_size if self.drop_last else math.ceil(n / cfg.batch_size)
        if self.steps_per_epoch == 0:
            raise ValueError(f"{cfg.data}: {n} training images cannot fill one batch of {cfg.batch_size}")
        self.total_steps = cfg.epochs * self.steps_per_epoch
        self.images = tf.constant(self.data.train_images)
        self.labels = tf.constant(self.data.train_labels)
        if cfg.model == "tf-cifar10":
            self.augment = functools.partial(tfdata.tutorial_augment, crop=tutorial_crop(*self.data.image_shape[1:]))
        else:
            self.augment = tfdata.scale_only
        self.train_step = self._make_train_step()
        self.state = RunState()
        self.tracker: Tracker = open_tracker(self.outputs, cfg.experiment, run_name=f"{cfg.model}-tf-seed{cfg.seed}")
        if cfg.resume:
            self._resume()

    def _make_train_step(self):
        model, optimizer, ema = self.net.model, self.optimizer, self.ema

        @tf.function(reduce_retracing=True, autograph=False)  # no Python control flow to convert
        def step(x, y, lr):
            optimizer.learning_rate.assign(lr)
            with tf.GradientTape() as tape:
                logits = model(x, training=True)
                cross_entropy = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits))
                loss = cross_entropy + tf.add_n(model.losses) if model.losses else cross_entropy
            grads = tape.gradient(loss, model.trainable_variables)
            optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
            if ema is not None:
                ema.update(optimizer.iterations)  # num_updates = global step after this update, as the tutorial
            return cross_entropy, logits

        return step

    # ------------------------------------------------------------------ checkpoints
    def _snapshot(self) -> dict[str, Any]:
        return {
            "model": [v.numpy() for v in self.net.model.weights],
            "optimizer": [np.asarray(v.numpy()) for v in self.optimizer.variables],
            "ema": [v.numpy() for v in self.ema.shadow] if self.ema is not None else None,
        }

    def _checkpoint(self) -> None:
        save_checkpoint(
            self.outputs / CHECKPOINT_NAME,
            engine="tensorflow",
            **self._snapshot(),
            **self.state.checkpoint_fields(),
            config=self.cfg.to_dict(),
            data_checksum=self.data.checksum,
        )

    def _resume(self) -> None:
        path = self.outputs / CHECKPOINT_NAME
        ckpt = load_checkpoint(path)
        if ckpt.get("engine") != "tensorflow":
            raise ValueError(f"{path}: a PyTorch checkpoint; resume it without --engine tensorflow")
        check_resumable(ckpt, self.cfg, self.data.checksum, path)
        for var, value in zip(self.net.model.weights, ckpt["model"], strict=True):
            var.assign(value)
        for var, value in zip(self.optimizer.variables, ckpt["optimizer"], strict=True):
            var.assign(value)
        if self.ema is not None:
            for var, value in zip(self.ema.shadow, ckpt["ema"], strict=True):
                var.assign(value)
        self.state = RunState.from_checkpoint(ckpt)
        log.info(
            "resumed from %s at epoch %d, step %d of the epoch", path, self.state.epoch + 1, self.state.step_in_epoch
        )

    # ------------------------------------------------------------------ training
    def run(self) -> dict[str, Any]:
        self._prepare()
        status = "failed"
        try:
            self._start_logging()
            with SignalGuard() as guard:
                while self.state.epoch < self.cfg.epochs:
                    self._train_epoch(guard)
            metrics = self._finish()
            status = "completed"
            return metrics
        except Interrupted:
            status = "interrupted"
            raise
        finally:
            self.tracker.close(status)

    def _start_logging(self) -> None:
        cfg, data = self.cfg, self.data
        write_run_files(self.outputs, cfg, data.split)
        self.tracker.set_tags(
            {
                "data_checksum": data.checksum,
                "model": cfg.model,
                "engine": f"tensorflow {tf.__version__} (keras {keras.__version__})",
                "git_commit": git_commit(),
                "reader": cfg.reader,
                "heldout": data.heldout_name,
            }
        )
        self.tracker.log_params(logged_params(cfg))
        log.info(
            "tensorflow %s: data %s: %d training images, held-out %s: %d images, %d classes, checksum %s",
            tf.__version__,
            cfg.data,
            len(data.train_labels),
            data.heldout_name,
            len(data.heldout_labels),
            len(data.class_names),
            data.checksum,
        )
        log.info(
            "model %s (%d trainable parameters); %d epochs x %d steps of %d",
            cfg.model,
            self.net.model.count_params(),
            cfg.epochs,
            self.steps_per_epoch,
            cfg.batch_size,
        )

    def _train_epoch(self, guard: SignalGuard) -> None:
        cfg, s = self.cfg, self.state
        skip = s.step_in_epoch
        if not skip:
            s.stats = EpochStats()
        batches = tfdata.train_batches(
            self.images,
            self.labels,
            seed=cfg.seed,
            epoch=s.epoch,
            batch_size=cfg.batch_size,
            drop_last=self.drop_last,
            skip=skip,
            augment=self.augment,
        )
        progress = EpochProgress(s, cfg, self.steps_per_epoch, interactive=self.interactive, show=True)
        for index, (x, y) in enumerate(batches, start=skip):
            lr = schedule.lr_at(cfg, s.global_step / self.total_steps)
            loss, logits = self.train_step(x, y, tf.constant(lr, tf.float32))
            loss_value = float(loss)
            if not math.isfinite(loss_value):
                raise FloatingPointError(
                    f"loss became {loss_value} at epoch {s.epoch + 1} step {index + 1}; lower --lr (now {lr:g})"
                )
            correct = int(np.sum(np.argmax(logits.numpy(), axis=1) == y.numpy()))
            progress.step(index, loss_value, correct, int(y.shape[0]), lr)
            progress.stop_if_signalled(guard, self._checkpoint, self.outputs / CHECKPOINT_NAME)
        progress.close()
        self._end_epoch()

    def _end_epoch(self) -> None:
        cfg, s = self.cfg, self.state
        probs, labels, val_loss = self.predict()
        scores = {
            "val_loss": val_loss,
            "val_accuracy": float((probs.argmax(1) == labels).mean()) if len(labels) else math.nan,
        }
        totals = (s.stats.loss_sum, s.stats.correct, s.stats.count)
        row = history_row(s, cfg, self.total_steps, totals, scores)
        s.end_epoch(row)
        self.tracker.log_metrics({k: v for k, v in row.items() if k != "epoch"}, step=row["epoch"])
        log.info(
            "epoch %d/%d loss %.4f acc %.4f val_loss %.4f val_acc %.4f lr %.4g %.0f img/s",
            row["epoch"],
            cfg.epochs,
            row["loss"],
            row["accuracy"],
            val_loss,
            row["val_accuracy"],
            row["lr"],
            row["images_per_sec"],
        )
        self._checkpoint()

    # ------------------------------------------------------------------ evaluation and export
    def _sync_eval_net(self) -> TFNet:
        """The evaluated network: the EMA shadow weights when --ema is set (the tutorial's cifar10_eval.py)."""
        source = self.ema.shadow if self.ema is not None else self.net.model.trainable_variables
        for var, value in zip(self.eval_net.model.trainable_variables, source, strict=True):
            var.assign(value)
        return self.eval_net

    def predict(self, gallery: MistakeGallery | None = None) -> tuple[np.ndarray, np.ndarray, float]:
        """Softmax probabilities, labels and mean cross-entropy over the held-out split."""
        net = self._sync_eval_net()

        @tf.function(autograph=False)
        def forward(x):
            return net.model(net.eval_input(tf.cast(x, tf.float32)), training=False)

        probs, labels, loss_sum, offset = [], [], 0.0, 0
        for x, y in tfdata.eval_batches(self.data.heldout_images, self.data.heldout_labels, self.cfg.eval_batch_size):
            logits = forward(x)
            loss_sum += float(tf.reduce_sum(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits)))
            p = tf.nn.softmax(logits).numpy()
            if gallery is not None:
                gallery.offer(x.numpy(), y.numpy(), p, offset)
            probs.append(p)
            labels.append(y.numpy())
            offset += len(p)
        all_labels = np.concatenate(labels) if labels else np.zeros(0, dtype=np.int64)
        probabilities = np.concatenate(probs) if probs else np.zeros((0, 0), dtype=np.float32)
        return probabilities, all_labels, loss_sum / max(1, len(all_labels))

    def preprocess(self) -> Preprocess:
        """Plain 0-255 pixels: the input stage is inside the graph. Packed data: resized bilinear when packed."""
        channels, height, width = self.data.image_shape
        inside = (
            "central crop {}x{} and per_image_standardization".format(*tutorial_crop(height, width))
            if self.cfg.model == "tf-cifar10"
            else "pixels / 255"
        )
        return Preprocess(
            height=height,
            width=width,
            channels=channels,
            resize=resize_used(self.cfg),
            in_graph=f"{inside} (inside model.onnx, exported from TensorFlow by tf2onnx)",
        )

    def _finish(self) -> dict[str, Any]:
        cfg, data = self.cfg, self.data
        gallery = MistakeGallery()
        start = time.perf_counter()
        probs, labels, val_loss = self.predict(gallery)
        eval_seconds = time.perf_counter() - start
        train_seconds = sum(r["epoch_seconds"] for r in self.state.history)
        extra = {
            "model": cfg.model,
            "engine": "tensorflow",
            "tensorflow": tf.__version__,
            "heldout": data.heldout_name,
            "loss": val_loss,
            "epochs": cfg.epochs,
            "train_seconds": train_seconds,
            "eval_seconds": eval_seconds,
            "data_checksum": data.checksum,
            "history": self.state.history,
            "tta": False,
            "ema": cfg.ema,
        }
        metrics = evaluate_predictions(labels, probs, data.class_names, self.outputs, gallery=gallery, extra=extra)
        self.eval_net.model.save(self.outputs / "model.keras")
        serve = serving_function(self.eval_net)
        onnx_check = export_tf_onnx(serve, self.outputs, data.class_names, self.preprocess(), data.heldout_images[:64])
        metrics["onnx_check"] = onnx_check
        (self.outputs / "metrics.json").write_text(json.dumps(metrics, indent=2))
        self.tracker.log_metrics(
            {
                "final_accuracy": metrics["accuracy"],
                "final_macro_f1": metrics["macro_f1"],
                "train_seconds": train_seconds,
            },
            step=cfg.epochs,
        )
        self.tracker.log_table("per_class_metrics", per_class_table(metrics))
        self.tracker.log_confusion_matrix("confusion_matrix", data.class_names, metrics["confusion_matrix"]["matrix"])
        for name in ("confusion_matrix", "mistakes"):
            self.tracker.log_image(name, self.outputs / f"{name}.png")
        for name in ("metrics.json", "classification_report.txt", "model.onnx", "labels.json", "preprocess.json"):
            self.tracker.log_artifact(self.outputs / name)
        log.info(
            "held-out %s accuracy %.4f (macro F1 %.4f) on %d images; ONNX max |diff| %.2g; outputs in %s",
            data.heldout_name,
            metrics["accuracy"],
            metrics["macro_f1"],
            metrics["num_samples"],
            onnx_check["max_abs_diff"],
            self.outputs,
        )
        return metrics
