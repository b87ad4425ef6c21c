"""CNTK ImageDeserializer map files and the OpenCV XML mean file of CNTK's ``mean`` transform.

Map file (one sample per line, tab-separated, as CNTK's ImageDeserializer reads it)::

    train/cat/0001.png<TAB>3

An optional leading sequence-key column (``key<TAB>path<TAB>label``) is accepted too. Labels are
0-based class indexes. Relative paths resolve against the map file's folder, so a packed map
directory can be moved as a whole. Class names, which the map file cannot hold, live in
``class_names.txt`` beside it (one per line, index order) when amlvision writes one.

Mean file: CNTK's MeanTransformer reads it with ``cv::FileStorage`` and reshapes ``MeanImg`` to
``Row x Col`` with ``Channel`` interleaved channels, then subtracts it from the image that OpenCV
decoded — so the data is **HWC in BGR order**. (CNTK's CIFAR-10 example scripts accumulate the
mean in CHW RGB order and write that; CNTK still reads it as HWC BGR. We write what the reader
means.) ``read_mean_file`` returns ``H x W x C`` float32 in RGB, our pixel order.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from amlvision.data.collection import LabeledImages

CLASS_NAMES_FILE = "class_names.txt"


class MapFileError(ValueError):
    """A map or mean file is malformed; the message names the file and line."""


def read_class_names(path: str | Path) -> list[str]:
    return [line.rstrip("\r\n") for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]


def write_class_names(path: str | Path, class_names: list[str]) -> None:
    bad = [name for name in class_names if "\n" in name or "\r" in name or not name.strip()]
    if bad:
        raise ValueError(f"class names cannot be empty or contain line breaks: {bad}")
    Path(path).write_text("".join(f"{name}\n" for name in class_names), encoding="utf-8")


def looks_like_map_file(path: str | Path) -> bool:
    """True when the first non-blank line is ``path<TAB>integer`` (optionally with a key column)."""
    try:
        with open(path, encoding="utf-8-sig") as fh:
            for line in fh:
                if line.strip():
                    cells = line.rstrip("\r\n").split("\t")
                    return len(cells) in (2, 3) and cells[-1].strip().isdigit()
    except (OSError, UnicodeDecodeError):
        return False
    return False


def read_map_file(
    path: str | Path, *, class_names: list[str] | None = None, skip_bad: bool = False, check_files: bool = True
) -> LabeledImages:
    """Read a CNTK map file; every error names ``file:line``."""
    path = Path(path)
    folder = path.parent
    paths: list[Path] = []
    labels: list[int] = []
    sources: list[str] = []
    skipped: list[tuple[str, str]] = []

    def bad(where: str, reason: str) -> None:
        if not skip_bad:
            raise MapFileError(f"{where}: {reason}")
        skipped.append((where, reason))

    with open(path, encoding="utf-8-sig") as fh:
        for number, line in enumerate(fh, start=1):
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            where = f"{path}:{number}"
            cells = line.split("\t")
            if len(cells) not in (2, 3):
                bad(where, f"expected 'path<TAB>label' (or 'key<TAB>path<TAB>label'), found {len(cells)} field(s)")
                continue
            name, label_text = cells[-2].strip(), cells[-1].strip()
            if not label_text.isdigit():
                bad(where, f"label {label_text!r} is not a non-negative integer class index")
                continue
            image = Path(name) if os.path.isabs(name) else folder / name
            if check_files and not image.is_file():
                bad(where, f"image file {image} not found")
                continue
            paths.append(image)
            labels.append(int(label_text))
            sources.append(where)
    if class_names is None:
        names_file = folder / CLASS_NAMES_FILE
        if names_file.is_file():
            class_names = read_class_names(names_file)
        else:
            class_names = [str(i) for i in range(max(labels, default=-1) + 1)]
    keep = [i for i, label in enumerate(labels) if label < len(class_names)]
    for i in sorted(set(range(len(labels))) - set(keep)):
        bad(sources[i], f"label {labels[i]} is outside the {len(class_names)} classes {class_names}")
    return LabeledImages(
        class_names=list(class_names),
        labels=np.asarray([labels[i] for i in keep], dtype=np.int64),
        paths=[paths[i] for i in keep],
        sources=[sources[i] for i in keep],
        skipped=skipped,
        origin=str(path),
    )


def write_map_file(path: str | Path, entries: list[tuple[str, int]]) -> None:
    """Write ``(relative_path, label)`` rows; paths must not contain tabs or line breaks."""
    with open(path, "w", encoding="utf-8", newline="\n") as fh:
        for name, label in entries:
            if any(c in name for c in "\t\r\n"):
                raise MapFileError(f"{name!r}: a map-file path cannot contain tabs or line breaks")
            fh.write(f"{name}\t{int(label)}\n")


def write_mean_file(path: str | Path, mean_rgb: np.ndarray) -> None:
    """Write an ``H x W x C`` mean image (RGB or gray, pixel units) as CNTK's OpenCV XML mean file."""
    mean = np.asarray(mean_rgb, dtype=np.float32)
    if mean.ndim != 3 or mean.shape[2] not in (1, 3):
        raise ValueError(f"mean image must be H x W x 1 or H x W x 3, got {mean.shape}")
    h, w, c = mean.shape
    bgr = mean[:, :, ::-1] if c == 3 else mean
    values = " ".join(f"{v:.9g}" for v in bgr.reshape(-1).tolist())
    Path(path).write_text(
        '<?xml version="1.0"?>\n'
        "<opencv_storage>\n"
        f"  <Channel>{c}</Channel>\n"
        f"  <Row>{h}</Row>\n"
        f"  <Col>{w}</Col>\n"
        '  <MeanImg type_id="opencv-matrix">\n'
        "    <rows>1</rows>\n"
        f"    <cols>{h * w * c}</cols>\n"
        "    <dt>f</dt>\n"
        f"    <data>{values}</data>\n"
        "  </MeanImg>\n"
        "</opencv_storage>\n",
        encoding="utf-8",
    )


def _int(root: ET.Element, tag: str, path: Path) -> int:
    node = root.find(tag)
    if node is None or node.text is None or not node.text.strip().isdigit():
        raise MapFileError(f"{path}: missing or non-integer <{tag}>")
    return int(node.text)


def read_mean_file(path: str | Path) -> np.ndarray:
    """Read a CNTK/OpenCV XML mean file as ``H x W x C`` float32, RGB order (checks it as CNTK does)."""
    path = Path(path)
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        raise MapFileError(f"{path}: not valid XML ({exc})") from exc
    if root.tag != "opencv_storage":
        raise MapFileError(f"{path}: root element is <{root.tag}>, expected <opencv_storage>")
    channels, rows, cols = (_int(root, tag, path) for tag in ("Channel", "Row", "Col"))
    matrix = root.find("MeanImg")
    if matrix is None:
        raise MapFileError(f"{path}: no <MeanImg> element")
    m_rows, m_cols = _int(matrix, "rows", path), _int(matrix, "cols", path)
    dt = (matrix.findtext("dt") or "").strip()
    if dt not in ("f", "d", f"{channels}f", f"{channels}d"):
        raise MapFileError(f"{path}: <dt>{dt}</dt> is not a float matrix type")
    m_channels = int(dt[:-1]) if len(dt) > 1 else 1
    try:
        data = np.array((matrix.findtext("data") or "").split(), dtype=np.float64)
    except ValueError as exc:
        raise MapFileError(f"{path}: <data> holds a non-number ({exc})") from exc
    if channels * rows * cols != m_rows * m_cols * m_channels or data.size != m_rows * m_cols * m_channels:
        raise MapFileError(
            f"{path}: Channel*Row*Col = {channels * rows * cols} but MeanImg holds {m_rows}x{m_cols}x{m_channels} "
            f"= {m_rows * m_cols * m_channels} values ({data.size} in <data>)"
        )
    image = data.astype(np.float32).reshape(rows, cols, channels)
    return np.ascontiguousarray(image[:, :, ::-1] if channels == 3 else image)
