"""The interface every task implements (see ``amlvision.tasks``).

Two sides, kept apart by what they may import:

- serving (numpy only; the scoring image has no PyTorch): :meth:`Task.scores` turns the ONNX
  outputs into per-class scores, :meth:`Task.answers` turns scores into the JSON answer;
- training (PyTorch, imported inside the hooks): the loss, the per-batch training figure, the
  held-out pass, the per-epoch scores, the final evaluation files and what the tracker receives,
  and the ONNX export.

A hook a task does not support raises :class:`NotImplementedError` naming the task, so a half-built
task fails with a clear message rather than a wrong number.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from amlvision.model_dir import OnnxSignature, Preprocess, signature

if TYPE_CHECKING:  # the training side only
    import torch
    from torch import nn


@dataclass
class HeldoutPass:
    """One pass over the held-out split: per-class scores ``[N, K]``, targets and the mean loss."""

    scores: np.ndarray
    targets: np.ndarray
    loss: float


class Task:
    """Base class of a task; subclasses set :attr:`name` and override the hooks they support."""

    name: ClassVar[str] = ""

    def _missing(self, hook: str) -> NotImplementedError:
        return NotImplementedError(f"the {self.name} task does not implement {hook}")

    @property
    def signature(self) -> OnnxSignature:
        """The ONNX input/output names of this task's ``model.onnx`` (``amlvision.model_dir``)."""
        return signature(self.name)

    def __repr__(self) -> str:
        return f"<task {self.name}>"

    # ------------------------------------------------------------------ serving (numpy)
    def scores(self, outputs: dict[str, np.ndarray]) -> np.ndarray:
        """The model's named ONNX outputs for a batch -> per-class scores ``[N, K]`` in 0-1."""
        raise self._missing("scores")

    def answers(self, scores: np.ndarray, labels: Sequence[str], k: int, preprocess: Preprocess) -> list[dict]:
        """Per-class scores ``[N, K]`` -> one JSON-able answer per image (``k``: how many classes to list)."""
        raise self._missing("answers")

    # ------------------------------------------------------------------ training (PyTorch inside)
    def trainer(self, cfg: Any) -> Any | None:
        """A training run of the task's own (an object with ``run() -> metrics``), or None for the shared one.

        None (the default) trains with :class:`amlvision.training.trainer.Trainer`, which asks this
        task for the hooks below; a task whose training step has another shape (e.g. detection's
        model that returns its own losses) returns its trainer here instead.
        """
        return None

    def criterion(self, class_weights: Sequence[float] | None, label_smoothing: float, device: Any) -> nn.Module:
        """The training loss ``criterion(outputs, targets)``."""
        raise self._missing("criterion")

    def count_correct(self, outputs: torch.Tensor, targets: torch.Tensor) -> int:
        """How many of a training batch's samples the outputs get right (the running training accuracy)."""
        raise self._missing("count_correct")

    def predict(
        self, model: nn.Module, source: Any, normalize: Any, device: Any, batch_size: int, gallery: Any = None
    ) -> HeldoutPass:
        """Evaluate ``model`` (eval mode, no gradients) over one full pass of ``source``."""
        raise self._missing("predict")

    def epoch_scores(self, heldout: HeldoutPass, num_classes: int) -> dict[str, float]:
        """The held-out scores each epoch's history row records (keys ``val_*``)."""
        raise self._missing("epoch_scores")

    def describe_epoch(self, row: dict[str, Any]) -> str:
        """The run log's summary of one history row, after ``epoch e/E``."""
        raise self._missing("describe_epoch")

    def evaluate(
        self,
        heldout: HeldoutPass,
        class_names: list[str],
        out_dir: Path,
        *,
        gallery: Any = None,
        extra: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Write the final evaluation files into ``out_dir``; returns the metrics (metrics.json's content)."""
        raise self._missing("evaluate")

    def final_figures(self, metrics: dict[str, Any]) -> dict[str, float]:
        """The ``final_*`` numbers the tracker records at the end of the run."""
        raise self._missing("final_figures")

    def describe_final(self, metrics: dict[str, Any]) -> str:
        """The run log's summary of the final evaluation."""
        raise self._missing("describe_final")

    def track_final(self, tracker: Any, metrics: dict[str, Any], class_names: list[str], out_dir: Path) -> None:
        """Send the final evaluation's tables, plots and report files to the run tracker."""
        raise self._missing("track_final")

    def export(
        self, model: nn.Module, out_dir: Path, class_names: list[str], preprocess: Preprocess, check_inputs: Any
    ) -> dict[str, float]:
        """Write the model directory's ``model.onnx`` + labels/preprocess and check ONNX against PyTorch."""
        raise self._missing("export")
