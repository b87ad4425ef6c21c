"""The training run behind train.py: data -> model -> epochs (checkpointed) -> evaluation -> ONNX export.

Determinism: batch order and augmentation depend only on (seed, epoch, sample) (see
``amlvision.sources.base``), the schedule only on the global step, and torch's RNG (dropout) is reseeded
from (seed, epoch) at each epoch start and saved in mid-epoch checkpoints. So ``--resume`` after a
kill -9 (restart from the last epoch checkpoint) or after SIGTERM/SIGINT (mid-epoch checkpoint)
ends with exactly the weights, and so the metrics, of the uninterrupted run.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from torch import nn
from tqdm import tqdm

from amlvision.model_dir import MULTILABEL, Preprocess
from amlvision.training import distributed, schedule
from amlvision.training.balance import balance_record, class_counts, resolve_class_weights
from amlvision.training.checkpoint import CHECKPOINT_NAME, load_checkpoint, save_checkpoint, set_rng_state
from amlvision.training.config import TrainConfig
from amlvision.training.data import TrainingData, load_training_data
from amlvision.training.ema import WeightEMA
from amlvision.training.evaluation import MistakeGallery, evaluate_predictions, per_class_table
from amlvision.training.export import export_onnx
from amlvision.training.inputs import Normalizer, model_preprocess, scan_training_images
from amlvision.training.models import FastNet, FlipTTA, build_model
from amlvision.training.selection import BEST_MODEL_NAME, best_epoch, heldout_scores, selection_record
from amlvision.training.tracking import NullTracker, Tracker, open_tracker

log = logging.getLogger("amlvision.train")

INTERRUPTED_EXIT = {signal.SIGTERM: 143, signal.SIGINT: 130}
# Keys that must match between a checkpoint and the resuming run, or the result would not be the same run.
RESUME_KEYS = (
    "data",
    "reader",
    "model",
    "epochs",
    "batch_size",
    "seed",
    "lr",
    "lr_schedule",
    "epoch_size",
    "val_fraction",
    "scale",
    "class_weights",
    "sampler",
    "select_metric",
    "ema",
)
# What a checkpoint written before a key existed meant by it.


class Interrupted(Exception):
    """SIGTERM/SIGINT arrived; a checkpoint has been written."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@dataclass
class EpochStats:
    loss_sum: float = 0.0
    correct: int = 0
    count: int = 0
    seconds: float = 0.0

    def add(self, loss: torch.Tensor, logits: torch.Tensor, labels: torch.Tensor) -> None:
        n = int(labels.shape[0])
        self.loss_sum += float(loss.detach()) * n
        if labels.ndim == 2:  # multi-hot targets (multilabel): an exactly right label set counts
            self.correct += int(((logits.detach() > 0) == (labels > 0.5)).all(1).sum())
        else:
            self.correct += int((logits.detach().argmax(1) == labels).sum())
        self.count += n


@dataclass
class RunState:
    epoch: int = 0
    step_in_epoch: int = 0
    global_step: int = 0
    history: list[dict[str, float]] = field(default_factory=list)
    stats: EpochStats = field(default_factory=EpochStats)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def git_commit(repo: Path) -> str:
    try:
        out = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def resume_differences(saved: dict[str, Any], cfg: TrainConfig) -> list[str]:
    """RESUME_KEYS whose value changed since the checkpoint (a key older checkpoints lack counts as its default)."""
    return [k for k in RESUME_KEYS if saved.get(k, getattr(TrainConfig, k, None)) != getattr(cfg, k)]


def pick_device(requested: str) -> str | None:
    return None if requested == "auto" else requested


def make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.SGD:
    """SGD with ``cfg.weight_decay`` on every parameter, or only on the model's ``decayed_parameters``."""
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    params = [p for _, p in named]
    decayed = getattr(model, "decayed_parameters", None)
    if decayed is None:
        groups: list[dict[str, Any]] = [{"params": params, "weight_decay": cfg.weight_decay}]
    else:  # e.g. the TensorFlow tutorial net: L2 on its two hidden dense layers only
        groups = [
            {"params": [p for n, p in named if n in decayed], "weight_decay": cfg.weight_decay},
            {"params": [p for n, p in named if n not in decayed], "weight_decay": 0.0},
        ]
    momentum = max(cfg.momentum, *cfg.momentum_values) if cfg.momentum_values else cfg.momentum
    optimizer = torch.optim.SGD(groups, lr=cfg.lr, momentum=momentum)
    if cfg.unit_gain:
        # PyTorch seeds a momentum buffer with the raw first gradient (no dampening); CNTK's unit-gain
        # momentum starts from zero, so the first steps are (1 - m) g, not g.
        for p in params:
            optimizer.state[p]["momentum_buffer"] = torch.zeros_like(p, memory_format=torch.preserve_format)
    return optimizer


def _uint8_nhwc(x: torch.Tensor) -> np.ndarray:
    return x.clamp(0, 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


@torch.no_grad()
def predict_source(
    model: nn.Module,
    source: Any,
    normalize: Normalizer,
    device: torch.device,
    batch_size: int,
    gallery: MistakeGallery | None = None,
) -> tuple[np.ndarray, np.ndarray, float]:
    """Probabilities, labels and mean cross-entropy over one full pass of ``source``."""
    model.eval()
    probs, labels, loss_sum, offset = [], [], 0.0, 0
    for x, y in source.iter_epoch(0, batch_size):
        x, y = x.to(device), y.to(device)
        logits = model(normalize(x)).float()
        loss_sum += float(nn.functional.cross_entropy(logits, y, reduction="sum"))
        p = torch.softmax(logits, dim=1).cpu().numpy()
        if gallery is not None:
            gallery.offer(_uint8_nhwc(x), y.cpu().numpy(), p, offset)
        probs.append(p)
        labels.append(y.cpu().numpy())
        offset += len(y)
    probabilities = np.concatenate(probs) if probs else np.zeros((0, 0), dtype=np.float32)
    all_labels = np.concatenate(labels) if labels else np.zeros(0, dtype=np.int64)
    return probabilities, all_labels, loss_sum / max(1, len(all_labels))


class _SignalGuard:
    """Turns SIGTERM/SIGINT into a flag checked between minibatches (the second SIGINT aborts at once)."""

    def __init__(self):
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> _SignalGuard:
        for signum in INTERRUPTED_EXIT:
            with contextlib.suppress(ValueError):  # not the main thread: leave signals alone
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        if self.signum is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.signum = signum
        log.warning("%s received: finishing this minibatch, then writing a checkpoint", signal.Signals(signum).name)

    def __exit__(self, *exc) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)


class Trainer:
    """One training run; :meth:`run` returns the final metrics dict (also written to outputs/metrics.json)."""

    def __init__(self, cfg: TrainConfig):
        self.cfg = cfg
        self.outputs = Path(cfg.outputs)
        self.info = distributed.setup(pick_device(cfg.device))
        self.device = self.info.device
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        self.interactive = cfg.progress == "bar" or (cfg.progress == "auto" and sys.stderr.isatty())

    # ------------------------------------------------------------------ set-up
    def _prepare(self) -> None:
        cfg = self.cfg
        seed_everything(cfg.seed)
        self.outputs.mkdir(parents=True, exist_ok=True)
        self.data: TrainingData = load_training_data(
            cfg, rank=self.info.rank, world_size=self.info.world_size, drop_last=self.info.world_size > 1
        )
        self.normalize, sample = scan_training_images(self.data.stats_source, cfg.mean_std)
        torch.manual_seed(cfg.seed)
        self.model = build_model(cfg.model, len(self.data.class_names), self.data.image_shape)
        if isinstance(self.model, FastNet):
            self.model.init_whitening(self.normalize(sample))
        self.model.to(self.device)
        self.train_model = distributed.wrap_model(self.model, self.info)
        self.optimizer = make_optimizer(self.model, cfg)
        self.ema = WeightEMA(self.model, cfg.ema) if cfg.ema else None
        counts = class_counts(self.data.train.sample_labels(), len(self.data.class_names))
        weights = resolve_class_weights(cfg.class_weights, counts, self.data.class_names)
        self.balance = balance_record(self.data.class_names, counts, weights, cfg.class_weights, cfg.sampler)
        self.criterion = nn.CrossEntropyLoss(
            weight=None if weights is None else torch.tensor(weights, dtype=torch.float32, device=self.device),
            label_smoothing=cfg.label_smoothing,
        )
        n = len(self.data.train)
        self.drop_last = n >= cfg.batch_size * 2
        self.steps_per_epoch = self.data.train.num_batches(0, cfg.batch_size, self.drop_last)
        if self.steps_per_epoch == 0:
            raise ValueError(f"{cfg.data}: {n} training images cannot fill one batch of {cfg.batch_size}")
        self.total_steps = cfg.epochs * self.steps_per_epoch
        self.state = RunState()
        self.tracker: Tracker = (
            open_tracker(self.outputs, cfg.experiment, run_name=f"{cfg.model}-seed{cfg.seed}")
            if self.info.is_main
            else NullTracker()
        )
        if cfg.resume:
            self._resume()

    def _resume(self) -> None:
        path = self.outputs / CHECKPOINT_NAME
        ckpt = load_checkpoint(path)
        saved = ckpt.get("config", {})
        differ = resume_differences(saved, self.cfg)
        if differ:
            detail = ", ".join(f"{k}: {saved.get(k)!r} -> {getattr(self.cfg, k)!r}" for k in differ)
            raise ValueError(f"{path}: cannot resume, the configuration changed ({detail})")
        if ckpt.get("data_checksum") != self.data.checksum:
            raise ValueError(
                f"{path}: cannot resume, the data changed (checksum {ckpt.get('data_checksum')} -> "
                f"{self.data.checksum})"
            )
        self.model.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        if self.ema is not None:
            self.ema.shadow.load_state_dict(ckpt["ema"])
        self.state = RunState(
            epoch=ckpt["epoch"],
            step_in_epoch=ckpt["step_in_epoch"],
            global_step=ckpt["global_step"],
            history=ckpt["history"],
            stats=EpochStats(**ckpt["stats"]),
        )
        self._resume_rng = ckpt["rng"] if ckpt["step_in_epoch"] else None
        log.info(
            "resumed from %s at epoch %d, step %d of the epoch", path, self.state.epoch + 1, self.state.step_in_epoch
        )

    def _checkpoint(self) -> None:
        if not self.info.is_main:
            return
        s = self.state
        save_checkpoint(
            self.outputs / CHECKPOINT_NAME,
            model=self.model.state_dict(),
            optimizer=self.optimizer.state_dict(),
            ema=self.ema.shadow.state_dict() if self.ema is not None else None,
            epoch=s.epoch,
            step_in_epoch=s.step_in_epoch,
            global_step=s.global_step,
            history=s.history,
            stats=vars(s.stats),
            config=self.cfg.to_dict(),
            data_checksum=self.data.checksum,
        )

    # ------------------------------------------------------------------ training
    def run(self) -> dict[str, Any]:
        self._prepare()
        cfg = self.cfg
        status = "failed"
        try:
            if self.info.is_main:
                self._start_logging()
            with _SignalGuard() as guard:
                self._resume_rng = getattr(self, "_resume_rng", None)
                while self.state.epoch < cfg.epochs:
                    self._train_epoch(guard)
            distributed.sync_buffers(self.model)  # same BatchNorm statistics on every rank before export
            metrics = self._finish() if self.info.is_main else {}
            distributed.barrier()
            status = "completed"
            return metrics
        except Interrupted:
            status = "interrupted"
            raise
        finally:
            self.tracker.close(status)

    def _start_logging(self) -> None:
        cfg, data = self.cfg, self.data
        (self.outputs / "config.yaml").write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
        if data.split.get("validation_indexes") is not None:
            (self.outputs / "split.json").write_text(json.dumps(data.split))
        (self.outputs / "class_balance.json").write_text(json.dumps(self.balance, indent=2))
        repo = Path(__file__).resolve().parents[2]
        self.tracker.set_tags(
            {
                "data_checksum": data.checksum,
                "model": cfg.model,
                "git_commit": git_commit(repo),
                "reader": cfg.reader,
                "heldout": data.heldout_name,
                "class_weights": cfg.class_weights,
                "sampler": cfg.sampler,
                "select_metric": cfg.select_metric,
            }
        )
        self.tracker.log_artifact(self.outputs / "class_balance.json")
        self.tracker.log_params({k: v for k, v in cfg.to_dict().items() if k not in ("resume",)})
        log.info(
            "data %s: %d training images (%s), held-out %s: %d images, %d classes, input %s, checksum %s",
            cfg.data,
            len(data.train),
            cfg.reader,
            data.heldout_name,
            len(data.heldout),
            len(data.class_names),
            "x".join(map(str, data.image_shape)),
            data.checksum,
        )
        log.info(
            "model %s (%d trainable parameters) on %s; %d epochs x %d steps of %d",
            cfg.model,
            sum(p.numel() for p in self.model.parameters() if p.requires_grad),
            self.device,
            cfg.epochs,
            self.steps_per_epoch,
            cfg.batch_size,
        )
        log.info(
            "classes: largest/smallest %.1f; class weights %s, sampler %s; the exported epoch is chosen by %s",
            self.balance["imbalance_ratio"],
            cfg.class_weights,
            cfg.sampler,
            cfg.select_metric,
        )

    def _train_epoch(self, guard: _SignalGuard) -> None:
        cfg, s = self.cfg, self.state
        skip = s.step_in_epoch
        if skip and self._resume_rng is not None:
            set_rng_state(self._resume_rng)
            self._resume_rng = None
        else:
            torch.manual_seed(cfg.seed * 1_000_003 + s.epoch)
            s.stats = EpochStats()
        self.train_model.train()
        batches = self.data.train.iter_epoch(s.epoch, cfg.batch_size, self.drop_last)
        bar = tqdm(
            total=self.steps_per_epoch,
            initial=skip,
            desc=f"epoch {s.epoch + 1}/{cfg.epochs}",
            disable=not (self.interactive and self.info.is_main),
            leave=False,
            unit="batch",
        )
        log_every = max(1, self.steps_per_epoch // 5)
        start = time.perf_counter()
        for index, (x, y) in enumerate(batches):
            if index < skip:
                continue
            lr, _ = schedule.apply(self.optimizer, cfg, s.global_step / self.total_steps)
            x, y = x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)
            y = self.training_targets(y)
            logits = self.train_model(self.normalize(x))
            loss = self.criterion(logits, y)
            if not torch.isfinite(loss):
                raise FloatingPointError(
                    f"loss became {float(loss)} at epoch {s.epoch + 1} step {index + 1}; lower --lr (now {lr:g})"
                )
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            if self.ema is not None:
                self.ema.update(self.model, s.global_step + 1)
            s.stats.add(loss, logits, y)
            s.global_step += 1
            s.step_in_epoch = index + 1
            bar.update(1)
            bar.set_postfix(loss=f"{s.stats.loss_sum / s.stats.count:.3f}", lr=f"{lr:.3g}")
            if not self.interactive and self.info.is_main and (index + 1) % log_every == 0:
                log.info(
                    "epoch %d/%d step %d/%d loss %.4f lr %.4g",
                    s.epoch + 1,
                    cfg.epochs,
                    index + 1,
                    self.steps_per_epoch,
                    s.stats.loss_sum / s.stats.count,
                    lr,
                )
            if guard.signum is not None:
                bar.close()
                s.stats.seconds += time.perf_counter() - start
                self._checkpoint()
                log.warning(
                    "checkpoint written to %s at epoch %d step %d; continue with --resume",
                    self.outputs / CHECKPOINT_NAME,
                    s.epoch + 1,
                    s.step_in_epoch,
                )
                raise Interrupted(guard.signum)
        bar.close()
        s.stats.seconds += time.perf_counter() - start
        self._end_epoch()

    def _end_epoch(self) -> None:
        cfg, s = self.cfg, self.state
        # Every rank evaluates and checkpoints the same model: BatchNorm statistics averaged over ranks
        # (DDP's own buffer broadcast is asynchronous with gloo and could land after the evaluation).
        distributed.sync_buffers(self.model)
        distributed.barrier()
        totals = torch.tensor([s.stats.loss_sum, s.stats.correct, s.stats.count], dtype=torch.float64)
        distributed.all_reduce_sum(totals)
        loss_sum, correct, count = totals.tolist()
        probs, labels, val_loss = self.predict_heldout(self.eval_model())
        scores = self.heldout_scores(labels, probs, val_loss)
        val_acc = scores["val_accuracy"]
        seconds = s.stats.seconds
        row = {
            "epoch": s.epoch + 1,
            "loss": loss_sum / max(1.0, count),
            "accuracy": correct / max(1.0, count),
            **scores,
            "lr": schedule.lr_at(cfg, max(0, s.global_step - 1) / self.total_steps),
            "images_per_sec": count / seconds if seconds > 0 else math.nan,  # all ranks, training steps only
            "epoch_seconds": seconds,
        }
        s.history.append(row)
        selecting = cfg.select_metric != "last"
        if self.info.is_main and selecting and best_epoch(s.history, cfg.select_metric) == row["epoch"]:
            save_checkpoint(
                self.outputs / BEST_MODEL_NAME, model=self.weights_network().state_dict(), epoch=row["epoch"]
            )
        s.epoch += 1
        s.step_in_epoch = 0
        s.stats = EpochStats()
        if self.info.is_main:
            self.tracker.log_metrics({k: v for k, v in row.items() if k != "epoch"}, step=row["epoch"])
            log.info(
                "epoch %d/%d loss %.4f acc %.4f val_loss %.4f val_acc %.4f val_macro_f1 %.4f val_bal_acc %.4f "
                "lr %.4g %.0f img/s",
                row["epoch"],
                cfg.epochs,
                row["loss"],
                row["accuracy"],
                val_loss,
                val_acc,
                row["val_macro_f1"],
                row["val_balanced_accuracy"],
                row["lr"],
                row["images_per_sec"],
            )
        self._checkpoint()
        distributed.barrier()

    # ------------------------------------------------------------------ task hooks (the multilabel task overrides)
    def training_targets(self, labels: torch.Tensor) -> torch.Tensor:
        """What the criterion compares the logits with: the class indexes themselves here."""
        return labels

    def predict_heldout(self, model: nn.Module) -> tuple[np.ndarray, np.ndarray, float]:
        return predict_source(model, self.data.heldout, self.normalize, self.device, self.cfg.eval_batch_size)

    def heldout_scores(self, labels: np.ndarray, probs: np.ndarray, loss: float) -> dict[str, float]:
        return heldout_scores(labels, probs, loss, len(self.data.class_names))

    def weights_network(self) -> nn.Module:
        """The weights that are evaluated, selected and exported: the EMA shadow when ``--ema`` is set."""
        return self.ema.shadow if self.ema is not None else self.model

    def eval_model(self) -> nn.Module:
        """The network evaluation and export use: ``weights_network`` with flip TTA if asked."""
        model = self.weights_network()
        return FlipTTA(model) if self.cfg.tta else model

    # ------------------------------------------------------------------ the end
    def preprocess(self) -> Preprocess:
        return model_preprocess(self.cfg, self.data.image_shape, self.normalize)

    def _select_weights(self) -> dict[str, Any]:
        """Load the weights of the epoch ``--select-metric`` chose (see ``amlvision.training.selection``)."""
        cfg = self.cfg
        selected = selection_record(self.state.history, cfg.select_metric)
        if cfg.select_metric != "last":
            path = self.outputs / BEST_MODEL_NAME
            saved = load_checkpoint(path) if path.is_file() else {}
            if saved.get("epoch") != selected["epoch"]:
                raise ValueError(
                    f"{path}: holds epoch {saved.get('epoch')}, but --select-metric {cfg.select_metric} chose "
                    f"epoch {selected['epoch']}; train again without --resume"
                )
            self.weights_network().load_state_dict(saved["model"])
        log.info(
            "selected epoch %d of %d by held-out %s = %.4f",
            selected["epoch"],
            cfg.epochs,
            selected["metric"],
            selected["value"],
        )
        return selected

    def _finish(self) -> dict[str, Any]:
        cfg, data = self.cfg, self.data
        selected = self._select_weights()
        model = self.eval_model()
        gallery = MistakeGallery()
        start = time.perf_counter()
        probs, labels, val_loss = predict_source(
            model, data.heldout, self.normalize, self.device, cfg.eval_batch_size, gallery
        )
        eval_seconds = time.perf_counter() - start
        train_seconds = sum(r["epoch_seconds"] for r in self.state.history)
        extra = {
            "model": cfg.model,
            "heldout": data.heldout_name,
            "loss": val_loss,
            "epochs": cfg.epochs,
            "train_seconds": train_seconds,
            "eval_seconds": eval_seconds,
            "data_checksum": data.checksum,
            "history": self.state.history,
            "tta": cfg.tta,
            "class_balance": self.balance,
        }
        metrics = evaluate_predictions(labels, probs, data.class_names, self.outputs, gallery=gallery, extra=extra)
        headline = "accuracy" if cfg.select_metric == "last" else cfg.select_metric
        metrics = {
            "selected_by": {**selected, "final": metrics[headline]},
            headline: metrics[headline],
            **metrics,
        }
        weights = self.weights_network().state_dict()
        torch.save({k: v.detach().cpu() for k, v in weights.items()}, self.outputs / "model.pt")
        check = self._check_images()
        onnx_check = export_onnx(model.cpu(), self.outputs, data.class_names, self.preprocess(), check)
        model.to(self.device)
        self.model.to(self.device)
        metrics["onnx_check"] = onnx_check
        (self.outputs / "metrics.json").write_text(json.dumps(metrics, indent=2))
        self.tracker.log_metrics(
            {
                "final_accuracy": metrics["accuracy"],
                "final_macro_f1": metrics["macro_f1"],
                "final_balanced_accuracy": metrics["balanced_accuracy"],
                "selected_epoch": selected["epoch"],
                "train_seconds": train_seconds,
                **{
                    f"final_{key}": metrics[key]
                    for key in ("macro_average_precision", "macro_roc_auc")
                    if metrics[key] is not None
                },
            },
            step=cfg.epochs,
        )
        self.tracker.log_table("per_class_metrics", per_class_table(metrics))
        self.tracker.log_confusion_matrix("confusion_matrix", data.class_names, metrics["confusion_matrix"]["matrix"])
        for name in ("confusion_matrix", "confusion_matrix_normalized", "pr_curves", "roc_curves", "mistakes"):
            self.tracker.log_image(name, self.outputs / f"{name}.png")
        for name in (
            "metrics.json",
            "classification_report.txt",
            "threshold_report.txt",
            "model.onnx",
            "labels.json",
            "preprocess.json",
        ):
            self.tracker.log_artifact(self.outputs / name)
        log.info(
            "held-out %s %s %.4f (epoch %d); accuracy %.4f, macro F1 %.4f, balanced accuracy %.4f, macro AP %s "
            "on %d images; ONNX max |diff| %.2g; outputs in %s",
            data.heldout_name,
            headline,
            metrics[headline],
            selected["epoch"],
            metrics["accuracy"],
            metrics["macro_f1"],
            metrics["balanced_accuracy"],
            "-" if metrics["macro_average_precision"] is None else f"{metrics['macro_average_precision']:.4f}",
            metrics["num_samples"],
            onnx_check["max_abs_diff"],
            self.outputs,
        )
        return metrics

    def _check_images(self, count: int = 64) -> torch.Tensor:
        """Real held-out images, normalised, for the ONNX-vs-PyTorch check."""
        x, _ = next(iter(self.data.heldout.iter_epoch(0, count)))
        return self.normalize(x.float().cpu())


def configure_logging() -> None:
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
    )


def train(cfg: TrainConfig) -> dict[str, Any]:
    """Run training; returns the final metrics. Raises :class:`Interrupted` after a signal (checkpoint written)."""
    if cfg.engine == "tensorflow":  # imported only here: the PyTorch engine never loads TensorFlow
        from amlvision.tf.trainer import TFTrainer

        return TFTrainer(cfg).run()
    trainer: Trainer
    if cfg.task == MULTILABEL:  # its targets come from the derived table (amlvision/training/multilabel.py)
        from amlvision.training.multilabel import MultilabelTrainer

        trainer = MultilabelTrainer(cfg)
    elif cfg.task == "detection":
        from amlvision.detection.training import DetectionTrainer

        trainer = DetectionTrainer(cfg)
    else:
        trainer = Trainer(cfg)
    try:
        return trainer.run()
    finally:
        distributed.cleanup()


def main(argv: list[str] | None = None) -> int:
    """train.py's entry point: parse, train, and turn an interruption into a clean exit code."""
    from amlvision.training.config import parse_config

    configure_logging()
    try:
        cfg = parse_config(argv)
    except ValueError as exc:
        print(f"train.py: {exc}", file=sys.stderr)
        return 2
    try:
        train(cfg)
    except Interrupted as exc:
        return INTERRUPTED_EXIT.get(exc.signum, 1)
    except (FileNotFoundError, ValueError) as exc:  # bad data or options: say what, without a traceback
        log.error("%s", exc)
        return 2
    return 0
