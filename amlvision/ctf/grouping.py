"""The line grammar of CTF: split lines into samples and group lines into sequences.

This is the only per-line Python code of the reader; it never touches individual numbers. It
collects, per declared stream, the raw value text of each sample ("segment") together with its
line, column and sequence, for ``numbers`` to convert in bulk. Malformed spots become ``Issue``
objects handed out with the batch; the reader counts them against ``max_errors``.

Sequence rules (CNTK ``TextInputIndexBuilder``): if the file starts with ``|``, every line is its
own sequence whose id is its 0-based line number, and digits at the start of later lines are
ignored; ``skip_sequence_ids=True`` (CNTK's ``skipSequenceIds``) forces this mode. Otherwise a
line that starts with a sequence id opens a new sequence when the id differs from the current
one, and a line without an id continues the current sequence.

Default (lenient) mode: the first line that holds samples decides the mode, and blank lines and
lines without samples of declared streams (comments only, or only undeclared inputs) are
skipped. ``strict=True`` follows CNTK exactly: every line is a row of a sequence (in line mode a
sequence of its own), a row without a sample of a declared input is an error ("Could not read a
row"), a file whose first byte is neither ``|`` nor a digit is rejected ("Expected a sequence
id"), and an input may appear several times on one line (CNTK checks the counts per sequence).
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass, field

import numpy as np

from amlvision.ctf.errors import Issue
from amlvision.ctf.schema import CTFError, where

_SEGMENT_FIELDS = ("segments", "seg_lines", "seg_cols", "seg_seqs")
_NO_SAMPLE = (
    "no sample of a declared input on this line (blank, comment only or only undeclared inputs); "
    "CNTK: could not read a row"
)


@dataclass
class Batch:
    """Closed sequences, ready for numeric conversion; ``seqs`` index into ``ids``/``lines``.

    ``rows``: lines of each sequence (strict mode only: CNTK's expected sample count).
    ``issues``: malformed spots found while grouping, in line order.
    """

    ids: list[int] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)
    segments: list[list[bytes]] = field(default_factory=list)
    seg_lines: list[list[int]] = field(default_factory=list)
    seg_cols: list[list[int]] = field(default_factory=list)
    seg_seqs: list[list[int]] = field(default_factory=list)
    rows: list[int] = field(default_factory=list)
    issues: list[Issue] = field(default_factory=list)

    @classmethod
    def empty(cls, num_streams: int) -> Batch:
        return cls(
            segments=[[] for _ in range(num_streams)],
            seg_lines=[[] for _ in range(num_streams)],
            seg_cols=[[] for _ in range(num_streams)],
            seg_seqs=[[] for _ in range(num_streams)],
        )

    def select(self, keep: np.ndarray, segment_masks: list[np.ndarray] | None = None) -> Batch:
        """The sequences where ``keep`` is true (renumbered), optionally dropping the segments
        where ``segment_masks[stream]`` is false; issues of dropped sequences go with them."""
        keep = np.asarray(keep, dtype=bool)
        new_index = np.cumsum(keep) - 1
        chosen = np.flatnonzero(keep).tolist()
        out = Batch(
            [self.ids[i] for i in chosen],
            [self.lines[i] for i in chosen],
            rows=[self.rows[i] for i in chosen] if self.rows else [],
            issues=[
                Issue(i.line, i.column, i.message, int(new_index[i.seq]) if i.seq >= 0 else -1, i.fatal)
                for i in self.issues
                if i.seq < 0 or keep[i.seq]
            ],
        )
        for s in range(len(self.segments)):
            seqs = np.asarray(self.seg_seqs[s], dtype=np.int64)
            mask = keep[seqs] if len(seqs) else np.zeros(0, dtype=bool)
            if segment_masks is not None:
                mask &= segment_masks[s]
            picked = np.flatnonzero(mask).tolist()
            out.segments.append([self.segments[s][i] for i in picked])
            out.seg_lines.append([self.seg_lines[s][i] for i in picked])
            out.seg_cols.append([self.seg_cols[s][i] for i in picked])
            out.seg_seqs.append(new_index[seqs[mask]].tolist())
        return out


def _alias_end(part: bytes) -> int:
    """Index of the first blank in ``part`` (the end of the input name), or its length."""
    stop = len(part)
    space = part.find(b" ")
    if 0 <= space < stop:
        stop = space
    tab = part.find(b"\t")
    if 0 <= tab < stop:
        stop = tab
    return stop


def _leading_digits(text: bytes) -> int:
    """Number of ASCII digits at the start of ``text``."""
    stripped = text.lstrip(b"0123456789")
    return len(text) - len(stripped)


class LineGrouper:
    """Feeds on lines, keeps the still-open sequence between chunks, hands out closed ones."""

    def __init__(
        self,
        path: object,
        aliases: list[str],
        unknown_alias: str = "ignore",
        skip_sequence_ids: bool = False,
        strict: bool = False,
    ):
        if unknown_alias not in ("ignore", "error"):
            raise ValueError(f"unknown_alias must be 'ignore' (CNTK) or 'error', got {unknown_alias!r}")
        self.path = path
        self.aliases = aliases
        self._index = {alias.encode(): i for i, alias in enumerate(aliases)}
        self._unknown_is_error = unknown_alias == "error"
        self.strict = strict
        self.mode: str | None = "lines" if skip_sequence_ids else None  # "ids" or "lines"
        self._current_id: int | None = None
        self._pending = Batch.empty(len(aliases))

    def _fail(self, line: int, column: int | None, message: str) -> CTFError:
        return CTFError(f"{where(self.path, line, column)}: {message}")

    def feed(self, lines: list[bytes], first_line: int) -> None:
        """Parse ``lines``, the first of which is line ``first_line`` (1-based) of the file."""
        index, strict, pending = self._index, self.strict, self._pending
        segments, seg_lines, seg_cols, seg_seqs = (
            pending.segments,
            pending.seg_lines,
            pending.seg_cols,
            pending.seg_seqs,
        )
        line_no = first_line - 1
        for line in lines:
            line_no += 1
            if line.endswith(b"\r"):
                line = line[:-1]
            if strict and self.mode is None:
                self._decide_strict_mode(line, line_no)
            parts = line.split(b"|")
            head = parts[0]
            seq_id = None
            found: list[tuple[int | None, str]] = []  # this line's issues, (column, message)
            if strict:  # CNTK: digits at the very start are the id; anything else before '|' is an error
                digits = _leading_digits(head)
                seq_id = int(head[:digits]) if digits else None
                rest = head[digits:].lstrip(b" \t")
                if rest:
                    column = len(head) - len(rest) + 1
                    found.append((column, f"expected '|' (a sample or a comment), found {_show(rest.rstrip())}"))
            elif len(parts) == 1:
                if not head.strip(b" \t"):
                    continue
                found.append((1, f"expected '|' (a sample or a comment), found {_show(head)}"))
            else:
                seq_text = head.strip(b" \t")
                if seq_text:
                    digits = _leading_digits(seq_text)
                    seq_id = int(seq_text[:digits]) if digits else None
                    if digits < len(seq_text):
                        found.append((1, f"a sequence id must be a non-negative integer, found {_show(seq_text)}"))
            samples = []
            seen = 0
            pos = len(head) + 1  # 0-based offset of the character after this part's '|'
            for part in parts[1:]:
                if part[:1] != b"#":
                    stop = _alias_end(part)
                    stream = index.get(part[:stop])
                    if stream is None:
                        if stop == 0:
                            found.append((pos, "'|' must be followed by an input name or '#'"))
                        elif self._unknown_is_error:
                            raise self._fail(
                                line_no,
                                pos,
                                f"unknown input name {_show(part[:stop])}; "
                                f"declared: {', '.join(map(repr, self.aliases))}",
                            )
                    elif seen >> stream & 1 and not strict:
                        found.append((pos, f"input {self.aliases[stream]!r} appears twice on one line"))
                    else:
                        seen |= 1 << stream
                        samples.append((stream, part[stop:], pos + stop + 1))
                pos += len(part) + 1
            if not samples and not strict:
                pending.issues.extend(Issue(line_no, c, m, len(pending.ids) - 1) for c, m in found)
                continue
            if self.mode is None:
                self.mode = "ids" if seq_id is not None else "lines"
            if self.mode == "lines":
                self._open(line_no - 1, line_no)
            elif seq_id is not None and seq_id != self._current_id:
                self._open(seq_id, line_no)
            seq = len(pending.ids) - 1
            if strict:
                pending.rows[seq] += 1
                if not samples:
                    found.append((None, _NO_SAMPLE))
            if found:
                pending.issues.extend(Issue(line_no, c, m, seq) for c, m in found)
            for stream, text, column in samples:
                segments[stream].append(text)
                seg_lines[stream].append(line_no)
                seg_cols[stream].append(column)
                seg_seqs[stream].append(seq)

    def _decide_strict_mode(self, line: bytes, line_no: int) -> None:
        """CNTK decides from the first byte of the file: ``|`` means one sequence per line,
        anything else must be a sequence id."""
        if line.startswith(b"|"):
            self.mode = "lines"
        elif _leading_digits(line):
            self.mode = "ids"
        else:
            raise self._fail(line_no, 1, f"expected a sequence id or '|' at the start of the file, found {_show(line)}")

    def _open(self, seq_id: int, line: int) -> None:
        self._current_id = seq_id
        self._pending.ids.append(seq_id)
        self._pending.lines.append(line)
        if self.strict:
            self._pending.rows.append(0)

    def take(self, final: bool) -> Batch:
        """Closed sequences so far; with ids the last one stays open until a new id or the end."""
        pending = self._pending
        keep = 0 if final or self.mode != "ids" else min(1, len(pending.ids))
        cut = len(pending.ids) - keep
        if keep == 0:
            self._pending = Batch.empty(len(self.aliases))
            return pending
        done = Batch(pending.ids[:cut], pending.lines[:cut], rows=pending.rows[:cut])
        rest = Batch(pending.ids[cut:], pending.lines[cut:], rows=pending.rows[cut:])
        for issue in pending.issues:
            if issue.seq < cut:
                done.issues.append(issue)
            else:
                rest.issues.append(Issue(issue.line, issue.column, issue.message, issue.seq - cut, issue.fatal))
        for name in _SEGMENT_FIELDS:
            getattr(done, name).extend([] for _ in self.aliases)
            getattr(rest, name).extend([] for _ in self.aliases)
        for s in range(len(self.aliases)):
            split = bisect_left(pending.seg_seqs[s], cut)
            for name in ("segments", "seg_lines", "seg_cols"):
                values = getattr(pending, name)[s]
                getattr(done, name)[s] = values[:split]
                getattr(rest, name)[s] = values[split:]
            done.seg_seqs[s] = pending.seg_seqs[s][:split]
            rest.seg_seqs[s] = [q - cut for q in pending.seg_seqs[s][split:]]
        self._pending = rest
        return done


def _show(text: bytes, limit: int = 40) -> str:
    shown = text.decode("utf-8", "replace")
    return repr(shown if len(shown) <= limit else shown[:limit] + "...")
