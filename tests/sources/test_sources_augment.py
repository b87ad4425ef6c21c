"""amlvision.augment: exact pixel movement of translate / flip, alternating flip, and PackedSource's use of it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from amlvision.augment import (
    BatchAugment,
    alternating_flip_mask,
    flip_translate,
    hflip,
    offsets_from_uniform,
    translate,
)
from amlvision.sources.packed_source import PackedSource


def _ramp(n: int = 2, c: int = 3, h: int = 4, w: int = 5) -> torch.Tensor:
    return torch.arange(n * c * h * w, dtype=torch.uint8).view(n, c, h, w) + 1  # no pixel equals a fill of 0


def test_translate_moves_pixels_by_the_offset_and_fills_with_the_pad_value():
    images = _ramp()
    out = translate(images, torch.tensor([1, -2]), torch.tensor([2, 0]), fill=0)
    # image 0 moved down 1 and right 2: out[y, x] = in[y - 1, x - 2]
    assert torch.equal(out[0, :, 1:, 2:], images[0, :, :3, :3])
    assert (out[0, :, 0, :] == 0).all() and (out[0, :, :, :2] == 0).all()
    # image 1 moved up 2: out[y, x] = in[y + 2, x]
    assert torch.equal(out[1, :, :2, :], images[1, :, 2:, :])
    assert (out[1, :, 2:, :] == 0).all()
    filled = translate(images, torch.tensor([0, 0]), torch.tensor([-1, 1]), fill=200)
    assert (filled[0, :, :, -1] == 200).all() and (filled[1, :, :, 0] == 200).all()
    assert torch.equal(filled[0, :, :, :-1], images[0, :, :, 1:])


@pytest.mark.parametrize(("pad_mode", "numpy_mode"), [("reflect", "reflect"), ("replicate", "edge")])
def test_translate_border_modes_match_numpy_padding_then_cropping(pad_mode, numpy_mode):
    gen = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (16, 3, 8, 9), dtype=torch.uint8, generator=gen)
    dy = torch.randint(-3, 4, (16,), generator=gen)
    dx = torch.randint(-3, 4, (16,), generator=gen)
    out = translate(images, dy, dx, pad_mode=pad_mode)
    for i in range(16):
        padded = np.pad(images[i].numpy(), ((0, 0), (3, 3), (3, 3)), mode=numpy_mode)
        top, left = 3 - int(dy[i]), 3 - int(dx[i])
        assert np.array_equal(out[i].numpy(), padded[:, top : top + 8, left : left + 9])


def test_flip_translate_equals_translate_then_mirror_on_float_images():
    gen = torch.Generator().manual_seed(1)
    images = torch.rand(10, 3, 6, 6, generator=gen) * 255
    dy, dx = torch.randint(-2, 3, (2, 10), generator=gen)
    mask = torch.rand(10, generator=gen) < 0.5
    expected = hflip(translate(images, dy, dx, fill=3.5), mask)
    assert torch.equal(flip_translate(images, dy=dy, dx=dx, flip_mask=mask, fill=3.5), expected)
    assert torch.equal(hflip(images, mask)[mask], images[mask].flip(-1))
    assert torch.equal(hflip(images, mask)[~mask], images[~mask])


def test_offsets_cover_the_range_uniformly():
    u = np.random.default_rng(0).random(90_000)
    offsets = offsets_from_uniform(u, 4)
    assert offsets.min() == -4 and offsets.max() == 4
    counts = torch.bincount(offsets + 4).numpy()
    assert np.all(np.abs(counts / len(u) - 1 / 9) < 0.01)


def test_alternating_flip_inverts_every_odd_epoch():
    base = torch.tensor([True, False, True])
    assert alternating_flip_mask(base, 0).tolist() == [True, False, True]
    assert alternating_flip_mask(base, 1).tolist() == [False, True, False]
    assert alternating_flip_mask(base, 4).tolist() == [True, False, True]


def test_batch_augment_with_a_generator_is_reproducible_and_validates():
    images = _ramp(32, 3, 8, 8)
    aug = BatchAugment(flip="random", translate=2)
    a = aug(images, generator=torch.Generator().manual_seed(5))
    b = aug(images, generator=torch.Generator().manual_seed(5))
    assert torch.equal(a, b) and not torch.equal(a, images)
    with pytest.raises(ValueError, match="base_flip"):
        BatchAugment(flip="alternate")(images)
    with pytest.raises(ValueError, match="flip must be one of"):
        BatchAugment(flip="sometimes")
    with pytest.raises(ValueError, match="one value per image"):
        translate(images, torch.zeros(3, dtype=torch.int64), torch.zeros(32, dtype=torch.int64))


def _undo(features: torch.Tensor, original: torch.Tensor, max_shift: int) -> tuple[int, int, bool] | None:
    """Find the (dy, dx, flipped) that turns ``original`` into ``features`` (fill 0), or None."""
    for flipped in (False, True):
        for dy in range(-max_shift, max_shift + 1):
            for dx in range(-max_shift, max_shift + 1):
                candidate = flip_translate(
                    original[None], dy=torch.tensor([dy]), dx=torch.tensor([dx]), flip_mask=torch.tensor([flipped])
                )[0]
                if torch.equal(candidate.float(), features):
                    return dy, dx, flipped
    return None


def test_packed_source_augmentation_preserves_labels_and_uses_drawn_offsets(packed_cifar, cifar_train):
    source = PackedSource(packed_cifar, "train", seed=11, augment={"flip": "random", "translate": 2})
    plan = next(source.epoch_plans(0, 40))
    features, labels = next(source.iter_epoch(0, 40))
    assert labels.tolist() == cifar_train.labels[plan.indices].tolist()
    found = []
    for j, index in enumerate(plan.indices):
        original = torch.from_numpy(cifar_train.images[index]).permute(2, 0, 1)
        found.append(_undo(features[j], original, 2))
    assert all(f is not None for f in found), "every output is a translated / mirrored copy of its own image"
    assert len({f[:2] for f in found}) > 5 and {f[2] for f in found} == {False, True}


def test_packed_source_augmentation_does_not_depend_on_batch_size(packed_cifar):
    kwargs = {"seed": 4, "augment": {"flip": "random", "translate": 4, "pad_mode": "reflect"}}
    small = torch.cat([x for x, _ in PackedSource(packed_cifar, "train", **kwargs).iter_epoch(1, 37)])
    large = torch.cat([x for x, _ in PackedSource(packed_cifar, "train", **kwargs).iter_epoch(1, 500)])
    assert torch.equal(small, large)


def test_packed_source_alternating_flip_mirrors_each_image_the_other_way_next_sweep(packed_cifar, cifar_train):
    source = PackedSource(packed_cifar, "train", seed=2, randomize=False, augment={"flip": "alternate"})
    epoch0 = torch.cat([x for x, _ in source.iter_epoch(0, 500)])
    epoch1 = torch.cat([x for x, _ in source.iter_epoch(1, 500)])
    epoch2 = torch.cat([x for x, _ in source.iter_epoch(2, 500)])
    originals = torch.from_numpy(cifar_train.images).permute(0, 3, 1, 2).float()
    flipped0 = (epoch0 != originals).flatten(1).any(1)
    assert 0.4 < flipped0.float().mean() < 0.6
    assert torch.equal(epoch1, torch.where(flipped0[:, None, None, None], originals, originals.flip(-1)))
    assert torch.equal(epoch2, epoch0)
