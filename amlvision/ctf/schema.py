"""The vocabulary of the CTF reader and writer: stream definitions, sequences and errors."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
from scipy import sparse

StreamData = np.ndarray | sparse.csr_matrix


class CTFError(ValueError):
    """Malformed CTF input; the message names the file, the line and, where useful, the column."""


def where(path: object, line: int, column: int | None = None) -> str:
    """``file:line[:column]`` as compilers print it, so editors can jump to the spot."""
    return f"{path}:{line}" + (f":{column}" if column is not None else "")


@dataclass(frozen=True)
class StreamDef:
    """One input stream of a CTF file, as CNTK's ``StreamDef(field=..., shape=..., is_sparse=...)``.

    ``field`` is the alias written after ``|`` in the file; ``shape`` the sample dimension (the
    BrainScript ``dim``); ``is_sparse`` selects ``index:value`` samples (BrainScript
    ``format = "sparse"``) instead of ``shape`` plain values.
    """

    field: str
    shape: int
    is_sparse: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.field, str) or not self.field:
            raise ValueError(f"StreamDef.field must be a non-empty alias, got {self.field!r}")
        if any(c in self.field for c in " \t\r\n|") or self.field.startswith("#"):
            raise ValueError(f"StreamDef.field {self.field!r} cannot hold whitespace or '|' or start with '#'")
        if isinstance(self.shape, bool) or not isinstance(self.shape, int | np.integer) or self.shape <= 0:
            raise ValueError(f"StreamDef.shape must be a positive int (the sample dimension), got {self.shape!r}")


def check_streams(streams: Mapping[str, StreamDef]) -> dict[str, StreamDef]:
    """Validate a ``name -> StreamDef`` mapping: at least one stream, distinct aliases."""
    if not streams:
        raise ValueError("streams must define at least one stream (name -> StreamDef)")
    seen: dict[str, str] = {}
    for name, definition in streams.items():
        if not isinstance(definition, StreamDef):
            raise TypeError(f"stream {name!r}: expected a StreamDef, got {type(definition).__name__}")
        if definition.field in seen:
            raise ValueError(f"streams {seen[definition.field]!r} and {name!r} share the alias {definition.field!r}")
        seen[definition.field] = name
    return dict(streams)


@dataclass(frozen=True)
class Sequence:
    """One CTF sequence: ``data`` maps each stream name to its samples.

    Dense streams are arrays of shape ``(samples, dim)``; sparse streams are
    ``scipy.sparse.csr_matrix`` of shape ``(samples, dim)``; both of the read's ``dtype``
    (``float32`` unless asked otherwise). ``id`` is the sequence id written in
    the file, or the 0-based line number for files without ids (CNTK's rule); ``line`` is the
    1-based line number where the sequence starts.
    """

    id: int
    line: int
    data: dict[str, StreamData] = field(default_factory=dict)

    def __getitem__(self, name: str) -> StreamData:
        return self.data[name]

    def __len__(self) -> int:
        """Samples in the longest stream (streams may differ in length)."""
        return max((value.shape[0] for value in self.data.values()), default=0)
