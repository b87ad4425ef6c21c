"""One epoch's bookkeeping, the same for both engines (PyTorch ``Trainer``, TensorFlow ``TFTrainer``).

The running loss/accuracy, the progress bar (interactive) or a log line every fifth of the epoch, the
checkpoint-and-stop on SIGTERM/SIGINT between minibatches, and the history row the epoch leaves. The
engines differ only in how a step is computed; what a step, an interruption and an epoch record is
written here once.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tqdm import tqdm

from amlvision.training.checkpoint import RunState
from amlvision.training.config import TrainConfig
from amlvision.training.interrupt import Interrupted, SignalGuard
from amlvision.training.schedule import lr_at

log = logging.getLogger("amlvision.train")


class EpochProgress:
    """Counts one epoch's steps into ``state`` and shows them; :meth:`close` adds the epoch's seconds."""

    def __init__(self, state: RunState, cfg: TrainConfig, steps_per_epoch: int, *, interactive: bool, show: bool):
        self.state, self.cfg, self.steps_per_epoch = state, cfg, steps_per_epoch
        self.bar = tqdm(
            total=steps_per_epoch,
            initial=state.step_in_epoch,
            desc=f"epoch {state.epoch + 1}/{cfg.epochs}",
            disable=not (interactive and show),
            leave=False,
            unit="batch",
        )
        self.log_lines = show and not interactive
        self.log_every = max(1, steps_per_epoch // 5)
        self.start = time.perf_counter()
        self.closed = False

    def step(self, index: int, loss: float, correct: int, count: int, lr: float) -> None:
        """Minibatch ``index`` (0-based in the epoch) is done: its mean loss, correct samples, batch size."""
        s = self.state
        s.stats.add(loss, correct, count)
        s.global_step += 1
        s.step_in_epoch = index + 1
        mean_loss = s.stats.loss_sum / s.stats.count
        self.bar.update(1)
        self.bar.set_postfix(loss=f"{mean_loss:.3f}", lr=f"{lr:.3g}")
        if self.log_lines and (index + 1) % self.log_every == 0:
            log.info(
                "epoch %d/%d step %d/%d loss %.4f lr %.4g",
                s.epoch + 1,
                self.cfg.epochs,
                index + 1,
                self.steps_per_epoch,
                mean_loss,
                lr,
            )

    def stop_if_signalled(self, guard: SignalGuard, checkpoint: Callable[[], None], path: Path) -> None:
        """After a SIGTERM/SIGINT: close the epoch's clock, write the checkpoint and raise Interrupted."""
        if guard.signum is None:
            return
        self.close()
        checkpoint()
        log.warning(
            "checkpoint written to %s at epoch %d step %d; continue with --resume",
            path,
            self.state.epoch + 1,
            self.state.step_in_epoch,
        )
        raise Interrupted(guard.signum)

    def close(self) -> None:
        if not self.closed:
            self.bar.close()
            self.state.stats.seconds += time.perf_counter() - self.start
            self.closed = True


def history_row(
    state: RunState,
    cfg: TrainConfig,
    total_steps: int,
    totals: tuple[float, float, float],
    heldout_scores: dict[str, float],
) -> dict[str, Any]:
    """The finished epoch's history row: training ``totals`` (loss sum, correct, count over all ranks),
    the held-out scores, the last step's learning rate and the training throughput."""
    loss_sum, correct, count = totals
    seconds = state.stats.seconds
    return {
        "epoch": state.epoch + 1,
        "loss": loss_sum / max(1.0, count),
        "accuracy": correct / max(1.0, count),
        **heldout_scores,
        "lr": lr_at(cfg, max(0, state.global_step - 1) / total_steps),
        "images_per_sec": count / seconds if seconds > 0 else math.nan,  # all ranks, training steps only
        "epoch_seconds": seconds,
    }
