"""ImageSource on real CIFAR PNGs: map files and collections, transforms, workers, multiview10, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from amlvision.data.images import ImageReadError
from amlvision.data.resolve import open_collection
from amlvision.formats.mapfile import read_map_file, write_map_file
from amlvision.sources.image_source import ImageSource

RANDOM_TRANSFORMS = [
    {"type": "crop", "crop_type": "randomarea", "area_ratio": [0.4, 1.0], "jitter_type": "uniratio"},
    {"type": "scale", "width": 28, "height": 28, "channels": 3},
    {"type": "color", "brightness_radius": 0.3, "contrast_radius": 0.3, "saturation_radius": 0.3},
]


@pytest.fixture(scope="module")
def test_map(tmp_path_factory, cifar_test):
    """A CNTK map file (absolute paths) over the real test PNGs, in a known order."""
    map_file = tmp_path_factory.mktemp("mapfile") / "test_map.txt"
    write_map_file(map_file, [(str(p), int(k)) for p, k in zip(cifar_test.paths, cifar_test.labels, strict=True)])
    return map_file


def _all(source: ImageSource, epoch: int, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    xs, ys = zip(*source.iter_epoch(epoch, batch_size), strict=True)
    return torch.cat(xs), torch.cat(ys)


def test_map_file_source_yields_the_decoded_pixels_in_file_order(test_map, cifar_test):
    source = ImageSource(
        test_map, randomize=False, num_workers=0, transforms=[{"type": "scale", "width": 32, "height": 32}]
    )
    assert source.image_shape == (3, 32, 32) and len(source) == len(cifar_test.labels)
    features, labels = _all(source, 0, 128)
    assert features.dtype == torch.float32 and labels.dtype == torch.int64
    assert torch.equal(features, torch.from_numpy(cifar_test.images).permute(0, 3, 1, 2).float())
    assert labels.tolist() == cifar_test.labels.tolist()


def test_collection_and_split_folder_inputs(cifar_subset, cifar_test):
    from_folder = ImageSource(cifar_subset, "test", randomize=False, num_workers=0)
    assert from_folder.class_names == cifar_test.class_names and len(from_folder) == 500
    collection = open_collection(cifar_subset)["test"]
    from_collection = ImageSource(collection, randomize=False, num_workers=0)
    a, b = _all(from_folder, 0, 250), _all(from_collection, 0, 250)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert sorted(a[1].tolist()) == sorted(cifar_test.labels.tolist())
    with pytest.raises(ValueError, match="no split 'validation'"):
        ImageSource(cifar_subset, "validation")


def test_random_transforms_are_reproducible_for_any_worker_count_and_batch_size(test_map):
    in_process = ImageSource(test_map, transforms=RANDOM_TRANSFORMS, seed=3, num_workers=0)
    workers = ImageSource(test_map, transforms=RANDOM_TRANSFORMS, seed=3, num_workers=2)
    a, b = _all(in_process, 1, 64), _all(workers, 1, 200)
    assert a[0].shape == (500, 3, 28, 28)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    other_seed = _all(ImageSource(test_map, transforms=RANDOM_TRANSFORMS, seed=4, num_workers=0), 1, 64)
    assert not torch.equal(a[0], other_seed[0])
    next_epoch = _all(in_process, 2, 64)
    assert not torch.equal(a[1], next_epoch[1]), "each epoch is a new permutation with new augmentation"
    assert float(a[0].min()) >= 0.0 and float(a[0].max()) <= 255.0


def test_labels_follow_their_images_through_random_transforms(test_map, cifar_test):
    source = ImageSource(test_map, transforms=RANDOM_TRANSFORMS, seed=8, num_workers=0)
    plans = list(source.epoch_plans(0, 100))
    for plan, (_, labels) in zip(plans, source.iter_epoch(0, 100), strict=True):
        assert labels.tolist() == cifar_test.labels[plan.indices].tolist()


def test_ranks_partition_an_image_source(test_map):
    shares = [_all(ImageSource(test_map, seed=1, rank=r, world_size=3, num_workers=0), 0, 100)[1] for r in range(3)]
    assert sum(len(s) for s in shares) == 500 and max(map(len, shares)) - min(map(len, shares)) <= 1


def test_multiview10_makes_ten_consecutive_views_per_image(test_map, cifar_test):
    source = ImageSource(
        test_map,
        randomize=False,
        num_workers=0,
        transforms=[{"type": "crop", "crop_type": "multiview10", "crop_size": 24}],
    )
    assert len(source) == 10 * 500 and source.image_shape == (3, 24, 24)
    features, labels = next(source.iter_epoch(0, 20))
    assert labels.tolist() == [int(cifar_test.labels[0])] * 10 + [int(cifar_test.labels[1])] * 10
    image = torch.from_numpy(cifar_test.images[0]).permute(2, 0, 1).float()
    assert torch.equal(features[0], image[:, :24, :24])  # top-left
    assert torch.equal(features[3], image[:, 8:, 8:])  # bottom-right
    assert torch.equal(features[4], image[:, 4:28, 4:28])  # centre
    assert torch.equal(features[9], image[:, 4:28, 4:28].flip(-1))  # centre, mirrored


def test_mixed_sizes_need_a_scale_transform(tmp_path, cifar_test):
    from PIL import Image

    big = tmp_path / "big.png"
    Image.fromarray(np.zeros((40, 40, 3), dtype=np.uint8)).save(big)
    map_file = tmp_path / "map.txt"
    write_map_file(map_file, [(str(cifar_test.paths[0]), 0), ("big.png", 1)])
    with pytest.raises(ValueError, match="big.png"):
        list(ImageSource(map_file, randomize=False, num_workers=0).iter_epoch(0, 2))
    scaled = ImageSource(
        map_file, randomize=False, num_workers=0, transforms=[{"type": "scale", "width": 16, "height": 16}]
    )
    features, labels = next(scaled.iter_epoch(0, 2))
    assert features.shape == (2, 3, 16, 16) and labels.tolist() == [0, 1]
    assert (features[1] == 0).all()


@pytest.mark.parametrize("num_workers", [0, 2])
def test_a_corrupt_image_is_reported_by_name(tmp_path, cifar_test, num_workers):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n this is not an image")
    map_file = tmp_path / "map.txt"
    write_map_file(map_file, [(str(p), 0) for p in cifar_test.paths[:3]] + [("broken.png", 1)])
    source = ImageSource(
        map_file, randomize=False, num_workers=num_workers, transforms=[{"type": "scale", "width": 8, "height": 8}]
    )
    with pytest.raises(ImageReadError, match="broken.png"):
        list(source.iter_epoch(0, 2))


def test_gray_decoding_from_the_scale_channels(test_map):
    source = ImageSource(
        test_map,
        randomize=False,
        num_workers=0,
        transforms=[{"type": "scale", "width": 32, "height": 32, "channels": 1}],
    )
    features, _ = next(source.iter_epoch(0, 4))
    assert source.image_shape == (1, 32, 32) and features.shape == (4, 1, 32, 32)
    assert read_map_file(test_map).class_names == [str(k) for k in range(10)]
