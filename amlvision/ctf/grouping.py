"""The line grammar of CTF: split lines into samples and group lines into sequences.

This is the only per-line Python code of the reader; it never touches individual numbers. It
collects, per declared stream, the raw value text of each sample ("segment") together with its
line, column and sequence, for ``numbers`` to convert in bulk.

Sequence rules (CNTK ``Indexer``): the first line that holds samples decides the mode. If it
starts with a sequence id, consecutive lines with the same id form one sequence, and a line
without an id continues the current sequence. If it starts with ``|``, every line is its own
sequence whose id is its 0-based line number, and digits at the start of later lines are
ignored; ``skip_sequence_ids=True`` (CNTK's ``skipSequenceIds``) forces this mode. Blank lines
and lines without samples of declared streams (comments only, or only undeclared inputs) are
skipped.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass, field

from amlvision.ctf.schema import CTFError, where


@dataclass
class Batch:
    """Closed sequences, ready for numeric conversion; ``seqs`` index into ``ids``/``lines``."""

    ids: list[int] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)
    segments: list[list[bytes]] = field(default_factory=list)
    seg_lines: list[list[int]] = field(default_factory=list)
    seg_cols: list[list[int]] = field(default_factory=list)
    seg_seqs: list[list[int]] = field(default_factory=list)

    @classmethod
    def empty(cls, num_streams: int) -> Batch:
        return cls(
            segments=[[] for _ in range(num_streams)],
            seg_lines=[[] for _ in range(num_streams)],
            seg_cols=[[] for _ in range(num_streams)],
            seg_seqs=[[] for _ in range(num_streams)],
        )


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


class LineGrouper:
    """Feeds on lines, keeps the still-open sequence between chunks, hands out closed ones."""

    def __init__(
        self, path: object, aliases: list[str], unknown_alias: str = "ignore", skip_sequence_ids: bool = False
    ):
        if unknown_alias not in ("ignore", "error"):
            raise ValueError(f"unknown_alias must be 'ignore' (CNTK) or 'error', got {unknown_alias!r}")
        self.path = path
        self.aliases = aliases
        self._index = {alias.encode(): i for i, alias in enumerate(aliases)}
        self._strict = unknown_alias == "error"
        self.mode: str | None = "lines" if skip_sequence_ids else None  # "ids" or "lines"
        self._current_id: int | None = None
        self._pending = Batch.empty(len(aliases))

    def _fail(self, line: int, column: int | None, message: str) -> CTFError:
        return CTFError(f"{where(self.path, line, column)}: {message}")

    def feed(self, lines: list[bytes], first_line: int) -> None:
        """Parse ``lines``, the first of which is line ``first_line`` (1-based) of the file."""
        index, strict, pending = self._index, self._strict, self._pending
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
            parts = line.split(b"|")
            head = parts[0]
            if len(parts) == 1:
                if head.strip(b" \t"):
                    raise self._fail(line_no, 1, f"expected '|' (a sample or a comment), found {_show(head)}")
                continue
            seq_text = head.strip(b" \t")
            if seq_text and not seq_text.isdigit():
                raise self._fail(line_no, 1, f"a sequence id must be a non-negative integer, found {_show(seq_text)}")
            samples = []
            seen = 0
            pos = len(head) + 1  # 0-based offset of the character after this part's '|'
            for part in parts[1:]:
                if part[:1] != b"#":
                    stop = _alias_end(part)
                    stream = index.get(part[:stop])
                    if stream is None:
                        if stop == 0:
                            raise self._fail(line_no, pos, "'|' must be followed by an input name or '#'")
                        if strict:
                            raise self._fail(
                                line_no,
                                pos,
                                f"unknown input name {_show(part[:stop])}; "
                                f"declared: {', '.join(map(repr, self.aliases))}",
                            )
                    else:
                        if seen >> stream & 1:
                            raise self._fail(line_no, pos, f"input {self.aliases[stream]!r} appears twice on one line")
                        seen |= 1 << stream
                        samples.append((stream, part[stop:], pos + stop + 1))
                pos += len(part) + 1
            if not samples:
                continue
            if self.mode is None:
                self.mode = "ids" if seq_text else "lines"
            if self.mode == "lines":
                self._open(line_no - 1, line_no)
            elif seq_text and int(seq_text) != self._current_id:
                self._open(int(seq_text), line_no)
            seq = len(pending.ids) - 1
            for stream, text, column in samples:
                segments[stream].append(text)
                seg_lines[stream].append(line_no)
                seg_cols[stream].append(column)
                seg_seqs[stream].append(seq)

    def _open(self, seq_id: int, line: int) -> None:
        self._current_id = seq_id
        self._pending.ids.append(seq_id)
        self._pending.lines.append(line)

    def take(self, final: bool) -> Batch:
        """Closed sequences so far; with ids the last one stays open until a new id or the end."""
        pending = self._pending
        keep = 0 if final or self.mode != "ids" else min(1, len(pending.ids))
        cut = len(pending.ids) - keep
        if keep == 0:
            self._pending = Batch.empty(len(self.aliases))
            return pending
        done, rest = Batch(pending.ids[:cut], pending.lines[:cut]), Batch(pending.ids[cut:], pending.lines[cut:])
        for name in ("segments", "seg_lines", "seg_cols", "seg_seqs"):
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
