"""Training checkpoints and the run state they hold, which let ``--resume`` reproduce a seeded run exactly.

A checkpoint holds the model, optimiser, global step, the position inside the epoch, every RNG state
(Python, NumPy, torch CPU and CUDA) and the metric history (:class:`RunState`). It is written to a
temporary file and renamed over ``checkpoint.pt``, so a kill -9 during the write leaves the previous
checkpoint intact. A run resumes only with the configuration (:data:`RESUME_KEYS`) and data it was
started with (:func:`check_resumable`). Both engines use this module.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from amlvision.training.config import TrainConfig

CHECKPOINT_NAME = "checkpoint.pt"


def rng_state() -> dict[str, Any]:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: Path, **state: Any) -> Path:
    """Atomically write ``state`` (plus RNG states) to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    torch.save({**state, "rng": rng_state()}, tmp)
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return path


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint`; a clear error when it is missing or unreadable."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"--resume: no checkpoint at {path}")
    try:
        # Our own file: it holds RNG states and config dicts, which need full unpickling.
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:
        raise ValueError(f"{path}: unreadable checkpoint ({type(exc).__name__}: {exc})") from exc


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
    "task",
)


@dataclass
class EpochStats:
    """The running training figures of the current epoch (this rank's share under DDP)."""

    loss_sum: float = 0.0
    correct: int = 0
    count: int = 0
    seconds: float = 0.0

    def add(self, loss: float, correct: int, count: int) -> None:
        """One batch: its mean loss, how many of its ``count`` samples the outputs got right."""
        self.loss_sum += loss * count
        self.correct += correct
        self.count += count


@dataclass
class RunState:
    """Where the run is: what a checkpoint stores besides weights, optimiser and RNG states."""

    epoch: int = 0
    step_in_epoch: int = 0
    global_step: int = 0
    history: list[dict[str, float]] = field(default_factory=list)
    stats: EpochStats = field(default_factory=EpochStats)

    @classmethod
    def from_checkpoint(cls, ckpt: dict[str, Any]) -> RunState:
        return cls(
            epoch=ckpt["epoch"],
            step_in_epoch=ckpt["step_in_epoch"],
            global_step=ckpt["global_step"],
            history=ckpt["history"],
            stats=EpochStats(**ckpt["stats"]),
        )

    def checkpoint_fields(self) -> dict[str, Any]:
        """The keyword arguments of :func:`save_checkpoint` that :meth:`from_checkpoint` reads back."""
        return {
            "epoch": self.epoch,
            "step_in_epoch": self.step_in_epoch,
            "global_step": self.global_step,
            "history": self.history,
            "stats": vars(self.stats),
        }

    def end_epoch(self, row: dict[str, float]) -> None:
        """Record the finished epoch's history row and move to the start of the next epoch."""
        self.history.append(row)
        self.epoch += 1
        self.step_in_epoch = 0
        self.stats = EpochStats()


def resume_differences(saved: dict[str, Any], cfg: TrainConfig) -> list[str]:
    """RESUME_KEYS whose value changed since the checkpoint (a key older checkpoints lack counts as its default)."""
    return [k for k in RESUME_KEYS if saved.get(k, getattr(TrainConfig, k, None)) != getattr(cfg, k)]


def check_resumable(ckpt: dict[str, Any], cfg: TrainConfig, data_checksum: str, path: Path) -> None:
    """Raise ValueError naming ``path`` when the configuration or the data changed since the checkpoint."""
    saved = ckpt.get("config", {})
    differ = resume_differences(saved, cfg)
    if differ:
        detail = ", ".join(f"{k}: {saved.get(k)!r} -> {getattr(cfg, k)!r}" for k in differ)
        raise ValueError(f"{path}: cannot resume, the configuration changed ({detail})")
    if ckpt.get("data_checksum") != data_checksum:
        raise ValueError(
            f"{path}: cannot resume, the data changed (checksum {ckpt.get('data_checksum')} -> {data_checksum})"
        )
