"""SIGTERM/SIGINT during training: finish the minibatch, write a checkpoint, exit with the signal's code.

Azure ML (and Kubernetes, and a user's Ctrl-C) stop a job with SIGTERM/SIGINT; :class:`SignalGuard`
turns the signal into a flag the epoch loop checks between minibatches, and the loop raises
:class:`Interrupted` after checkpointing so ``--resume`` continues exactly where it stopped.
"""

from __future__ import annotations

import contextlib
import logging
import signal
from typing import Any

log = logging.getLogger("amlvision.train")

INTERRUPTED_EXIT = {signal.SIGTERM: 143, signal.SIGINT: 130}


class Interrupted(Exception):
    """SIGTERM/SIGINT arrived; a checkpoint has been written."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class SignalGuard:
    """Turns SIGTERM/SIGINT into a flag checked between minibatches (the second SIGINT aborts at once)."""

    def __init__(self):
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> SignalGuard:
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
