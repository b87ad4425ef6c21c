"""Reading CTF files: chunked, with bulk numeric conversion, as whole arrays or per sequence."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import sparse

from amlvision.ctf.checks import check_sequences, lost_rows, sample_issues
from amlvision.ctf.errors import ErrorBudget
from amlvision.ctf.grouping import Batch, LineGrouper
from amlvision.ctf.numbers import Parsed, SegmentError, parse_dense, parse_sparse
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


class _Slow(Exception):
    """The bulk parse of a stream met a malformed sample: validate its samples one by one."""


def _parse_stream(definition: StreamDef, segments: list[bytes], pad_short_dense: bool) -> Parsed:
    """All samples of one stream of a batch in one bulk parse; raises on the first bad one."""
    if definition.is_sparse:
        return parse_sparse(segments, definition.shape)
    parsed = parse_dense(segments)
    counts = parsed.counts
    if (counts > definition.shape).any() if pad_short_dense else (counts != definition.shape).any():
        raise _Slow
    return parsed


def _dense_values(parsed: Parsed, dim: int) -> np.ndarray:
    counts = parsed.counts
    if (counts == dim).all():
        return parsed.values.reshape(-1, dim)
    # CNTK fills a short (or empty) dense sample up with zeros ("a sparse suffix")
    values = np.zeros((len(counts), dim), dtype=parsed.values.dtype)
    rows = np.repeat(np.arange(len(counts)), counts)
    starts = np.repeat(np.cumsum(counts) - counts, counts)
    values[rows, np.arange(len(rows)) - starts] = parsed.values
    return values


def _cast(
    values: np.ndarray,
    sample_of_value: np.ndarray | None,
    name: str,
    definition: StreamDef,
    batch: Batch,
    s: int,
    path: object,
    dtype: np.dtype,
) -> np.ndarray:
    """``values`` as ``dtype``; a value the dtype cannot hold is an error naming its sample.

    ``sample_of_value``: the sample (segment) of each flat value, or ``None`` for dense rows."""
    if dtype.kind == "f":
        with np.errstate(over="ignore"):  # reported below with the sample's position
            out = values.astype(dtype, copy=False)
        if values.dtype.kind != "f":  # integers of at most 15 digits: finite in any float type
            return out
        bad = ~np.isfinite(out)
        limit = f"{np.finfo(dtype).max:.6g}"
        hint = '; read it with dtype=np.float64 (CNTK precision="double")' if dtype != np.float64 else ""
        problem = f"holds a value beyond the range of {dtype.name} (|x| > {limit}){hint}"
    else:
        info = np.iinfo(dtype)
        bad = (values < info.min) | (values > info.max)
        if values.dtype.kind == "f":
            bad |= values != np.floor(values)
        out = None
        problem = f"holds values that are not integers in [{info.min}, {info.max}] as {dtype.name} requires"
    if bad.any():
        flat = int(np.argmax(bad.ravel()))
        i = flat // values.shape[1] if sample_of_value is None else int(sample_of_value[flat])
        raise CTFError(
            f"{where(path, batch.seg_lines[s][i], batch.seg_cols[s][i])}: input {definition.field!r} "
            f"(stream {name!r}) {problem}"
        )
    return out if out is not None else values.astype(dtype)


def _stream_data(
    parsed: Parsed, name: str, definition: StreamDef, batch: Batch, s: int, path: object, dtype: np.dtype
) -> StreamData:
    if not definition.is_sparse:
        return _cast(_dense_values(parsed, definition.shape), None, name, definition, batch, s, path, dtype)
    indptr = np.zeros(len(parsed.counts) + 1, dtype=np.int64)
    np.cumsum(parsed.counts, out=indptr[1:])
    sample = np.repeat(np.arange(len(parsed.counts)), parsed.counts)
    values = _cast(parsed.values[:, None], sample, name, definition, batch, s, path, dtype)[:, 0]
    return sparse.csr_matrix((values, parsed.indices, indptr), shape=(len(parsed.counts), definition.shape))


def _convert(
    batch: Batch,
    streams: dict[str, StreamDef],
    path: object,
    dtypes: dict[str, np.dtype],
    pad_short_dense: bool,
    strict: bool,
    budget: ErrorBudget,
) -> CTFArrays:
    parsed: list[Parsed | None] = []
    masks: list[np.ndarray | None] = []
    issues = list(batch.issues)
    for s, (name, definition) in enumerate(streams.items()):
        try:
            parsed.append(_parse_stream(definition, batch.segments[s], pad_short_dense))
            masks.append(None)
        except (SegmentError, _Slow):
            mask, found = sample_issues(name, definition, batch, s, pad_short_dense)
            parsed.append(None)
            masks.append(mask)
            issues += found
    if strict and any(m is not None for m in masks):
        issues += lost_rows(batch, masks)
    drop, found = check_sequences(batch, streams, masks, strict, path)
    budget.add_all(issues + found)
    if drop.any() or any(m is not None for m in masks):
        batch = batch.select(
            ~drop,
            [np.ones(len(seg), dtype=bool) if m is None else m for seg, m in zip(batch.segments, masks, strict=True)],
        )
        parsed = [_parse_stream(d, batch.segments[s], pad_short_dense) for s, d in enumerate(streams.values())]
    data, offsets, sample_lines = {}, {}, {}
    for s, (name, definition) in enumerate(streams.items()):
        data[name] = _stream_data(parsed[s], name, definition, batch, s, path, dtypes[name])
        per_sequence = np.bincount(np.asarray(batch.seg_seqs[s], dtype=np.int64), minlength=len(batch.ids))
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
    """One dtype per stream: ``dtype`` for all, or a ``{name: dtype}`` mapping (float32 default)."""
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
    pad_short_dense: bool | None = None,
    strict: bool = False,
    max_errors: int = 0,
    rank: int = 0,
    world_size: int = 1,
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
) -> Iterator[CTFArrays]:
    """``CTFArrays`` for consecutive groups of whole sequences, reading about ``chunk_bytes`` at a time.

    Options are those of ``read``."""
    streams = check_streams(streams)
    dtypes = resolve_dtypes(streams, dtype)
    if isinstance(world_size, bool) or not isinstance(world_size, int) or world_size < 1:
        raise ValueError(f"world_size must be a positive int, got {world_size!r}")
    if isinstance(rank, bool) or not isinstance(rank, int) or not 0 <= rank < world_size:
        raise ValueError(f"rank {rank!r} is not within world_size {world_size}")
    pad = strict if pad_short_dense is None else bool(pad_short_dense)
    path = Path(path)
    budget = ErrorBudget(path, max_errors)
    grouper = LineGrouper(path, [d.field for d in streams.values()], unknown_alias, skip_sequence_ids, strict)
    offset, position, fed = 0, 0, False
    chunks = _line_chunks(path, chunk_bytes)
    while True:
        piece = next(chunks, None)
        if piece is None and strict and not fed:
            raise CTFError(f"{path}: the file is empty (CNTK: Input file is empty)")
        if piece is not None:
            fed = True
            lines, first_line, offset = piece
            grouper.feed(lines, first_line)
        batch = grouper.take(final=piece is None)
        if world_size > 1:  # CNTK numSubsets: sequence number i of the file belongs to rank i % world_size
            positions = np.arange(position, position + len(batch.ids))
            position += len(batch.ids)
            batch = batch.select(positions % world_size == rank)
        if batch.ids or batch.issues:
            chunk = _convert(batch, streams, path, dtypes, pad, strict, budget)
            chunk.end_offset = offset
            if len(chunk):
                yield chunk
        if piece is None:
            return


def iter_sequences(path: str | os.PathLike, streams: Mapping[str, StreamDef], **options) -> Iterator[Sequence]:
    """Stream the sequences of a CTF file without holding the file in memory (see ``read``)."""
    for chunk in iter_arrays(path, streams, **options):
        yield from chunk.sequences()


def read(path: str | os.PathLike, streams: Mapping[str, StreamDef], **options) -> list[Sequence]:
    """Read every sequence of the CTF file ``path``.

    ``streams`` maps your stream names to ``StreamDef(field=alias, shape=dim, is_sparse=...)``.
    Returns a list of ``Sequence`` (``.id``, ``.line``, ``.data[name]``: ``(samples, dim)``
    array or ``csr_matrix`` of ``dtype``). Options (docs/ctf.md has the CNTK equivalents):

    * ``dtype=np.float32``: one dtype for every stream or ``{name: dtype}``; ``np.float64`` keeps
      every number of the file exactly (CNTK ``precision="double"``); a value beyond the range
      of the dtype, and for integer dtypes a non-integer, is a ``CTFError`` naming its position.
    * ``max_errors=0`` (CNTK ``maxErrors``): skip up to N malformed samples/lines, logging a
      warning naming ``file:line:column`` for each; the (N+1)-th raises.
    * ``strict=False``: ``True`` accepts and rejects exactly what CNTK's parser does (blank and
      sample-less lines are errors, short dense samples are zero-filled, an input may repeat on
      a line).
    * ``pad_short_dense=None`` (= ``strict``): zero-fill a dense sample with fewer than ``dim``
      values (CNTK) instead of rejecting it.
    * ``rank=0, world_size=1`` (CNTK ``numSubsets`` partitioning): only sequences number
      ``i`` with ``i % world_size == rank``.
    * ``unknown_alias="ignore"`` (CNTK) or ``"error"``; ``skip_sequence_ids=False`` (CNTK
      ``skipSequenceIds``: every line is a sequence); ``chunk_bytes``.

    Raises ``CTFError`` naming file, line and column for malformed input.
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

    Same options as ``read``; ``dtype={"features": np.uint8}`` checks that every value is an
    integer in 0-255 and stores images at a quarter of the float32 size.
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
            data[name] = sparse.csr_matrix((0, definition.shape), dtype=dtypes[name])
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
