"""Vectorised parsing of the value lists of many CTF samples at once.

The reader gathers the value text of every sample of one stream in a chunk ("segments"), joins
them with newlines and converts the whole blob in a few numpy passes. Non-negative integers (image
pixels, one-hot labels) take a byte-arithmetic path that never builds Python objects; other
numbers are checked against CNTK's number grammar with array operations over the bytes (sparse
pairs with one regular expression) and converted by numpy's C parser. Per-token Python loops
run only to explain an error.

Number grammar (CNTK ``TextParser::TryReadRealNumber``): ``[+-]digits[.digits][(e|E)[+-]digits]``
or ``[+-]digits.`` -- no leading ``.``, no ``nan``/``inf``, no hexadecimal.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

_NUM = rb"[+-]?[0-9]+(?:\.[0-9]+(?:[eE][+-]?[0-9]+)?|\.|[eE][+-]?[0-9]+)?"
_PAIR = rb"[0-9]+:" + _NUM
NUMBER = re.compile(_NUM)
PAIR = re.compile(rb"([0-9]+):(" + _NUM + rb")")
_SPARSE_BLOB = re.compile(rb"[ \t\n]*(?:" + _PAIR + rb"(?:[ \t\n]+" + _PAIR + rb")*)?[ \t\n]*")
_TOKEN = re.compile(rb"[^ \t\n]+")

_INT_CHARS = b"0123456789 \t\n"
_FLOAT_CHARS = _INT_CHARS + b".eE+-"
_SPARSE_CHARS = _FLOAT_CHARS + b":"
_PAD = 12  # leading blanks so "look back k digits" never leaves the buffer
_MAX_INT_DIGITS = 15  # beyond this the integer path could overflow float64 exactness; use the float path
_GROUP_BYTES = 256 << 10
_BLANK, _DIGIT, _DOT, _EXP, _SIGN, _OTHER = range(6)
_CLASS = np.full(256, _OTHER, dtype=np.int8)
_CLASS[list(b" \t\n")] = _BLANK
_CLASS[list(b"0123456789")] = _DIGIT
_CLASS[ord(".")] = _DOT
_CLASS[list(b"eE")] = _EXP
_CLASS[list(b"+-")] = _SIGN
_NON_BLANK = np.ones(256, dtype=bool)
_NON_BLANK[[ord(" "), ord("\t"), ord("\n")]] = False


class SegmentError(Exception):
    """Segment ``index`` is malformed at byte ``offset`` of its text; turned into a ``CTFError``."""

    def __init__(self, index: int, offset: int, message: str):
        super().__init__(message)
        self.index, self.offset, self.message = index, offset, message


@dataclass
class Parsed:
    """Numbers of all segments, flattened, and how many tokens each segment held."""

    values: np.ndarray  # float64, or int32 / int64 from the unsigned-integer path
    counts: np.ndarray  # int64, one per segment
    indices: np.ndarray | None = None  # sparse: column index of each value


def _join(segments: list[bytes]) -> tuple[bytes, np.ndarray]:
    blob = b"\n".join(segments)
    lengths = np.fromiter((len(s) + 1 for s in segments), dtype=np.int64, count=len(segments))
    starts = np.zeros(len(segments) + 1, dtype=np.int64)
    np.cumsum(lengths, out=starts[1:])
    return blob, starts


def _token_ends(buffer: np.ndarray, non_blank: np.ndarray) -> np.ndarray:
    """Buffer positions of the last byte of every token."""
    return np.flatnonzero(non_blank[:-1] > non_blank[1:])


def _counts(ends_in_blob: np.ndarray, starts: np.ndarray) -> np.ndarray:
    return np.diff(np.searchsorted(ends_in_blob, starts))


def _parse_unsigned(blob: bytes, starts: np.ndarray) -> Parsed | None:
    """Byte arithmetic for blobs of unsigned integers; ``None`` if a number has too many digits.

    A token's value is the sum of its digits times powers of ten, gathered backwards from its
    last byte while the bytes are still digits.
    """
    buffer = np.frombuffer(b" " * _PAD + blob + b" ", dtype=np.uint8)
    digits = buffer - np.uint8(48)  # wraps non-digits to >= 10
    is_digit = digits < 10
    ends = _token_ends(buffer, is_digit)
    values = digits[ends].astype(np.int32)
    gate = np.ones(len(ends), dtype=bool)
    wide = False
    for back in range(1, _MAX_INT_DIGITS + 1):
        position = ends - back
        gate &= is_digit[position]
        if not gate.any():
            return Parsed(values, _counts(ends - _PAD, starts))
        if back == 9 and not wide:  # 10 digits may overflow int32
            values, wide = values.astype(np.int64), True
        term = digits[position].astype(values.dtype)
        term *= gate
        term *= 10**back
        values += term
    return None


def _parse_real(blob: bytes, starts: np.ndarray, count_per_token: int = 1) -> Parsed:
    """numpy's C parser for a blob already validated against the CNTK grammar."""
    buffer = np.frombuffer(b" " + blob + b" ", dtype=np.uint8)
    ends = _token_ends(buffer, _NON_BLANK[buffer])
    text = blob.replace(b":", b" ") if count_per_token == 2 else blob
    values = np.fromstring(text, dtype=np.float64, sep=" ") if len(ends) else np.zeros(0)
    if len(values) != count_per_token * len(ends):  # cannot happen after validation; never guess
        raise SegmentError(0, 0, f"numpy read {len(values)} numbers where {count_per_token * len(ends)} were expected")
    return Parsed(values, _counts(ends - 1, starts))


def reals_are_valid(blob: bytes) -> bool:
    """Whether every token of ``blob`` follows the CNTK number grammar, checked with array ops.

    Equivalent to matching ``NUMBER`` against each token: signs open a token or follow the
    exponent letter and precede a digit; a dot follows a digit and precedes a digit or the end;
    the exponent letter follows a digit and precedes a digit or sign; and within one token the
    only repeat of dot/exponent allowed is one dot followed later by one exponent.
    """
    kind = _CLASS[np.frombuffer(b" " + blob + b" ", dtype=np.uint8)]
    cur, prev, nxt = kind[1:-1], kind[:-2], kind[2:]
    if (cur == _OTHER).any():
        return False
    sign, dot, exp = cur == _SIGN, cur == _DOT, cur == _EXP
    if (sign & (((prev != _BLANK) & (prev != _EXP)) | (nxt != _DIGIT))).any():
        return False
    if (dot & ((prev != _DIGIT) | ((nxt != _DIGIT) & (nxt != _BLANK)))).any():
        return False
    if (exp & ((prev != _DIGIT) | ((nxt != _DIGIT) & (nxt != _SIGN)))).any():
        return False
    marks = np.flatnonzero(dot | exp)
    if len(marks) < 2:
        return True
    token_starts = np.flatnonzero((prev == _BLANK) & (cur != _BLANK))
    token = np.searchsorted(token_starts, marks, side="right")
    same_token = token[1:] == token[:-1]
    dot_then_exp = (cur[marks[:-1]] == _DOT) & (cur[marks[1:]] == _EXP)
    return not (same_token & ~dot_then_exp).any()


def _explain(segments: list[bytes], is_sparse: bool, dim: int) -> SegmentError:
    """The first malformed token, found the slow way once the fast checks failed."""
    for index, segment in enumerate(segments):
        for token in _TOKEN.finditer(segment):
            text = token.group()
            shown = text.decode("utf-8", "replace")
            if is_sparse:
                pair = PAIR.fullmatch(text)
                if pair is None:
                    return SegmentError(index, token.start(), f"{shown!r} is not a sparse index:value pair")
                if int(pair.group(1)) >= dim:
                    return SegmentError(index, token.start(), f"sparse index {int(pair.group(1))} >= dim {dim}")
            elif NUMBER.fullmatch(text) is None:
                return SegmentError(index, token.start(), f"{shown!r} is not a number")
    return SegmentError(0, 0, "malformed values (no single token to blame)")


def _groups(segments: list[bytes]) -> list[tuple[int, int]]:
    """Runs of segments of about ``_GROUP_BYTES`` each: numpy passes over cache-sized buffers are
    several times faster than over one huge buffer (and allocate no fresh pages)."""
    bounds, size, first = [], 0, 0
    for i, segment in enumerate(segments):
        size += len(segment) + 1
        if size >= _GROUP_BYTES:
            bounds.append((first, i + 1))
            first, size = i + 1, 0
    if first < len(segments) or not bounds:
        bounds.append((first, len(segments)))
    return bounds


def _grouped(parse, segments: list[bytes], *args) -> Parsed:
    groups = _groups(segments)
    if len(groups) == 1:
        return parse(segments, *args)
    parts = []
    for first, stop in groups:
        try:
            parts.append(parse(segments[first:stop], *args))
        except SegmentError as error:
            error.index += first
            raise
    indices = None if parts[0].indices is None else np.concatenate([p.indices for p in parts])
    return Parsed(np.concatenate([p.values for p in parts]), np.concatenate([p.counts for p in parts]), indices)


def parse_dense(segments: list[bytes]) -> Parsed:
    """All numbers of dense samples; raises ``SegmentError`` naming the first bad token."""
    return _grouped(_parse_dense_group, segments)


def parse_sparse(segments: list[bytes], dim: int) -> Parsed:
    """All ``index:value`` pairs of sparse samples; checks every index against ``dim``."""
    return _grouped(_parse_sparse_group, segments, dim)


def _parse_dense_group(segments: list[bytes]) -> Parsed:
    blob, starts = _join(segments)
    if not blob.translate(None, _INT_CHARS):
        parsed = _parse_unsigned(blob, starts)
        if parsed is not None:
            return parsed
    if not reals_are_valid(blob):
        raise _explain(segments, is_sparse=False, dim=0)
    return _parse_real(blob, starts)


def _parse_sparse_group(segments: list[bytes], dim: int) -> Parsed:
    blob, starts = _join(segments)
    if blob.translate(None, _SPARSE_CHARS) or _SPARSE_BLOB.fullmatch(blob) is None:
        raise _explain(segments, is_sparse=True, dim=dim)
    parsed = _parse_real(blob, starts, count_per_token=2)
    indices = parsed.values[0::2]
    if len(indices) and indices.max() >= dim:
        raise _explain(segments, is_sparse=True, dim=dim)
    return Parsed(parsed.values[1::2].copy(), parsed.counts, indices.astype(np.int64))
