"""Class names as plots show them: long numeric labels shortened, everything else as written.

Label files often hold numbers as class names (defect probabilities such as
``0.3333333333333333``). The files, metrics.json and reports keep the name exactly as written;
only plots, where a 18-character tick label overlaps its neighbours, show ``0.3333…``.
"""

from __future__ import annotations

from collections.abc import Sequence

MAX_PLOT_CHARS = 14
SHORT_NUMBER_CHARS = 8  # numbers this short are shown as written


def short_label(name: str, max_chars: int = MAX_PLOT_CHARS) -> str:
    """``name`` for a plot: numbers keep 4 significant digits (plus ``…`` if cut), long text is cut."""
    text = str(name)
    try:
        value = float(text)
    except ValueError:
        value = None
    if value is not None and text.strip().lower() not in ("nan", "inf", "-inf", "infinity"):
        short = f"{value:.4g}"
        return text if len(text) <= SHORT_NUMBER_CHARS or len(text) <= len(short) else f"{short}…"
    return text if len(text) <= max_chars else text[: max_chars - 1] + "…"


def plot_labels(class_names: Sequence[str]) -> list[str]:
    """Short labels for plots, made unique again if shortening merged two names."""
    labels = [short_label(n) for n in class_names]
    if len(set(labels)) != len(labels):
        return [str(n) for n in class_names]
    return labels
