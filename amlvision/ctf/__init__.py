"""CNTK Text Format (CTF): a reader faithful to CNTK's CNTKTextFormatReader, and fast writers.

Public API: ``read``, ``iter_sequences``, ``read_arrays``, ``write``, ``write_images``,
``StreamDef``, ``Sequence``, ``CTFArrays``, ``CTFError``. See docs/ctf.md.
"""

from amlvision.ctf.reader import CTFArrays, iter_arrays, iter_sequences, read, read_arrays
from amlvision.ctf.schema import CTFError, Sequence, StreamDef
from amlvision.ctf.writer import write, write_images

__all__ = [
    "CTFArrays",
    "CTFError",
    "Sequence",
    "StreamDef",
    "iter_arrays",
    "iter_sequences",
    "read",
    "read_arrays",
    "write",
    "write_images",
]
