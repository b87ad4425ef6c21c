"""Image decoding: every format and mode the data layer accepts, and the channel rule, on real CIFAR-10 pixels."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from amlvision.data.images import ImageReadError, decode, load_image


@pytest.fixture(scope="module")
def rgb(cifar_subset: Path) -> np.ndarray:
    """One real 32x32 RGB CIFAR-10 image."""
    path = sorted((cifar_subset / "train" / "cat").glob("*.png"))[0]
    return np.asarray(Image.open(path).convert("RGB"))


@pytest.fixture(scope="module")
def gray(rgb: np.ndarray) -> np.ndarray:
    return np.asarray(Image.fromarray(rgb).convert("L"))


def _png16_rgb(path: Path, pixels: np.ndarray) -> None:
    """A 16-bit-per-channel RGB PNG (Pillow cannot write one), encoded by the PNG spec."""
    h, w, _ = pixels.shape
    raw = b"".join(b"\x00" + pixels[y].astype(">u2").tobytes() for y in range(h))

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
    )


def test_png_8bit_rgb_is_pixel_exact(cifar_subset: Path, rgb: np.ndarray) -> None:
    path = sorted((cifar_subset / "train" / "cat").glob("*.png"))[0]
    out = load_image(path)
    assert out.dtype == np.uint8 and out.shape == (32, 32, 3)
    np.testing.assert_array_equal(out, rgb)


def test_png_16bit_gray_scales_by_257(tmp_path: Path, gray: np.ndarray) -> None:
    path = tmp_path / "g16.png"
    Image.fromarray(gray.astype(np.uint16) * 257).save(path)
    assert Image.open(path).mode.startswith("I")
    np.testing.assert_array_equal(load_image(path, channels=1)[:, :, 0], gray)
    three = load_image(path, channels=3)
    for c in range(3):
        np.testing.assert_array_equal(three[:, :, c], gray)


def test_png_16bit_rgb(tmp_path: Path, rgb: np.ndarray) -> None:
    path = tmp_path / "rgb16.png"
    _png16_rgb(path, rgb.astype(np.uint16) * 257)
    np.testing.assert_array_equal(load_image(path), rgb)


def test_jpeg_decodes_like_pillow(tmp_path: Path, rgb: np.ndarray) -> None:
    path = tmp_path / "a.jpg"
    Image.fromarray(rgb).save(path, quality=95)
    out = load_image(path)
    np.testing.assert_array_equal(out, np.asarray(Image.open(path).convert("RGB")))
    assert np.abs(out.astype(int) - rgb).mean() < 4  # a JPEG of the same picture


def test_jpeg_exif_orientation_is_applied(tmp_path: Path, rgb: np.ndarray) -> None:
    wide = np.concatenate([rgb, rgb[:, :16]], axis=1)  # 32 x 48: rotation visibly swaps the sides
    path = tmp_path / "rotated.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    Image.fromarray(wide).save(path, exif=exif, quality=95)
    stored = np.asarray(Image.open(path).convert("RGB"))  # as stored, orientation ignored
    out = load_image(path)
    assert stored.shape == (32, 48, 3) and out.shape == (48, 32, 3)
    np.testing.assert_array_equal(out, np.rot90(stored, k=-1))


def test_tiff_8bit_and_16bit(tmp_path: Path, rgb: np.ndarray, gray: np.ndarray) -> None:
    Image.fromarray(rgb).save(tmp_path / "rgb.tif")
    np.testing.assert_array_equal(load_image(tmp_path / "rgb.tif"), rgb)
    Image.fromarray(gray.astype(np.uint16) * 257).save(tmp_path / "g16.tif")
    np.testing.assert_array_equal(load_image(tmp_path / "g16.tif", channels=1)[:, :, 0], gray)


def test_multipage_tiff_uses_first_page(tmp_path: Path, rgb: np.ndarray) -> None:
    path = tmp_path / "pages.tif"
    pages = [Image.fromarray(rgb), Image.fromarray(255 - rgb), Image.fromarray(rgb[::-1])]
    pages[0].save(path, save_all=True, append_images=pages[1:])
    assert getattr(Image.open(path), "n_frames", 1) == 3
    np.testing.assert_array_equal(load_image(path), rgb)


def test_bmp(tmp_path: Path, rgb: np.ndarray) -> None:
    Image.fromarray(rgb).save(tmp_path / "a.bmp")
    np.testing.assert_array_equal(load_image(tmp_path / "a.bmp"), rgb)


def test_palette_expands_through_palette(tmp_path: Path, rgb: np.ndarray) -> None:
    pal = Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE, colors=64)
    pal.save(tmp_path / "p.png")
    assert Image.open(tmp_path / "p.png").mode == "P"
    np.testing.assert_array_equal(load_image(tmp_path / "p.png"), np.asarray(pal.convert("RGB")))


def test_palette_transparency_composites_on_black(tmp_path: Path, rgb: np.ndarray) -> None:
    pal = Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE, colors=64)
    index = pal.getpixel((0, 0))
    pal.info["transparency"] = index
    pal.save(tmp_path / "pt.png", transparency=index)
    out = load_image(tmp_path / "pt.png")
    idx = np.asarray(pal)
    assert (out[idx == index] == 0).all()
    np.testing.assert_array_equal(out[idx != index], np.asarray(pal.convert("RGB"))[idx != index])


def test_rgba_alpha_composites_on_black(tmp_path: Path, rgb: np.ndarray) -> None:
    alpha = np.zeros((32, 32), np.uint8)
    alpha[:, 10:20] = 255
    alpha[:, 20:] = 128
    Image.fromarray(np.dstack([rgb, alpha]), "RGBA").save(tmp_path / "a.png")
    out = load_image(tmp_path / "a.png").astype(int)
    assert (out[:, :10] == 0).all()
    np.testing.assert_array_equal(out[:, 10:20], rgb[:, 10:20])
    assert np.abs(out[:, 20:] - rgb[:, 20:].astype(int) * 128 / 255).max() <= 1


def test_gray_alpha_and_channel_rule(tmp_path: Path, rgb: np.ndarray, gray: np.ndarray) -> None:
    Image.fromarray(np.dstack([gray, np.full_like(gray, 255)]), "LA").save(tmp_path / "la.png")
    np.testing.assert_array_equal(load_image(tmp_path / "la.png", channels=1)[:, :, 0], gray)
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    one = load_image(tmp_path / "rgb.png", channels=1)
    assert one.shape == (32, 32, 1)
    np.testing.assert_array_equal(one[:, :, 0], gray)  # ITU-R 601-2 luma, as Pillow's convert("L")


def test_bytes_input(rgb: np.ndarray) -> None:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="PNG")
    np.testing.assert_array_equal(load_image(buffer.getvalue()), rgb)


def test_corrupt_truncated_and_missing_files_name_the_file(tmp_path: Path, rgb: np.ndarray) -> None:
    (tmp_path / "noise.png").write_bytes(np.random.default_rng(0).integers(0, 256, 2000, dtype=np.uint8).tobytes())
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="PNG")
    (tmp_path / "half.png").write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    for name in ("noise.png", "half.png", "missing.png"):
        with pytest.raises(ImageReadError, match=name):
            load_image(tmp_path / name)


def test_oversized_image_is_refused(tmp_path: Path, rgb: np.ndarray) -> None:
    Image.fromarray(rgb).save(tmp_path / "a.png")
    with pytest.raises(ImageReadError, match=r"a\.png: .*(decompression bomb|exceeds the limit)"):
        decode(tmp_path / "a.png", max_pixels=100)


def test_png_exif_orientation_is_applied(tmp_path: Path, rgb: np.ndarray) -> None:
    wide = np.concatenate([rgb, rgb[:, :16]], axis=1)
    exif = Image.Exif()
    exif[0x0112] = 8  # "rotate 90 CCW to display"
    Image.fromarray(wide).save(tmp_path / "r.png", exif=exif)
    np.testing.assert_array_equal(load_image(tmp_path / "r.png"), np.rot90(wide, k=1))
