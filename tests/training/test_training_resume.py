"""A killed or interrupted run resumed with --resume ends with exactly the uninterrupted run's metrics.

Real processes, real signals: SIGTERM mid-epoch (checkpoint written on the way out, exit 143) and
kill -9 (no chance to write anything; the last per-epoch checkpoint is used).
"""

from __future__ import annotations

import json
import signal
from pathlib import Path

import numpy as np
import pytest

from .helpers import predictions, run_train, start_train, train_args

EXTRA = ("--batch-size", "64", "--epoch-size", "320", "--seed", "7")


@pytest.fixture(scope="module")
def reference(cifar_packed: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    outputs = tmp_path_factory.mktemp("reference") / "out"
    done = run_train(train_args(cifar_packed, outputs, *EXTRA, epochs=2))
    assert done.returncode == 0, done.stdout + done.stderr
    return outputs


def _interrupt(args: list[str], signum: int, when: str) -> tuple[int, str]:
    """Start train.py, send ``signum`` once a log line contains ``when``; return (exit code, output)."""
    proc = start_train(args)
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if when in line:
            proc.send_signal(signum)
            break
    rest, _ = proc.communicate(timeout=300)
    return proc.returncode, "".join(lines) + (rest or "")


def _assert_same_result(reference: Path, resumed: Path) -> None:
    ref_labels, ref_probs = predictions(reference)
    labels, probs = predictions(resumed)
    assert np.array_equal(labels, ref_labels)
    assert np.array_equal(probs, ref_probs)  # bit for bit: same weights
    ref, got = (json.loads((p / "metrics.json").read_text()) for p in (reference, resumed))
    for key in ("accuracy", "macro_f1", "loss", "per_class", "confusion_matrix"):
        assert got[key] == ref[key], key
    assert [r["loss"] for r in got["history"]] == [r["loss"] for r in ref["history"]]


def test_sigterm_writes_checkpoint_and_resume_matches(reference: Path, cifar_packed: Path, tmp_path: Path) -> None:
    import torch

    outputs = tmp_path / "out"
    args = train_args(cifar_packed, outputs, *EXTRA, epochs=2)
    code, output = _interrupt(args, signal.SIGTERM, "epoch 1/2 step 3/")
    assert code == 143, output
    assert "Traceback" not in output and "continue with --resume" in output
    ckpt = torch.load(outputs / "checkpoint.pt", weights_only=False)
    assert ckpt["epoch"] == 0 and 3 <= ckpt["step_in_epoch"] < 5  # mid-epoch
    assert not (outputs / "model.onnx").exists()
    done = run_train([*args, "--resume"])
    assert done.returncode == 0, done.stdout + done.stderr
    _assert_same_result(reference, outputs)


def test_kill_9_then_resume_matches(reference: Path, cifar_packed: Path, tmp_path: Path) -> None:
    outputs = tmp_path / "out"
    args = train_args(cifar_packed, outputs, *EXTRA, epochs=2)
    code, output = _interrupt(args, signal.SIGKILL, "epoch 2/2 step 2/")
    assert code == -signal.SIGKILL, output
    done = run_train([*args, "--resume"])
    assert done.returncode == 0, done.stdout + done.stderr
    assert "resumed from" in done.stderr + done.stdout
    _assert_same_result(reference, outputs)


def test_resume_refuses_a_changed_configuration(reference: Path, cifar_packed: Path) -> None:
    done = run_train([*train_args(cifar_packed, reference, *EXTRA, epochs=2), "--resume", "--lr", "0.5"])
    assert done.returncode != 0
    assert "configuration changed (lr: 1.0 -> 0.5)" in done.stdout + done.stderr
