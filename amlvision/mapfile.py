"""Moved to ``amlvision.formats.mapfile`` and ``amlvision.formats.meanxml``; this name stays for older code."""

from amlvision.formats.mapfile import *  # noqa: F403
from amlvision.formats.mapfile import CLASS_NAMES_FILE, MapFileError  # noqa: F401
from amlvision.formats.meanxml import read_mean_file, write_mean_file  # noqa: F401
