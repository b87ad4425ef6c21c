"""train.py's entry point: parse the options, run the engine's trainer, turn an interruption into an exit code.

The PyTorch run itself is :class:`amlvision.training.trainer.Trainer` (or the task's own trainer,
``amlvision.tasks``); the TensorFlow one :class:`amlvision.tf.trainer.TFTrainer` (imported only when
asked for, so the PyTorch engine never loads TensorFlow). This module once held the whole run; the
names that moved out in the split are re-exported below so code written against it keeps working
(new code imports them from their modules).
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from amlvision.tasks import get_task
from amlvision.training import distributed
from amlvision.training.checkpoint import RESUME_KEYS, EpochStats, RunState, resume_differences
from amlvision.training.config import TrainConfig
from amlvision.training.inputs import Normalizer, scan_training_images
from amlvision.training.interrupt import INTERRUPTED_EXIT, Interrupted, SignalGuard
from amlvision.training.runlog import configure_logging, git_commit
from amlvision.training.schedule import make_optimizer
from amlvision.training.trainer import Trainer, pick_device, seed_everything

_SignalGuard = SignalGuard  # the name before the split

log = logging.getLogger("amlvision.train")


def train(cfg: TrainConfig) -> dict[str, Any]:
    """Run training; returns the final metrics. Raises :class:`Interrupted` after a signal (checkpoint written)."""
    if cfg.engine == "tensorflow":  # imported only here: the PyTorch engine never loads TensorFlow
        from amlvision.tf.trainer import TFTrainer

        return TFTrainer(cfg).run()
    trainer = get_task(cfg.task).trainer(cfg) or Trainer(cfg)
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


__all__ = [
    "INTERRUPTED_EXIT",
    "RESUME_KEYS",
    "EpochStats",
    "Interrupted",
    "Normalizer",
    "RunState",
    "SignalGuard",
    "Trainer",
    "configure_logging",
    "git_commit",
    "main",
    "make_optimizer",
    "pick_device",
    "resume_differences",
    "scan_training_images",
    "seed_everything",
    "train",
]
