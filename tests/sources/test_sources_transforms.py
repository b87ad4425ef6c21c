"""CNTK transforms: deterministic ones against hand-computed pixels, random ones by their parameter ranges."""

from __future__ import annotations

import colorsys
import random

import numpy as np
import pytest
import torch

from amlvision.formats.meanxml import write_mean_file
from amlvision.transforms import TransformPipeline, build_transforms, color, crop, mean, scale

RNG = random.Random(0)


def _img(rows: list[list[int]], channels: int = 1) -> torch.Tensor:
    """A ``C x H x W`` uint8 tensor; extra channels are the first plus 100 * c."""
    base = torch.tensor(rows, dtype=torch.uint8)
    return torch.stack([base + 100 * c for c in range(channels)])


def _ramp(h: int, w: int) -> torch.Tensor:
    return torch.arange(h * w, dtype=torch.uint8).view(1, h, w)


# ------------------------------------------------------------------ crop
def test_center_crop_with_crop_size_takes_the_middle_pixels():
    image = _ramp(5, 7)
    out = crop("center", crop_size=3)(image, RNG)
    assert out[0].tolist() == [[9, 10, 11], [16, 17, 18], [23, 24, 25]]  # rows 1-3, columns 2-4
    out = crop("center", crop_size=(4, 2))(image, RNG)  # (width, height)
    assert out[0].tolist() == [[8, 9, 10, 11], [15, 16, 17, 18]]  # rows 1-2 ((5-2)//2 = 1), columns 1-4


def test_center_crop_with_side_ratio_uses_the_shorter_side():
    image = _ramp(6, 10)
    out = crop("center", side_ratio=0.5)(image, RNG)  # side = round(6 * 0.5) = 3, top 1, left 3
    assert out[0].tolist() == [[13, 14, 15], [23, 24, 25], [33, 34, 35]]


def test_multiview10_gives_corners_centre_and_their_mirrors():
    image = _ramp(6, 8)
    transform = crop("multiview10", crop_size=4)
    assert transform.views == 10
    origins = [(0, 0), (0, 4), (2, 0), (2, 4), (1, 2)]  # top-left, top-right, bottom-left, bottom-right, centre
    for view in range(10):
        top, left = origins[view % 5]
        expected = image[:, top : top + 4, left : left + 4]
        if view >= 5:
            expected = expected.flip(-1)
        assert torch.equal(transform(image, RNG, view), expected), f"view {view}"


def test_randomarea_crop_area_fraction_and_aspect_ratio_stay_in_range():
    transform = crop("randomarea", area_ratio=(0.3, 0.8), aspect_ratio=(0.5, 1.0), jitter_type="uniratio")
    rng = random.Random(1)
    fractions, aspects = [], []
    for _ in range(3000):
        h, w = transform.crop_extent(64, 64, rng)
        fractions.append(h * w / 64**2)
        aspects.append(h / w)
    fractions, aspects = np.array(fractions), np.array(aspects)
    # CNTK rounds the square's side S (+-0.5) then truncates S*sqrt(r) and S/sqrt(r) (-1 each), so the area
    # lies in [S_lo^2 - S_lo * (sqrt(0.5) + 1/sqrt(0.5)) + 1, S_hi^2] with S_lo/hi = sqrt(ratio * 64^2) -/+ 0.5.
    s_lo, s_hi = np.sqrt(0.3 * 64**2) - 0.5, np.sqrt(0.8 * 64**2) + 0.5
    lowest = (s_lo**2 - s_lo * (np.sqrt(0.5) + 1 / np.sqrt(0.5)) + 1) / 64**2
    assert fractions.min() >= lowest and fractions.max() <= s_hi**2 / 64**2
    assert fractions.min() < 0.33 and fractions.max() > 0.75, "the whole range is used"
    assert aspects.min() >= 0.5 * 0.95 and aspects.max() <= 2.0 * 1.05
    assert (aspects < 0.8).mean() > 0.2 and (aspects > 1.25).mean() > 0.2, "both orientations occur"


def test_randomside_side_range_positions_and_flips():
    transform = crop("randomside", side_ratio=(0.5, 0.9), jitter_type="uniratio")
    rng = random.Random(2)
    sides, tops = [], []
    for _ in range(2000):
        top, left, h, w = transform.crop_rect(40, 60, rng)
        assert h == w and 0 <= top <= 40 - h and 0 <= left <= 60 - w
        sides.append(h)
        tops.append(top)
    assert min(sides) == 20 and max(sides) in (35, 36)  # round(40 * [0.5, 0.9))
    image = _ramp(8, 8)
    outs = [transform(image, random.Random(k)) for k in range(400)]
    flipped = sum(1 for o in outs if o.shape[-1] > 1 and o[0, 0, 0] > o[0, 0, -1])
    assert 140 < flipped < 260, "CNTK mirrors random crops with probability 1/2"
    no_jitter = crop("randomside", side_ratio=(0.5, 0.9))
    extents = {no_jitter.crop_extent(40, 60, random.Random(k)) for k in range(50)}
    assert extents == {(20, 20)}, "jitter_type none uses the minimum ratio, as CNTK does"


def test_crop_rejects_what_cntk_rejects():
    with pytest.raises(ValueError, match="side_ratio and area_ratio cannot be specified simultaneously"):
        crop("center", side_ratio=0.5, area_ratio=0.5)
    with pytest.raises(ValueError, match="invalid area_ratio"):
        crop("randomarea", area_ratio=(0.9, 0.2))
    with pytest.raises(ValueError, match="invalid aspect_ratio"):
        crop("randomarea", area_ratio=0.5, aspect_ratio=1.5)
    with pytest.raises(ValueError, match="needs side_ratio"):
        crop("randomside")
    with pytest.raises(ValueError, match="crop_type must be one of"):
        crop("diagonal")


# ------------------------------------------------------------------ scale
def test_scale_fill_nearest_and_linear_pixels():
    image = _img([[10, 20], [30, 40]])
    out = scale(4, 4, 1, "nearest")(image, RNG)
    assert out[0].tolist() == [[10, 10, 20, 20], [10, 10, 20, 20], [30, 30, 40, 40], [30, 30, 40, 40]]
    # OpenCV INTER_LINEAR geometry: source x = (x + 0.5) * in / out - 0.5, clamped at the border.
    up = scale(4, 1, 1, "linear")(_img([[0, 255]]), RNG)
    assert up[0, 0].tolist() == [0, 64, 191, 255]  # 0, 63.75, 191.25, 255
    # Downscaling does not antialias (as cv::resize): 8 -> 2 samples x = 1.5 and 5.5 only.
    down = scale(2, 1, 1, "linear")(_img([[0, 10, 20, 30, 40, 50, 60, 70]]), RNG)
    assert down[0, 0].tolist() == [15, 55]


def test_scale_cubic_and_lanczos_keep_a_flat_image_flat():
    flat = torch.full((3, 5, 7), 123, dtype=torch.uint8)
    for interpolation in ("cubic", "lanczos"):
        out = scale(9, 4, 3, interpolation)(flat, RNG)
        assert out.shape == (3, 4, 9) and (out == 123).all()


def test_scale_crop_mode_resizes_the_shorter_side_and_crops_the_middle():
    image = _ramp(4, 8)
    out = scale(4, 4, 1, "nearest", scale_mode="crop")(image, RNG)
    assert torch.equal(out, image[:, :, 2:6])
    big = torch.arange(8 * 16, dtype=torch.uint8).view(1, 8, 16)
    out = scale(4, 4, 1, "nearest", scale_mode="crop")(big, RNG)  # 8x16 -> 4x8 (nearest: every 2nd) -> cols 2..5
    assert torch.equal(out, big[:, 0::2, 0::2][:, :, 2:6])


def test_scale_pad_mode_centres_and_pads_with_the_value_or_the_border():
    image = _img([[1, 2, 3, 4], [5, 6, 7, 8]], channels=3)
    padded = scale(4, 4, 3, "nearest", scale_mode="pad", pad_value=7)(image, RNG)
    assert (padded[:, 0] == 7).all() and (padded[:, 3] == 7).all()  # every channel, see docs/sources.md
    assert torch.equal(padded[:, 1:3], image)
    replicated = scale(4, 4, 3, "nearest", scale_mode="pad", pad_value=-1)(image, RNG)
    assert torch.equal(replicated[:, 0], image[:, 0]) and torch.equal(replicated[:, 3], image[:, 1])
    tall = _img([[1], [2], [3], [4]])  # 4x1 -> longer side 4 kept, width round(1 * 4 / 4) = 1, padded 1 + 2
    out = scale(4, 4, 1, "nearest", scale_mode="pad", pad_value=0)(tall, RNG)
    assert out[0].tolist() == [[0, 1, 0, 0], [0, 2, 0, 0], [0, 3, 0, 0], [0, 4, 0, 0]]


def test_scale_validates_parameters():
    with pytest.raises(ValueError, match="scale_mode"):
        scale(4, 4, 3, scale_mode="stretch")
    with pytest.raises(ValueError, match="pad_value"):
        scale(4, 4, 3, scale_mode="pad", pad_value=-2)
    with pytest.raises(ValueError, match="interpolations"):
        scale(4, 4, 3, interpolations="area")


# ------------------------------------------------------------------ mean
def test_mean_file_is_read_as_opencv_hwc_bgr_and_subtracted(tmp_path):
    xml = tmp_path / "mean.xml"
    xml.write_text(
        '<?xml version="1.0"?>\n<opencv_storage><Channel>3</Channel><Row>1</Row><Col>2</Col>'
        '<MeanImg type_id="opencv-matrix"><rows>1</rows><cols>6</cols><dt>f</dt>'
        "<data>1 2 3 4 5 6</data></MeanImg></opencv_storage>"
    )
    transform = mean(xml)
    # pixel (0,0) is B=1 G=2 R=3, pixel (0,1) is B=4 G=5 R=6  ->  RGB planes
    assert transform.mean_image.tolist() == [[[3.0, 6.0]], [[2.0, 5.0]], [[1.0, 4.0]]]
    image = torch.tensor([[[10, 20]], [[30, 40]], [[50, 60]]], dtype=torch.uint8)
    out = transform(image, RNG)
    assert out.dtype == torch.float32 and out.tolist() == [[[7.0, 14.0]], [[28.0, 35.0]], [[49.0, 56.0]]]
    with pytest.raises(ValueError, match="mean.xml"):
        transform(torch.zeros((3, 2, 2), dtype=torch.uint8), RNG)


def test_mean_file_written_by_the_data_layer_round_trips(tmp_path, cifar_train):
    average = cifar_train.images.astype(np.float32).mean(axis=0)  # H x W x C RGB
    write_mean_file(tmp_path / "train_mean.xml", average)
    image = torch.from_numpy(cifar_train.images[0]).permute(2, 0, 1)
    out = mean(tmp_path / "train_mean.xml")(image, RNG)
    expected = image.float() - torch.from_numpy(average).permute(2, 0, 1)
    assert torch.allclose(out, expected, atol=1e-4)


# ------------------------------------------------------------------ color
def test_brightness_and_contrast_follow_cntks_formula():
    image = _img([[0, 100], [200, 250]])  # mean 137.5
    transform = color(brightness_radius=0.5, contrast_radius=0.5)
    out = transform.apply(image, u_b=0.2, alpha=1.0, ratio=1.0)  # beta = 0.2 * 137.5 = 27.5
    assert out[0].tolist() == [[27.5, 127.5], [227.5, 255.0]]
    out = transform.apply(image, u_b=0.0, alpha=1.5, ratio=1.0)
    assert out[0].tolist() == [[0.0, 150.0], [255.0, 255.0]]
    out = transform.apply(image, u_b=-0.4, alpha=0.5, ratio=1.0)  # 0.5 x - 55
    assert out[0].tolist() == [[0.0, 0.0], [45.0, 70.0]]


@pytest.mark.parametrize("ratio", [0.0, 0.5, 1.7])
def test_saturation_matches_an_hsv_round_trip(cifar_train, ratio):
    image = torch.from_numpy(cifar_train.images[3]).permute(2, 0, 1)
    out = color(saturation_radius=1.0).apply(image, u_b=0.0, alpha=1.0, ratio=ratio)
    pixels = image.permute(1, 2, 0).reshape(-1, 3).numpy() / 255.0
    expected = []
    for r, g, b in pixels:
        h, s, v = colorsys.rgb_to_hsv(r, g, b)
        expected.append(colorsys.hsv_to_rgb(h, min(s * ratio, 1.0), v))
    expected = torch.tensor(np.array(expected) * 255.0, dtype=torch.float32).view(32, 32, 3).permute(2, 0, 1)
    assert torch.allclose(out, expected, atol=1e-3)


def test_color_draws_stay_in_their_radius_and_are_seeded():
    transform = color(0.3, 0.2, 0.1)
    draws = np.array([transform.draw(random.Random(k)) for k in range(2000)])
    assert np.abs(draws[:, 0]).max() <= 0.3 and np.abs(draws[:, 1] - 1).max() <= 0.2
    assert np.abs(draws[:, 2] - 1).max() <= 0.1 and np.abs(draws[:, 0]).max() > 0.28
    assert transform.draw(random.Random(5)) == transform.draw(random.Random(5))
    with pytest.raises(ValueError, match="brightness_radius must be >= 0.0 and <= 1.0"):
        color(brightness_radius=1.5)


# ------------------------------------------------------------------ pipeline
def test_pipeline_from_config_is_reproducible_and_knows_its_output(cifar_train):
    config = [
        {"type": "crop", "crop_type": "randomarea", "area_ratio": [0.3, 1.0], "jitter_type": "uniratio"},
        {"type": "scale", "width": 24, "height": 20, "channels": 3},
        {"type": "color", "brightness_radius": 0.2, "contrast_radius": 0.2, "saturation_radius": 0.2},
    ]
    pipeline = TransformPipeline(config)
    assert pipeline.channels == 3 and pipeline.output_size(None) == (20, 24)
    a = pipeline(cifar_train.images[0], random.Random(42))
    b = pipeline(cifar_train.images[0], random.Random(42))
    c = pipeline(cifar_train.images[0], random.Random(43))
    assert a.shape == (3, 20, 24) and a.dtype == torch.float32
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert float(a.min()) >= 0.0 and float(a.max()) <= 255.0
    by_name = build_transforms({"crop": {"crop_type": "center", "crop_size": 8}, "scale": {"width": 4, "height": 4}})
    assert [type(t).__name__ for t in by_name] == ["Crop", "Scale"]


def test_pipeline_config_errors_name_the_transform():
    with pytest.raises(ValueError, match=r"transform #1: unknown type 'blur'"):
        build_transforms([{"type": "scale", "width": 4, "height": 4}, {"type": "blur"}])
    with pytest.raises(ValueError, match=r"transform #0 \(crop\).*crop_ratio"):
        build_transforms([{"type": "crop", "crop_ratio": 0.5}])
    with pytest.raises(ValueError, match="disagree on channels"):
        TransformPipeline([{"type": "scale", "width": 4, "height": 4, "channels": 1}, scale(4, 4, 3)])
