"""The detection run behind ``train.py --task detection``: COCO data -> Faster R-CNN -> epochs -> COCOeval -> export.

It shares the classification run's machinery rather than copying it: the checkpoint format and
atomic write (``training.checkpoint``), the run log (``training.tracking``: every loss component per
epoch), SIGTERM/SIGINT handling and exit codes, seeding, the optimiser and the learning-rate
schedule (``training.loop``, ``training.schedule``), and torchrun DDP (``training.distributed``).

Determinism: the image order depends only on (seed, epoch), augmentation and the detector's box
sampling draw from torch's global RNG, which is reseeded at each epoch start and saved in mid-epoch
checkpoints; so ``--resume`` after SIGTERM ends with the weights of the uninterrupted run.
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import yaml

from amlvision.detection import evaluation
from amlvision.detection.data import (
    SCALE_JITTER,
    DetectionData,
    DetectionDataset,
    collate,
    epoch_order,
    resolve_detection_data,
    training_transform,
)
from amlvision.detection.export import export_detection_model
from amlvision.detection.models import DETECTORS, build_detector
from amlvision.training import distributed, schedule
from amlvision.training.checkpoint import CHECKPOINT_NAME, load_checkpoint, save_checkpoint, set_rng_state
from amlvision.training.config import TrainConfig
from amlvision.training.interrupt import Interrupted
from amlvision.training.interrupt import SignalGuard as _SignalGuard
from amlvision.training.runlog import git_commit
from amlvision.training.schedule import make_optimizer
from amlvision.training.tracking import NullTracker, Tracker, open_tracker
from amlvision.training.trainer import pick_device, seed_everything

log = logging.getLogger("amlvision.train.detection")

# Sizes torchvision tunes for GPUs, cut for CPUs: region proposals kept per image in training and
# RoI samples per image for the box head (torchvision: 2000 and 512). The box head's first layer
# (12544 -> 1024 per RoI) dominates a CPU step; 128 RoIs per image make it 4x cheaper.
CPU_DETECTOR_OPTIONS: dict[str, int] = {
    "rpn_pre_nms_top_n_train": 1000,
    "rpn_post_nms_top_n_train": 500,
    "box_batch_size_per_image": 128,
}
RESUME_KEYS = (
    "data",
    "model",
    "epochs",
    "batch_size",
    "seed",
    "lr",
    "lr_schedule",
    "val_fraction",
    "flip",
    "augment",
    "weights",
    "backbone_weights",
    "min_size",
    "max_size",
)
LOSS_NAMES = ("loss_classifier", "loss_box_reg", "loss_objectness", "loss_rpn_box_reg")
HEADLINE = ("AP", "AP50", "AP75", "AP_small", "AP_medium", "AP_large", "AR100")


@dataclass
class LossStats:
    """Sums over one epoch's training images of the total loss and each torchvision loss component."""

    sums: dict[str, float] = field(default_factory=lambda: dict.fromkeys(("loss", *LOSS_NAMES), 0.0))
    count: int = 0
    seconds: float = 0.0

    def add(self, losses: dict[str, torch.Tensor], total: torch.Tensor, n: int) -> None:
        self.sums["loss"] += float(total.detach()) * n
        for name in LOSS_NAMES:
            self.sums[name] += float(losses[name].detach()) * n
        self.count += n

    def means(self) -> dict[str, float]:
        return {k: v / max(1, self.count) for k, v in self.sums.items()}


@dataclass
class DetectionState:
    epoch: int = 0
    step_in_epoch: int = 0
    global_step: int = 0
    history: list[dict[str, float]] = field(default_factory=list)
    stats: LossStats = field(default_factory=LossStats)


def model_sizes(cfg: TrainConfig) -> tuple[int, int]:
    """(min_size, max_size) of the run: the flags, or the model's own defaults."""
    spec = DETECTORS[cfg.model]
    return cfg.min_size or spec.min_size, cfg.max_size or spec.max_size


def export_model(
    model: torch.nn.Module,
    outputs: Path,
    class_names: list[str],
    min_size: int,
    max_size: int,
    check_images: list[torch.Tensor],
) -> dict[str, Any]:
    """The one call into the detection export: model.onnx, labels.json, preprocess.json, ONNX checked."""
    start = time.perf_counter()
    export_detection_model(model, outputs, class_names, min_size, max_size, check_images)
    return {
        "exported": True,
        "check_images": [list(image.shape[1:]) for image in check_images],
        "seconds": time.perf_counter() - start,
    }


@torch.no_grad()
def recalibrate_batchnorm(model: torch.nn.Module, dataset: DetectionDataset, batch_size: int, limit: int = 64) -> None:
    """Recompute BatchNorm running statistics for the current weights ("precise BN", as detectron2 does).

    Running statistics are a moving average over past steps, whose weights differed; in a short run
    from random weights at a high learning rate they lag so far that the evaluated model (running
    statistics) detects nothing while the trained one (batch statistics) fits its data. So before each
    evaluation the backbone sees up to ``limit`` un-augmented training images in training mode and
    the statistics become their plain average. Frozen BatchNorm (trained weights) has none to update.
    Deterministic, and torch's RNG is left as it was, so ``--resume`` stays exact.
    """
    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    if not norms:
        return
    was_training = model.training
    device = next(model.parameters()).device
    with torch.random.fork_rng(devices=[]):
        for norm in norms:
            norm.reset_running_stats()
            norm.momentum = None  # cumulative average over the calls below
        model.eval()
        model.backbone.train()
        count = min(limit, len(dataset))
        for start in range(0, count, batch_size):
            images = [dataset[i][0].to(device) for i in range(start, min(start + batch_size, count))]
            batch, _ = model.transform(images)
            model.backbone(batch.tensors)
        for norm in norms:
            norm.momentum = 0.1
    model.train(was_training)


class DetectionTrainer:
    """One detection run; :meth:`run` returns the final metrics (also outputs/metrics.json)."""

    def __init__(self, cfg: TrainConfig):
        self.cfg = cfg
        self.outputs = Path(cfg.outputs)
        self.info = distributed.setup(pick_device(cfg.device))
        self.device = self.info.device
        if cfg.threads:
            torch.set_num_threads(cfg.threads)

    # ------------------------------------------------------------------ set-up
    def _prepare(self) -> None:
        cfg = self.cfg
        seed_everything(cfg.seed)
        self.outputs.mkdir(parents=True, exist_ok=True)
        self.data: DetectionData = resolve_detection_data(cfg.resolved or cfg.data, cfg.val_fraction, cfg.seed)
        self.min_size, self.max_size = model_sizes(cfg)
        torch.manual_seed(cfg.seed)
        self.model = build_detector(
            cfg.model,
            len(self.data.class_names),
            weights=cfg.weights,
            backbone_weights=cfg.backbone_weights,
            min_size=self.min_size,
            max_size=self.max_size,
            **CPU_DETECTOR_OPTIONS,
        ).to(self.device)
        self.train_model = distributed.wrap_model(self.model, self.info)
        self.optimizer = make_optimizer(self.model, cfg)
        jitter = SCALE_JITTER if cfg.augment else (1.0, 1.0)
        self.train_set = DetectionDataset(self.data.train, training_transform(cfg.flip, jitter, cfg.augment))
        self.heldout_set = DetectionDataset(self.data.heldout)
        self.calibration_set = DetectionDataset(self.data.train)  # un-augmented, for recalibrate_batchnorm
        per_rank = len(epoch_order(len(self.train_set), cfg.seed, 0, self.info.rank, self.info.world_size))
        self.drop_last = per_rank >= cfg.batch_size * 2
        self.steps_per_epoch = per_rank // cfg.batch_size if self.drop_last else math.ceil(per_rank / cfg.batch_size)
        if self.steps_per_epoch == 0:
            raise ValueError(f"{cfg.data}: no training images")
        self.total_steps = cfg.epochs * self.steps_per_epoch
        self.state = DetectionState()
        self.last_predictions: list[dict] | None = None
        self.last_result: dict[str, Any] | None = None
        self._resume_rng = None
        if cfg.resume:
            self._resume()
        self.tracker: Tracker = (
            open_tracker(self.outputs, cfg.experiment, run_name=f"{cfg.model}-seed{cfg.seed}")
            if self.info.is_main
            else NullTracker()
        )

    def _resume(self) -> None:
        path = self.outputs / CHECKPOINT_NAME
        ckpt = load_checkpoint(path)
        saved = ckpt.get("config", {})
        differ = [k for k in RESUME_KEYS if saved.get(k) != getattr(self.cfg, k)]
        if differ:
            detail = ", ".join(f"{k}: {saved.get(k)!r} -> {getattr(self.cfg, k)!r}" for k in differ)
            raise ValueError(f"{path}: cannot resume, the configuration changed ({detail})")
        if ckpt.get("data_checksum") != self.data.checksum:
            raise ValueError(f"{path}: cannot resume, the data changed")
        self.model.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        stats = LossStats(**ckpt["stats"])
        self.state = DetectionState(ckpt["epoch"], ckpt["step_in_epoch"], ckpt["global_step"], ckpt["history"], stats)
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
            epoch=s.epoch,
            step_in_epoch=s.step_in_epoch,
            global_step=s.global_step,
            history=s.history,
            stats=vars(s.stats),
            config=self.cfg.to_dict(),
            data_checksum=self.data.checksum,
            task="detection",
        )

    # ------------------------------------------------------------------ training
    def run(self) -> dict[str, Any]:
        self._prepare()
        status = "failed"
        try:
            if self.info.is_main:
                self._start_logging()
            with _SignalGuard() as guard:
                while self.state.epoch < self.cfg.epochs:
                    self._train_epoch(guard)
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
        (self.outputs / "split.json").write_text(json.dumps(data.split))
        self.tracker.set_tags(
            {
                "task": "detection",
                "data_checksum": data.checksum,
                "model": cfg.model,
                "git_commit": git_commit(Path(__file__).resolve().parents[2]),
                "heldout": data.heldout_name,
            }
        )
        self.tracker.log_params({k: v for k, v in cfg.to_dict().items() if k != "resume"})
        log.info(
            "data %s: %d training images (%d boxes), held-out %s: %d images (%d boxes), %d classes, "
            "%d invalid boxes skipped; checksum %s",
            cfg.data,
            len(data.train.images),
            data.train.num_boxes,
            data.heldout_name,
            len(data.heldout.images),
            data.heldout.num_boxes,
            len(data.class_names),
            len(data.train.invalid) + (len(data.heldout.invalid) if data.heldout is not data.train else 0),
            data.checksum,
        )
        log.info(
            "model %s (%d trainable parameters, weights %s, backbone %s) at min/max size %d/%d on %s; "
            "%d epochs x %d steps of %d images",
            cfg.model,
            sum(p.numel() for p in self.model.parameters() if p.requires_grad),
            cfg.weights or "none",
            cfg.backbone_weights or "none",
            self.min_size,
            self.max_size,
            self.device,
            cfg.epochs,
            self.steps_per_epoch,
            cfg.batch_size,
        )

    def _batches(self, epoch: int) -> list[list[int]]:
        cfg = self.cfg
        order = epoch_order(len(self.train_set), cfg.seed, epoch, self.info.rank, self.info.world_size)
        batches = [order[i : i + cfg.batch_size] for i in range(0, len(order), cfg.batch_size)]
        return batches[: self.steps_per_epoch]

    def _train_epoch(self, guard: _SignalGuard) -> None:
        cfg, s = self.cfg, self.state
        skip = s.step_in_epoch
        if skip and self._resume_rng is not None:
            set_rng_state(self._resume_rng)
            self._resume_rng = None
        else:
            torch.manual_seed(cfg.seed * 1_000_003 + s.epoch)
            s.stats = LossStats()
        self.train_model.train()
        log_every = max(1, self.steps_per_epoch // 5)
        start = time.perf_counter()
        for index, batch in enumerate(self._batches(s.epoch)):
            if index < skip:
                continue
            lr, _ = schedule.apply(self.optimizer, cfg, s.global_step / self.total_steps)
            images, targets = collate([self.train_set[i] for i in batch])
            images = [im.to(self.device) for im in images]
            targets = [{"boxes": t["boxes"].to(self.device), "labels": t["labels"].to(self.device)} for t in targets]
            losses = self.train_model(images, targets)
            total = sum(losses.values())
            if not torch.isfinite(total):
                raise FloatingPointError(
                    f"loss became {float(total)} at epoch {s.epoch + 1} step {index + 1}; lower --lr (now {lr:g})"
                )
            self.optimizer.zero_grad(set_to_none=True)
            total.backward()
            self.optimizer.step()
            s.stats.add(losses, total, len(images))
            s.global_step += 1
            s.step_in_epoch = index + 1
            if self.info.is_main and (index + 1) % log_every == 0:
                means = s.stats.means()
                log.info(
                    "epoch %d/%d step %d/%d loss %.4f (%s) lr %.4g",
                    s.epoch + 1,
                    cfg.epochs,
                    index + 1,
                    self.steps_per_epoch,
                    means["loss"],
                    " ".join(f"{n.removeprefix('loss_')} {means[n]:.4f}" for n in LOSS_NAMES),
                    lr,
                )
            if guard.signum is not None:
                s.stats.seconds += time.perf_counter() - start
                self._checkpoint()
                log.warning(
                    "checkpoint written to %s at epoch %d step %d; continue with --resume",
                    self.outputs / CHECKPOINT_NAME,
                    s.epoch + 1,
                    s.step_in_epoch,
                )
                raise Interrupted(guard.signum)
        s.stats.seconds += time.perf_counter() - start
        self._end_epoch()

    def evaluate(self) -> tuple[list[dict], dict[str, Any]]:
        """COCOeval of the current weights on the held-out split."""
        predictions = evaluation.predict(self.model, self.heldout_set, self.device, max(1, self.cfg.eval_batch_size))
        return predictions, evaluation.coco_evaluate(self.data.heldout, predictions)

    def _end_epoch(self) -> None:
        cfg, s = self.cfg, self.state
        recalibrate_batchnorm(self.model, self.calibration_set, max(1, cfg.eval_batch_size))
        distributed.sync_buffers(self.model)
        totals = torch.tensor([*s.stats.sums.values(), s.stats.count], dtype=torch.float64)
        distributed.all_reduce_sum(totals)
        count = max(1.0, float(totals[-1]))
        row: dict[str, float] = {"epoch": s.epoch + 1}
        row.update({name: float(v) / count for name, v in zip(s.stats.sums, totals[:-1].tolist(), strict=True)})
        if self.info.is_main:
            start = time.perf_counter()
            self.last_predictions, self.last_result = self.evaluate()
            row.update({f"val_{k}": self.last_result[k] for k in HEADLINE})
            row["eval_seconds"] = time.perf_counter() - start
        row["lr"] = schedule.lr_at(cfg, max(0, s.global_step - 1) / self.total_steps)
        row["images_per_sec"] = count / s.stats.seconds if s.stats.seconds > 0 else math.nan
        row["epoch_seconds"] = s.stats.seconds
        s.history.append(row)
        s.epoch += 1
        s.step_in_epoch = 0
        s.stats = LossStats()
        if self.info.is_main:
            self.tracker.log_metrics({k: v for k, v in row.items() if k != "epoch"}, step=int(row["epoch"]))
            log.info(
                "epoch %d/%d loss %.4f (%s) held-out AP %.4f AP50 %.4f lr %.4g %.2f img/s",
                row["epoch"],
                cfg.epochs,
                row["loss"],
                " ".join(f"{n.removeprefix('loss_')} {row[n]:.4f}" for n in LOSS_NAMES),
                row["val_AP"],
                row["val_AP50"],
                row["lr"],
                row["images_per_sec"],
            )
        self._checkpoint()
        distributed.barrier()

    # ------------------------------------------------------------------ the end
    def _check_images(self, count: int = 2) -> list[torch.Tensor]:
        """Images of different sizes for the export's ONNX-vs-PyTorch check (it needs at least two):
        held-out images first, then training images when the held-out split has fewer sizes."""
        picked, sizes = [], set()
        for images in (self.heldout_set, DetectionDataset(self.data.train)):
            for i, image in enumerate(images.data.images):
                if (image.height, image.width) not in sizes:
                    sizes.add((image.height, image.width))
                    picked.append(images[i][0])
                if len(picked) == count:
                    return picked
        return picked

    def _finish(self) -> dict[str, Any]:
        cfg, data = self.cfg, self.data
        if self.last_predictions is None:  # resumed after the last epoch's evaluation
            self.last_predictions, self.last_result = self.evaluate()
        result, predictions = self.last_result, self.last_predictions
        start = time.perf_counter()
        import matplotlib.pyplot as plt

        for name, fig in (
            ("pr_curves", evaluation.pr_curves_figure(result)),
            ("detections", evaluation.gallery_figure(data.heldout, predictions)),
        ):
            fig.savefig(self.outputs / f"{name}.png", dpi=110)
            plt.close(fig)
            self.tracker.log_image(name, self.outputs / f"{name}.png")
        (self.outputs / "coco_eval.txt").write_text(result["summary"] + "\n")
        self.model.cpu()
        torch.save({k: v.detach().cpu() for k, v in self.model.state_dict().items()}, self.outputs / "model.pt")
        export = export_model(
            self.model, self.outputs, data.class_names, self.min_size, self.max_size, self._check_images()
        )
        self.model.to(self.device)
        train_seconds = sum(r["epoch_seconds"] for r in self.state.history)
        metrics = {
            "task": "detection",
            "model": cfg.model,
            "heldout": data.heldout_name,
            **{k: result[k] for k in evaluation.STAT_NAMES},
            "per_class": result["per_class"],
            "coco_eval": result["summary"],
            "num_images": result["num_images"],
            "num_detections": result["num_detections"],
            "class_names": data.class_names,
            "min_size": self.min_size,
            "max_size": self.max_size,
            "epochs": cfg.epochs,
            "train_seconds": train_seconds,
            "report_seconds": time.perf_counter() - start,
            "data_checksum": data.checksum,
            "history": self.state.history,
            "export": export,
        }
        (self.outputs / "metrics.json").write_text(json.dumps(metrics, indent=2))
        self.tracker.log_metrics(
            {**{f"final_{k}": result[k] for k in HEADLINE}, "train_seconds": train_seconds}, step=cfg.epochs
        )
        self.tracker.log_table("per_class_ap", evaluation.per_class_table(result))
        for name in ("metrics.json", "coco_eval.txt", "model.pt", "model.onnx", "labels.json", "preprocess.json"):
            self.tracker.log_artifact(self.outputs / name)
        log.info(
            "held-out %s: AP %.4f AP50 %.4f AP75 %.4f AR100 %.4f on %d images; outputs in %s\n%s",
            data.heldout_name,
            result["AP"],
            result["AP50"],
            result["AP75"],
            result["AR100"],
            result["num_images"],
            self.outputs,
            result["summary"],
        )
        return metrics
