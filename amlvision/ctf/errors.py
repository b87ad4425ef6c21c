"""CNTK's ``maxErrors``: how many malformed spots a read may skip before it stops.

CNTK's text reader counts every malformed sample, every line it could not read a sample from (in
strict mode) and every sequence whose length does not add up, prints a warning for each and
stops at the first error beyond ``maxErrors`` (default 0: the first error stops the read). The
reader collects the problems of a chunk as ``Issue`` objects and hands them over in file order,
so the error that stops a read is the (N+1)-th of the file, as in CNTK (within a chunk of about
4 MB, an empty-input error, which stops the read whatever the budget, is reported after the
counted errors of that chunk).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from amlvision.ctf.schema import CTFError, where

log = logging.getLogger("amlvision.ctf")


@dataclass(frozen=True)
class Issue:
    """One malformed spot: ``line``/``column`` (1-based) in the file, ``seq`` the index of the
    sequence it belongs to inside its batch (-1: before the first sequence). ``fatal`` issues stop
    the read whatever ``max_errors`` says (CNTK: "Malformed input file. Bailing out.").
    ``order_line``: where CNTK meets the problem when it differs from where it is reported (a
    sequence is checked after its last line but named by its first)."""

    line: int
    column: int | None
    message: str
    seq: int = -1
    fatal: bool = False
    order_line: int | None = None

    def sort_key(self) -> tuple[int, float]:
        line = self.line if self.order_line is None else self.order_line
        return line, float("inf") if self.column is None else self.column


class ErrorBudget:
    """Counts issues of one read; logs a warning naming ``file:line:column`` for each one skipped
    and raises ``CTFError`` for the one beyond ``max_errors`` (or for a fatal one)."""

    def __init__(self, path: object, max_errors: int = 0):
        if isinstance(max_errors, bool) or not isinstance(max_errors, int) or max_errors < 0:
            raise ValueError(f"max_errors must be a non-negative int (CNTK maxErrors), got {max_errors!r}")
        self.path = path
        self.max_errors = max_errors
        self.count = 0

    def add(self, issue: Issue) -> None:
        text = f"{where(self.path, issue.line, issue.column)}: {issue.message}"
        if issue.fatal:
            raise CTFError(text)
        self.count += 1
        if self.count > self.max_errors:
            if self.max_errors:
                text += f" (error {self.count}: more than max_errors={self.max_errors})"
            raise CTFError(text)
        log.warning("%s; skipped (error %d of max_errors=%d)", text, self.count, self.max_errors)

    def add_all(self, issues: list[Issue]) -> None:
        """Count ``issues`` in file order; fatal ones (checked after whole sequences) come last."""
        for issue in sorted(issues, key=lambda i: (i.fatal, i.sort_key())):
            self.add(issue)
