"""Reading CTF files: chunked, with bulk numeric conversion, as whole arrays or per sequence."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import sparse

from amlvision.ctf.grouping import Batch, LineGrouper
from amlvision.ctf.numbers import SegmentError, parse_dense, parse_sparse
from amlvision.ctf.schema import CTFError, Sequence, StreamData, StreamDef, check_streams, where

DEFAULT_CHUNK_BYTES = 4 << 20  # measured: 1-16 MB within 10%; smaller keeps streaming memory low
_BOM = b"\xef\xbb\xbf"


@dataclass
class CTFArrays:
    """Every sample of a CTF file, stream by stream, plus where each sequence starts.

    ``data[name]``: dense ``(total_samples, dim)`` array (``dtype``) or ``csr_matrix``;
    ``offsets[name]``: int64 array of ``len(ids) + 1``; sequence ``i`` owns rows
    ``offsets[name][i]:offsets[name][i + 1]``. ``sample_lines[name]``: 1-based file line of each
    row, for error messages downstream. ``ids`` / ``lines``: sequence ids and first lines.
    ``end_offset``: bytes of the file read when this was produced (progress; sizing buffers).
    """

    path: str
    ids: np.ndarray
    lines: np.ndarray
    data: dict[str, StreamData]
    offsets: dict[str, np.ndarray]
    sample_lines: dict[str, np.ndarray]
    end_offset: int = 0

    def __len__(self) -> int:
        return len(self.ids)

    def sequences(self) -> Iterator[Sequence]:
        for i, (seq_id, line) in enumerate(zip(self.ids.tolist(), self.lines.tolist(), strict=True)):
            yield Sequence(
                seq_id,
                line,
                {name: value[self.offsets[name][i] : self.offsets[name][i + 1]] for name, value in self.data.items()},
            )


def _line_chunks(path: Path, chunk_bytes: int) -> Iterator[tuple[list[bytes], int, int]]:
    """Whole lines in blocks of about ``chunk_bytes``: ``(lines, number of the first, end offset)``."""
    with open(path, "rb") as handle:
        rest = handle.read(len(_BOM))
        if rest == _BOM:  # CNTK skips a UTF-8 byte order mark
            rest = b""
        line_no = 1
        while True:
            block = handle.read(chunk_bytes)
            if not block:
                if rest:  # the last line has no final newline (or the file is shorter than a BOM)
                    yield rest.split(b"\n"), line_no, handle.tell()
                return
            data = rest + block
            cut = data.rfind(b"\n")
            if cut < 0:
                rest = data
                continue
            lines = data[:cut].split(b"\n")
            rest = data[cut + 1 :]
            yield lines, line_no, handle.tell() - len(rest)
            line_no += len(lines)


def _dense(
    name: str, definition: StreamDef, batch: Batch, s: int, path: object, dtype: np.dtype, pad_short_dense: bool
) -> np.ndarray:
    parsed = parse_dense(batch.segments[s])
    dim, counts = definition.shape, parsed.counts
    bad = counts > dim if pad_short_dense else counts != dim
    if bad.any():
        i = int(np.argmax(bad))
        raise CTFError(
            f"{where(path, batch.seg_lines[s][i], batch.seg_cols[s][i])}: input {definition.field!r} "
            f"(stream {name!r}) has {counts[i]} values, expected dim={dim}"
        )
    if (counts == dim).all():
        values = parsed.values.reshape(-1, dim)
    else:  # CNTK fills a short dense sample up with zeros
        values = np.zeros((len(counts), dim), dtype=parsed.values.dtype)
        rows = np.repeat(np.arange(len(counts)), counts)
        starts = np.repeat(np.cumsum(counts) - counts, counts)
        values[rows, np.arange(len(rows)) - starts] = parsed.values
    return _cast(values, name, definition, batch, s, path, dtype)


def _cast(
    values: np.ndarray, name: str, definition: StreamDef, batch: Batch, s: int, path: object, dtype: np.dtype
) -> np.ndarray:
    if dtype.kind == "f":
        return values.astype(dtype, copy=False)
    info = np.iinfo(dtype)
    ok = (values >= info.min) & (values <= info.max)
    if values.dtype.kind == "f":
        ok &= values == np.floor(values)
    if not ok.all():
        i = int(np.argmax(~ok.all(axis=1)))
        raise CTFError(
            f"{where(path, batch.seg_lines[s][i], batch.seg_cols[s][i])}: input {definition.field!r} "
            f"(stream {name!r}) holds values that are not integers in [{info.min}, {info.max}] "
            f"as {dtype.name} requires"
        )
    return values.astype(dtype)


def _sparse(definition: StreamDef, batch: Batch, s: int) -> sparse.csr_matrix:
    parsed = parse_sparse(batch.segments[s], definition.shape)
    indptr = np.zeros(len(parsed.counts) + 1, dtype=np.int64)
    np.cumsum(parsed.counts, out=indptr[1:])
    return sparse.csr_matrix(
        (parsed.values.astype(np.float32), parsed.indices, indptr), shape=(len(parsed.counts), definition.shape)
    )


def _convert(
    batch: Batch, streams: dict[str, StreamDef], path: object, dtypes: dict[str, np.dtype], pad_short_dense: bool
) -> CTFArrays:
    data, offsets, sample_lines = {}, {}, {}
    for s, (name, definition) in enumerate(streams.items()):
        try:
            data[name] = (
                _sparse(definition, batch, s)
                if definition.is_sparse
                else _dense(name, definition, batch, s, path, dtypes[name], pad_short_dense)
            )
        except SegmentError as error:
            line, column = batch.seg_lines[s][error.index], batch.seg_cols[s][error.index] + error.offset
            raise CTFError(
                f"{where(path, line, column)}: input {definition.field!r} (stream {name!r}): {error.message}"
            ) from None
        per_sequence = np.bincount(np.asarray(batch.seg_seqs[s], dtype=np.int64), minlength=len(batch.ids))
        if len(per_sequence) and per_sequence.min() == 0:
            i = int(np.argmin(per_sequence))
            raise CTFError(
                f"{where(path, batch.lines[i])}: sequence {batch.ids[i]} has no sample of input "
                f"{definition.field!r} (stream {name!r}); CNTK rejects empty inputs"
            )
        offsets[name] = np.concatenate([[0], np.cumsum(per_sequence)]).astype(np.int64)
        sample_lines[name] = np.asarray(batch.seg_lines[s], dtype=np.int64)
    return CTFArrays(
        str(path),
        np.asarray(batch.ids, dtype=np.int64),
        np.asarray(batch.lines, dtype=np.int64),
        data,
        offsets,
        sample_lines,
    )


DTypes = np.dtype | type | str | Mapping[str, np.dtype | type | str]


def resolve_dtypes(streams: Mapping[str, StreamDef], dtype: DTypes) -> dict[str, np.dtype]:
    """One dtype per dense stream: ``dtype`` for all, or a ``{name: dtype}`` mapping (float32 default)."""
    chosen = dtype if isinstance(dtype, Mapping) else dict.fromkeys(streams, dtype)
    unknown = set(chosen) - set(streams)
    if unknown:
        raise ValueError(f"dtype given for unknown stream(s) {sorted(unknown)}")
    result = {name: np.dtype(chosen.get(name, np.float32)) for name in streams}
    for name, value in result.items():
        if value.kind not in "fiu":
            raise ValueError(f"stream {name!r}: dtype must be a float or integer type, got {value}")
    return result


def iter_arrays(
    path: str | os.PathLike,
    streams: Mapping[str, StreamDef],
    *,
    dtype: DTypes = np.float32,
    unknown_alias: str = "ignore",
    skip_sequence_ids: bool = False,
    pad_short_dense: bool = False,
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
) -> Iterator[CTFArrays]:
    """``CTFArrays`` for consecutive groups of whole sequences, reading about ``chunk_bytes`` at a time."""
    streams = check_streams(streams)
    dtypes = resolve_dtypes(streams, dtype)
    path = Path(path)
    grouper = LineGrouper(path, [d.field for d in streams.values()], unknown_alias, skip_sequence_ids)
    offset = 0
    for lines, first_line, offset in _line_chunks(path, chunk_bytes):
        grouper.feed(lines, first_line)
        batch = grouper.take(final=False)
        if batch.ids:
            chunk = _convert(batch, streams, path, dtypes, pad_short_dense)
            chunk.end_offset = offset
            yield chunk
    batch = grouper.take(final=True)
    if batch.ids:
        chunk = _convert(batch, streams, path, dtypes, pad_short_dense)
        chunk.end_offset = offset
        yield chunk


def iter_sequences(path: str | os.PathLike, streams: Mapping[str, StreamDef], **options) -> Iterator[Sequence]:
    """Stream the sequences of a CTF file without holding the file in memory (see ``read``)."""
    for chunk in iter_arrays(path, streams, **options):
        yield from chunk.sequences()


def read(path: str | os.PathLike, streams: Mapping[str, StreamDef], **options) -> list[Sequence]:
    """Read every sequence of the CTF file ``path``.

    ``streams`` maps your stream names to ``StreamDef(field=alias, shape=dim, is_sparse=...)``.
    Returns a list of ``Sequence`` (``.id``, ``.line``, ``.data[name]``: float32 ``(samples, dim)``
    array or ``csr_matrix``). Options: ``unknown_alias="ignore"`` (CNTK skips inputs that are not
    declared) or ``"error"``; ``pad_short_dense=False`` (a dense sample with fewer than ``dim``
    values is an error; ``True`` zero-fills it as CNTK does); ``skip_sequence_ids=False`` (``True``:
    every line is a sequence, ids ignored, CNTK's ``skipSequenceIds``); ``chunk_bytes``. Raises ``CTFError``
    naming file, line and column for malformed input.
    """
    return list(iter_sequences(path, streams, **options))


class _RowBuffer:
    """Dense rows appended chunk by chunk into one array, so a whole file is never held twice
    (chunks plus their concatenation). Capacity follows the rows-per-byte seen so far; growing and
    the final trim use ``ndarray.resize`` (``realloc``), which rarely copies."""

    def __init__(self, dim: int, dtype: np.dtype):
        self.array = np.empty((0, dim), dtype=dtype)
        self.size = 0

    def append(self, rows: np.ndarray, expected_total: int) -> None:
        need = self.size + len(rows)
        if need > len(self.array):
            capacity = max(need, int(expected_total * 1.02), len(self.array) * 3 // 2)
            self.array.resize((capacity, self.array.shape[1]), refcheck=False)
        self.array[self.size : need] = rows
        self.size = need

    def finish(self) -> np.ndarray:
        self.array.resize((self.size, self.array.shape[1]), refcheck=False)
        return self.array


def read_arrays(path: str | os.PathLike, streams: Mapping[str, StreamDef], **options) -> CTFArrays:
    """Every sample of the file as one array per stream (fastest; see ``CTFArrays``).

    Same options as ``read`` plus ``dtype`` for dense streams, one for all or ``{name: dtype}``
    (``np.uint8`` checks that every value is an integer in 0-255 and stores images at a quarter
    of the float32 size).
    """
    streams = check_streams(streams)
    dtypes = resolve_dtypes(streams, options.get("dtype", np.float32))
    file_size = max(os.path.getsize(path), 1)
    dense = {n: _RowBuffer(d.shape, dtypes[n]) for n, d in streams.items() if not d.is_sparse}
    sparse_parts: dict[str, list[sparse.csr_matrix]] = {n: [] for n, d in streams.items() if d.is_sparse}
    offsets: dict[str, list[np.ndarray]] = {n: [np.zeros(1, dtype=np.int64)] for n in streams}
    sample_lines: dict[str, list[np.ndarray]] = {n: [] for n in streams}
    ids, lines = [], []
    for chunk in iter_arrays(path, streams, **options):
        for name, value in chunk.data.items():
            base = offsets[name][-1][-1]
            if name in dense:
                rows_so_far = base + len(value)
                dense[name].append(value, rows_so_far * file_size // max(chunk.end_offset, 1))
            else:
                sparse_parts[name].append(value)
            offsets[name].append(chunk.offsets[name][1:] + base)
            sample_lines[name].append(chunk.sample_lines[name])
        ids.append(chunk.ids)
        lines.append(chunk.lines)
    data: dict[str, StreamData] = {}
    for name, definition in streams.items():
        if name in dense:
            data[name] = dense[name].finish()
        elif sparse_parts[name]:
            data[name] = sparse.vstack(sparse_parts[name], format="csr")
        else:
            data[name] = sparse.csr_matrix((0, definition.shape), dtype=np.float32)
    empty = np.zeros(0, dtype=np.int64)
    return CTFArrays(
        str(path),
        np.concatenate([empty, *ids]),
        np.concatenate([empty, *lines]),
        data,
        {name: np.concatenate(parts) for name, parts in offsets.items()},
        {name: np.concatenate([empty, *parts]) for name, parts in sample_lines.items()},
        end_offset=file_size,
    )
