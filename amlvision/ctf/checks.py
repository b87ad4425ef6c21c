"""Malformed-input checks of the reader, per sample and per sequence, as CNTK counts them.

They run only when a batch has problems (the bulk parse failed, the grouper found issues, an input
is empty, or strict mode compares line and sample counts), so well-formed files never pay for them.
"""

from __future__ import annotations

import numpy as np

from amlvision.ctf.errors import Issue, log
from amlvision.ctf.grouping import Batch
from amlvision.ctf.numbers import SegmentError, parse_dense, parse_sparse
from amlvision.ctf.schema import StreamDef, where

_ROW_LOST = "no sample of this line could be read; CNTK: could not read a row"


def sample_issues(
    name: str, definition: StreamDef, batch: Batch, s: int, pad_short_dense: bool
) -> tuple[np.ndarray, list[Issue]]:
    """Which samples of stream ``s`` are well formed, and an issue for each one that is not.

    Runs only once the bulk parse failed: one small parse per sample of this batch."""
    dim, field = definition.shape, definition.field
    ok = np.ones(len(batch.segments[s]), dtype=bool)
    issues = []
    for i, segment in enumerate(batch.segments[s]):
        line, column, seq = batch.seg_lines[s][i], batch.seg_cols[s][i], batch.seg_seqs[s][i]
        try:
            parsed = parse_sparse([segment], dim) if definition.is_sparse else parse_dense([segment])
        except SegmentError as error:
            ok[i] = False
            message = f"input {field!r} (stream {name!r}): {error.message}"
            issues.append(Issue(line, column + error.offset, message, seq))
            continue
        count = int(parsed.counts[0])
        if not definition.is_sparse and (count > dim or (count < dim and not pad_short_dense)):
            ok[i] = False
            issues.append(
                Issue(line, column, f"input {field!r} (stream {name!r}) has {count} values, expected dim={dim}", seq)
            )
    return ok, issues


def check_sequences(
    batch: Batch, streams: dict[str, StreamDef], masks: list[np.ndarray | None], strict: bool, path: object
) -> tuple[np.ndarray, list[Issue]]:
    """Sequences to drop and sequence-level issues once malformed samples are gone.

    CNTK stops at a sequence with an input that has no sample ("Input is empty"); lenient mode
    drops such a sequence instead when its samples were lost to counted errors (so ``max_errors``
    can skip a malformed one-line sequence) and stops otherwise. Strict mode also counts, as
    CNTK does, a sequence with more samples of an input than lines, or fewer in every input."""
    n = len(batch.ids)
    counts = np.zeros((len(streams), n), dtype=np.int64)
    for s in range(len(streams)):
        seqs = np.asarray(batch.seg_seqs[s], dtype=np.int64)
        if masks[s] is not None:
            seqs = seqs[masks[s]]
        counts[s] = np.bincount(seqs, minlength=n)
    drop = np.zeros(n, dtype=bool)
    empty = (counts == 0).any(axis=0)
    issues = []
    if not empty.any() and not strict:
        return drop, issues
    troubled = np.zeros(n, dtype=bool)
    for issue in batch.issues:
        if issue.seq >= 0:
            troubled[issue.seq] = True
    for s in range(len(streams)):
        if masks[s] is not None:
            troubled[np.asarray(batch.seg_seqs[s], dtype=np.int64)[~masks[s]]] = True
    names = list(streams)
    for i in np.flatnonzero(empty).tolist():
        s = int(np.argmax(counts[:, i] == 0))
        field = streams[names[s]].field
        if troubled[i] and not strict:
            drop[i] = True
            log.warning(
                "%s: sequence %d dropped: no well-formed sample of input %r (stream %r) is left",
                where(path, batch.lines[i]),
                batch.ids[i],
                field,
                names[s],
            )
            continue
        message = (
            f"sequence {batch.ids[i]} has no sample of input {field!r} (stream {names[s]!r}); CNTK rejects empty inputs"
        )
        issues.append(Issue(batch.lines[i], None, message, i, fatal=True))
    if strict:
        rows = np.asarray(batch.rows, dtype=np.int64)
        more = (counts > rows).any(axis=0) & ~empty
        fewer = ~more & ~empty & (counts.max(axis=0, initial=0) < rows)
        last = _last_lines(batch) if (more | fewer).any() else None
        for i in np.flatnonzero(more | fewer).tolist():
            if more[i]:
                s = int(np.argmax(counts[:, i] > rows[i]))
                message = (
                    f"sequence {batch.ids[i]}: input {streams[names[s]].field!r} has {counts[s, i]} samples "
                    f"in {rows[i]} lines (CNTK: more samples than expected)"
                )
            else:
                message = (
                    f"sequence {batch.ids[i]} has {rows[i]} lines but at most {counts[:, i].max()} samples "
                    "per input (CNTK: fewer samples than expected)"
                )
            issues.append(Issue(batch.lines[i], None, message, i, order_line=int(last[i])))
    return drop, issues


def _last_lines(batch: Batch) -> np.ndarray:
    """The last line of each sequence (every strict-mode line has a sample or an issue)."""
    last = np.asarray(batch.lines, dtype=np.int64).copy()
    for s in range(len(batch.segments)):
        np.maximum.at(
            last, np.asarray(batch.seg_seqs[s], dtype=np.int64), np.asarray(batch.seg_lines[s], dtype=np.int64)
        )
    for issue in batch.issues:
        if issue.seq >= 0:
            last[issue.seq] = max(last[issue.seq], issue.line)
    return last


def lost_rows(batch: Batch, masks: list[np.ndarray | None]) -> list[Issue]:
    """Strict mode: lines whose every sample was malformed (CNTK: could not read a row)."""
    before, after = {}, set()
    for s, mask in enumerate(masks):
        for i, (line, seq) in enumerate(zip(batch.seg_lines[s], batch.seg_seqs[s], strict=True)):
            before[line] = seq
            if mask is None or mask[i]:
                after.add(line)
    return [Issue(line, None, _ROW_LOST, seq) for line, seq in before.items() if line not in after]
