"""Moved to ``amlvision.formats.packed`` (the formats layer); this name stays for code written against it."""

from amlvision.formats.packed import *  # noqa: F403
from amlvision.formats.packed import FORMAT_VERSION, MANIFEST_NAME, PackedFormatError, is_packed  # noqa: F401
