"""The PyTorch training run behind train.py: data -> model -> epochs (checkpointed) -> evaluation -> ONNX export.

Determinism: batch order and augmentation depend only on (seed, epoch, sample) (see
``amlvision.sources.base``), the schedule only on the global step, and torch's RNG (dropout) is reseeded
from (seed, epoch) at each epoch start and saved in mid-epoch checkpoints. So ``--resume`` after a
kill -9 (restart from the last epoch checkpoint) or after SIGTERM/SIGINT (mid-epoch checkpoint)
ends with exactly the weights, and so the metrics, of the uninterrupted run.

What depends on the task (loss, training figure, held-out pass and scores, final evaluation,
export) is asked of ``self.task`` (``amlvision.tasks``); the rest lives in its own module:
normalisation and preprocess.json (``inputs``), optimiser and schedule (``schedule``), checkpoint and
run state (``checkpoint``), signals (``interrupt``), epoch bookkeeping shared with the TensorFlow
engine (``epochs``), run files and tags (``runlog``).
"""

from __future__ import annotations

import json
import logging
import random
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from amlvision.model_dir import METRICS_FILE, SERVING_FILES, TORCH_WEIGHTS_FILE, Preprocess
from amlvision.tasks import get_task
from amlvision.training import distributed, schedule
from amlvision.training.balance import balance_record, class_counts, resolve_class_weights
from amlvision.training.checkpoint import (
    CHECKPOINT_NAME,
    EpochStats,
    RunState,
    check_resumable,
    load_checkpoint,
    save_checkpoint,
    set_rng_state,
)
from amlvision.training.config import TrainConfig
from amlvision.training.data import TrainingData, load_training_data
from amlvision.training.ema import WeightEMA
from amlvision.training.epochs import EpochProgress, history_row
from amlvision.training.evaluation import MistakeGallery
from amlvision.training.inputs import model_preprocess, scan_training_images
from amlvision.training.interrupt import Interrupted, SignalGuard
from amlvision.training.models import FastNet, FlipTTA, build_model
from amlvision.training.runlog import git_commit, logged_params, write_run_files
from amlvision.training.schedule import make_optimizer
from amlvision.training.selection import BEST_MODEL_NAME, best_epoch, selection_record
from amlvision.training.tracking import NullTracker, Tracker, open_tracker

log = logging.getLogger("amlvision.train")


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def pick_device(requested: str) -> str | None:
    return None if requested == "auto" else requested


class Trainer:
    """One training run; :meth:`run` returns the final metrics dict (also written to outputs/metrics.json)."""

    def __init__(self, cfg: TrainConfig):
        self.cfg = cfg
        self.task = get_task(cfg.task)
        self.outputs = Path(cfg.outputs)
        self.info = distributed.setup(pick_device(cfg.device))
        self.device = self.info.device
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        self.interactive = cfg.progress == "bar" or (cfg.progress == "auto" and sys.stderr.isatty())
        self._resume_rng: dict[str, Any] | None = None

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
        self.criterion = self.make_criterion(weights)
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
        check_resumable(ckpt, self.cfg, self.data.checksum, path)
        self.model.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        if self.ema is not None:
            self.ema.shadow.load_state_dict(ckpt["ema"])
        self.state = RunState.from_checkpoint(ckpt)
        self._resume_rng = ckpt["rng"] if ckpt["step_in_epoch"] else None
        log.info(
            "resumed from %s at epoch %d, step %d of the epoch", path, self.state.epoch + 1, self.state.step_in_epoch
        )

    def _checkpoint(self) -> None:
        if not self.info.is_main:
            return
        save_checkpoint(
            self.outputs / CHECKPOINT_NAME,
            model=self.model.state_dict(),
            optimizer=self.optimizer.state_dict(),
            ema=self.ema.shadow.state_dict() if self.ema is not None else None,
            **self.state.checkpoint_fields(),
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
            with SignalGuard() as guard:
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
        write_run_files(self.outputs, cfg, data.split)
        (self.outputs / "class_balance.json").write_text(json.dumps(self.balance, indent=2))
        self.tracker.set_tags(
            {
                "data_checksum": data.checksum,
                "model": cfg.model,
                "task": self.task.name,
                "git_commit": git_commit(),
                "reader": cfg.reader,
                "heldout": data.heldout_name,
                "class_weights": cfg.class_weights,
                "sampler": cfg.sampler,
                "select_metric": cfg.select_metric,
            }
        )
        self.tracker.log_artifact(self.outputs / "class_balance.json")
        self.tracker.log_params(logged_params(cfg))
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
            "%s model %s (%d trainable parameters) on %s; %d epochs x %d steps of %d",
            self.task.name,
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

    def _train_epoch(self, guard: SignalGuard) -> None:
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
        progress = EpochProgress(s, cfg, self.steps_per_epoch, interactive=self.interactive, show=self.info.is_main)
        for index, (x, y) in enumerate(batches):
            if index < skip:
                continue
            lr, _ = schedule.apply(self.optimizer, cfg, s.global_step / self.total_steps)
            x, y = x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)
            y = self.training_targets(y)
            outputs = self.train_model(self.normalize(x))
            loss = self.criterion(outputs, y)
            if not torch.isfinite(loss):
                raise FloatingPointError(
                    f"loss became {float(loss)} at epoch {s.epoch + 1} step {index + 1}; lower --lr (now {lr:g})"
                )
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            if self.ema is not None:
                self.ema.update(self.model, s.global_step + 1)
            progress.step(index, float(loss.detach()), self.task.count_correct(outputs, y), int(y.shape[0]), lr)
            progress.stop_if_signalled(guard, self._checkpoint, self.outputs / CHECKPOINT_NAME)
        progress.close()
        self._end_epoch()

    def _end_epoch(self) -> None:
        cfg, s = self.cfg, self.state
        # Every rank evaluates and checkpoints the same model: BatchNorm statistics averaged over ranks
        # (DDP's own buffer broadcast is asynchronous with gloo and could land after the evaluation).
        distributed.sync_buffers(self.model)
        distributed.barrier()
        totals = torch.tensor([s.stats.loss_sum, s.stats.correct, s.stats.count], dtype=torch.float64)
        distributed.all_reduce_sum(totals)
        scores = self.heldout_epoch_scores(self.eval_model())
        row = history_row(s, cfg, self.total_steps, tuple(totals.tolist()), scores)
        s.end_epoch(row)
        if (
            self.info.is_main
            and cfg.select_metric != "last"
            and best_epoch(s.history, cfg.select_metric) == row["epoch"]
        ):
            save_checkpoint(
                self.outputs / BEST_MODEL_NAME, model=self.weights_network().state_dict(), epoch=row["epoch"]
            )
        if self.info.is_main:
            self.tracker.log_metrics({k: v for k, v in row.items() if k != "epoch"}, step=row["epoch"])
            log.info(
                "epoch %d/%d %s lr %.4g %.0f img/s",
                row["epoch"],
                cfg.epochs,
                self.task.describe_epoch(row),
                row["lr"],
                row["images_per_sec"],
            )
        self._checkpoint()
        distributed.barrier()

    # ------------------------------------------------------------------ what a task's own trainer may override
    def training_targets(self, labels: torch.Tensor) -> torch.Tensor:
        """What the criterion compares the outputs with: the stored labels themselves here.

        The multilabel trainer (amlvision/training/multilabel.py) looks each sample's multi-hot row up.
        """
        return labels

    def make_criterion(self, class_weights: list[float] | None) -> nn.Module:
        """The task's loss with the run's class weights and label smoothing."""
        return self.task.criterion(class_weights, self.cfg.label_smoothing, self.device)

    def heldout_epoch_scores(self, model: nn.Module) -> dict[str, float]:
        """The ``val_*`` scores of one pass over the held-out split (each epoch's history row)."""
        heldout = self.task.predict(model, self.data.heldout, self.normalize, self.device, self.cfg.eval_batch_size)
        return self.task.epoch_scores(heldout, len(self.data.class_names))

    def weights_network(self) -> nn.Module:
        """The weights that are evaluated, selected and exported: the EMA shadow when ``--ema`` is set."""
        return self.ema.shadow if self.ema is not None else self.model

    def eval_model(self) -> nn.Module:
        """The network evaluation and export use: ``weights_network`` with flip TTA if asked."""
        model = self.weights_network()
        return FlipTTA(model) if self.cfg.tta else model

    # ------------------------------------------------------------------ the end
    def preprocess(self) -> Preprocess:
        """preprocess.json: the input size, the normalisation trained with, the real interpolation, the task."""
        return model_preprocess(self.cfg, self.data.image_shape, self.normalize, self.task.name)

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
        heldout = self.task.predict(model, data.heldout, self.normalize, self.device, cfg.eval_batch_size, gallery)
        eval_seconds = time.perf_counter() - start
        train_seconds = sum(r["epoch_seconds"] for r in self.state.history)
        extra = {
            "model": cfg.model,
            "heldout": data.heldout_name,
            "loss": heldout.loss,
            "epochs": cfg.epochs,
            "train_seconds": train_seconds,
            "eval_seconds": eval_seconds,
            "data_checksum": data.checksum,
            "history": self.state.history,
            "tta": cfg.tta,
            "class_balance": self.balance,
        }
        metrics = self.task.evaluate(heldout, data.class_names, self.outputs, gallery=gallery, extra=extra)
        headline = "accuracy" if cfg.select_metric == "last" else cfg.select_metric
        metrics = {
            "selected_by": {**selected, "final": metrics[headline]},
            headline: metrics[headline],
            **metrics,
        }
        weights = self.weights_network().state_dict()
        torch.save({k: v.detach().cpu() for k, v in weights.items()}, self.outputs / TORCH_WEIGHTS_FILE)
        check = self._check_images()
        onnx_check = self.task.export(model.cpu(), self.outputs, data.class_names, self.preprocess(), check)
        model.to(self.device)
        self.model.to(self.device)
        metrics["onnx_check"] = onnx_check
        (self.outputs / METRICS_FILE).write_text(json.dumps(metrics, indent=2))
        self.tracker.log_metrics(
            {
                **self.task.final_figures(metrics),
                "selected_epoch": selected["epoch"],
                "train_seconds": train_seconds,
            },
            step=cfg.epochs,
        )
        self.task.track_final(self.tracker, metrics, data.class_names, self.outputs)
        for name in SERVING_FILES:
            self.tracker.log_artifact(self.outputs / name)
        log.info(
            "held-out %s %s %.4f (epoch %d); %s on %d images; ONNX max |diff| %.2g; outputs in %s",
            data.heldout_name,
            headline,
            metrics[headline],
            selected["epoch"],
            self.task.describe_final(metrics),
            metrics["num_samples"],
            onnx_check["max_abs_diff"],
            self.outputs,
        )
        return metrics

    def _check_images(self, count: int = 64) -> torch.Tensor:
        """Real held-out images, normalised, for the ONNX-vs-PyTorch check."""
        x, _ = next(iter(self.data.heldout.iter_epoch(0, count)))
        return self.normalize(x.float().cpu())
