"""The OpenCV XML mean file of CNTK's ``mean`` transform.

CNTK's MeanTransformer reads it with ``cv::FileStorage`` and reshapes ``MeanImg`` to ``Row x Col``
with ``Channel`` interleaved channels, then subtracts it from the image that OpenCV decoded — so the
data is **HWC in BGR order**. (CNTK's CIFAR-10 example scripts accumulate the mean in CHW RGB order
and write that; CNTK still reads it as HWC BGR. We write what the reader means.) ``read_mean_file``
returns ``H x W x C`` float32 in RGB, our pixel order.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from amlvision.formats.mapfile import MapFileError

__all__ = ["MapFileError", "read_mean_file", "write_mean_file"]


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
