"""Pictures of data, transforms and training runs, for notebooks and reports.

Every function returns a ``matplotlib.figure.Figure`` built without ``pyplot``: no global figure
state, no GUI backend, so the same call works in a notebook (the figure is the cell's value), in a
script (``fig.savefig(path)``) and in worker threads. Float images whose values lie in 0..255
(minibatch features, a ``color`` transform's output) are drawn as pixels; others (after a CNTK
``mean`` transform) with their own min..max stretched to black..white, because their values are
no longer pixels.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from amlvision.data.collection import LabeledImages, convert_array
from amlvision.transforms.pipeline import TransformPipeline, TransformsConfig


def displayable(image: np.ndarray | Any) -> np.ndarray:
    """``H x W x C`` (or ``C x H x W`` tensor) -> ``H x W x C`` uint8 for drawing.

    uint8 stays as it is; values within 0..255 are rounded; anything else is stretched from its
    min..max to 0..255 (a constant image becomes mid gray), so mean-subtracted pixels remain visible.
    """
    array = np.asarray(image.detach().cpu() if hasattr(image, "detach") else image)
    if array.ndim == 3 and array.shape[0] in (1, 3) and array.shape[2] not in (1, 3):
        array = array.transpose(1, 2, 0)  # C x H x W -> H x W x C
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3 or array.shape[2] not in (1, 3):
        raise ValueError(f"expected an H x W x C image with 1 or 3 channels, got shape {array.shape}")
    if array.dtype == np.uint8:
        return array
    array = array.astype(np.float64)
    if array.size and array.min() >= 0.0 and array.max() <= 255.0:
        return np.round(array).astype(np.uint8)
    low, high = float(array.min()), float(array.max())
    if high - low < 1e-12:
        return np.full(array.shape, 128, dtype=np.uint8)
    return np.round((array - low) * (255.0 / (high - low))).astype(np.uint8)


def _draw(ax, image: np.ndarray) -> None:
    pixels = displayable(image)
    gray = pixels.shape[2] == 1
    ax.imshow(pixels[:, :, 0] if gray else pixels, cmap="gray" if gray else None, vmin=0, vmax=255)
    ax.set_xticks([])
    ax.set_yticks([])


def image_grid(
    images: Sequence[np.ndarray],
    titles: Sequence[str] | None = None,
    *,
    cols: int = 8,
    cell_inches: float = 1.3,
    title: str | None = None,
) -> Figure:
    """Images in rows of ``cols``, each with an optional title (e.g. ``true -> predicted``)."""
    if not len(images):
        raise ValueError("image_grid needs at least one image")
    if titles is not None and len(titles) != len(images):
        raise ValueError(f"{len(titles)} titles for {len(images)} images")
    cols = max(1, min(cols, len(images)))
    rows = -(-len(images) // cols)
    fig = Figure(figsize=(cols * cell_inches, rows * (cell_inches + (0.3 if titles else 0.0)) + 0.4), dpi=100)
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for i, (ax, image) in enumerate(zip(axes.flat, images, strict=False)):
        ax.axis("on")
        _draw(ax, image)
        if titles is not None:
            ax.set_title(titles[i], fontsize=7)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def class_samples(images: LabeledImages, per_class: int = 8, *, channels: int = 3) -> Figure:
    """One row per class with its first ``per_class`` images (in the collection's order)."""
    if per_class < 1:
        raise ValueError(f"per_class must be at least 1, got {per_class}")
    k = len(images.class_names)
    fig = Figure(figsize=(1.0 + per_class * 1.0, 0.3 + k * 1.0), dpi=100)
    axes = fig.subplots(k, per_class, squeeze=False)
    for row, name in enumerate(images.class_names):
        members = np.flatnonzero(images.labels == row)[:per_class]
        for col in range(per_class):
            ax = axes[row, col]
            if col < len(members):
                _draw(ax, images.load(int(members[col]), channels))
            else:
                ax.axis("off")
        axes[row, 0].axis("on")
        axes[row, 0].set_xticks([])
        axes[row, 0].set_yticks([])
        axes[row, 0].set_ylabel(f"{name}\n({int((images.labels == row).sum())})", rotation=0, ha="right", va="center")
    fig.suptitle(f"{len(images)} images, {per_class} per class shown")
    fig.tight_layout()
    return fig


def _after_title(label: str, output: np.ndarray) -> str:
    """``after (H, W)``, plus the value range when the output is no longer 0..255 pixels."""
    title = f"after {label} {tuple(output.shape[1:])}".replace("  ", " ")
    low, high = float(output.min()), float(output.max())
    if low < 0.0 or high > 255.0:
        title += f"\n{low:.0f}..{high:.0f}"
    return title


def transform_gallery(
    image: np.ndarray, transforms: Mapping[str, TransformsConfig], *, seed: int = 0, draws: int = 1
) -> Figure:
    """Before/after: the original ``H x W x C`` uint8 image, then each named transform list applied to it.

    Each row is one entry of ``transforms`` (a CNTK transform list as ``build_transforms`` reads it);
    random transforms show ``draws`` columns (seeds ``seed``, ``seed + 1``, ...), deterministic ones
    one, and a ``multiview10`` crop its ten views. The image is first converted to the channel count
    a ``scale`` transform asks for, as ``ImageSource`` decodes it. Titles give the output size, and
    the value range where it is no longer 0..255 (after ``mean``).
    """
    if not transforms:
        raise ValueError("transform_gallery needs at least one transform list")
    rows: list[tuple[str, np.ndarray, list[np.ndarray], list[str]]] = []
    for name, config in transforms.items():
        pipeline = TransformPipeline(config)
        source = convert_array(image, pipeline.channels) if pipeline.channels else image
        if pipeline.views > 1:
            outputs = [pipeline(source, random.Random(seed), view) for view in range(pipeline.views)]
            labels = [f"view {v}" for v in range(pipeline.views)]
        else:
            outputs = [pipeline(source, random.Random(seed + d)) for d in range(draws)]
            labels = [f"draw {d}" for d in range(draws)]
            if all(torch.equal(outputs[0], out) for out in outputs[1:]):  # deterministic: one is enough
                outputs, labels = outputs[:1], [""]
        arrays = [out.numpy() for out in outputs]
        rows.append((name, source, arrays, [_after_title(lab, a) for lab, a in zip(labels, arrays, strict=True)]))
    cols = 1 + max(len(outputs) for _, _, outputs, _ in rows)
    fig = Figure(figsize=(1.2 + cols * 1.3, len(rows) * 1.7 + 0.4), dpi=100)
    axes = fig.subplots(len(rows), cols, squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for r, (name, source, outputs, titles) in enumerate(rows):
        axes[r, 0].axis("on")
        _draw(axes[r, 0], source)
        axes[r, 0].set_title(f"before {source.shape[0]}x{source.shape[1]}", fontsize=7)
        axes[r, 0].set_ylabel(name, rotation=0, ha="right", va="center", fontsize=8)
        for c, (out, title) in enumerate(zip(outputs, titles, strict=True), start=1):
            axes[r, c].axis("on")
            _draw(axes[r, c], out)
            axes[r, c].set_title(title, fontsize=7)
    fig.suptitle("CNTK transforms: before / after")
    fig.tight_layout()
    return fig


def training_curves(history: Mapping[str, Sequence[float]], *, x: str = "step") -> Figure:
    """Loss and accuracy per epoch from a run's logged metrics (``tracking.metric_history``)."""
    if x not in history or not len(history[x]):
        raise ValueError(f"history has no {x!r} column; columns: {sorted(history)}")
    panels = [("loss", ["loss", "val_loss"]), ("accuracy", ["accuracy", "val_accuracy"])]
    fig = Figure(figsize=(9, 3.2), dpi=100)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (label, keys) in zip(axes, panels, strict=True):
        for key in keys:
            if key in history:
                ax.plot(history[x], history[key], marker="o", label=key)
        ax.set_xlabel("epoch" if x == "step" else x)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle("training run (logged metrics)")
    fig.tight_layout()
    return fig


def boxes_figure(
    image: np.ndarray,
    boxes: np.ndarray,
    labels: Sequence[int],
    class_names: Sequence[str],
    *,
    title: str | None = None,
    inches: float = 6.0,
) -> Figure:
    """An image with its ``x1, y1, x2, y2`` pixel boxes outlined and named, one colour per class."""
    from matplotlib import colormaps
    from matplotlib.patches import Rectangle

    pixels = displayable(image)
    height, width = pixels.shape[:2]
    fig = Figure(figsize=(inches, inches * height / max(1, width) + 0.4), dpi=100)
    ax = fig.subplots()
    _draw(ax, pixels)
    colours = colormaps["tab20"]
    for box, label in zip(np.asarray(boxes).reshape(-1, 4), labels, strict=True):
        x1, y1, x2, y2 = (float(v) for v in box)
        colour = colours(int(label) % 20)
        ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, edgecolor=colour, linewidth=1.5))
        ax.text(x1, y1, class_names[int(label)], fontsize=7, color="white", va="bottom",
                bbox={"facecolor": colour, "pad": 1, "linewidth": 0})  # fmt: skip
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig
