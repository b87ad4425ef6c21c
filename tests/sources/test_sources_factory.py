"""make_source: the three readers over the same real data agree pixel for pixel; train/eval behaviour."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from amlvision.formats.meanxml import write_mean_file
from amlvision.sources.factory import make_source
from amlvision.sources.image_source import ImageSource
from amlvision.sources.packed_source import PackedSource

COMMON = {"num_workers": 0}


def _epoch(source, epoch: int = 0, batch_size: int = 250):
    xs, ys = zip(*source.iter_epoch(epoch, batch_size), strict=True)
    return torch.cat(xs), torch.cat(ys)


def test_packed_image_and_ctf_readers_yield_identical_batches(packed_cifar, packed_formats, cifar_test):
    sources = {
        "packed": make_source("packed", packed_cifar, "test", train=False),
        "image": make_source("image", packed_formats["map"], "test", train=False, **COMMON),
        "ctf": make_source("ctf", packed_formats["ctf"], "test", train=False),
    }
    results = {}
    for reader, source in sources.items():
        assert source.class_names == cifar_test.class_names and source.num_classes == 10, reader
        assert source.image_shape == (3, 32, 32) and len(source) == 500, reader
        results[reader] = _epoch(source)
    expected = torch.from_numpy(cifar_test.images).permute(0, 3, 1, 2).float()
    for reader, (features, labels) in results.items():
        assert torch.equal(features, expected), reader
        assert labels.tolist() == cifar_test.labels.tolist(), reader


def test_train_sources_shuffle_and_augment_but_keep_labels(packed_cifar, packed_formats, cifar_train):
    packed = make_source(
        "packed", packed_cifar, "train", train=True, seed=1, augment={"flip": "random", "translate": 2}
    )
    plan = next(packed.epoch_plans(0, 300))
    features, labels = next(packed.iter_epoch(0, 300))
    assert plan.indices.tolist() != list(range(300))
    assert labels.tolist() == cifar_train.labels[plan.indices].tolist()
    raw = torch.from_numpy(cifar_train.images[plan.indices]).permute(0, 3, 1, 2).float()
    assert not torch.equal(features, raw)
    image = make_source(
        "image",
        packed_formats["map"],
        "train",
        train=True,
        seed=1,
        transforms=[
            {"type": "crop", "crop_type": "randomside", "side_ratio": 0.8},
            {"type": "scale", "width": 32, "height": 32},
            {"type": "color", "brightness_radius": 0.2},
        ],
        **COMMON,
    )
    assert isinstance(image, ImageSource) and image.image_shape == (3, 32, 32) and len(image) == 1500


def test_eval_drops_random_transforms_unless_eval_transforms_are_given(packed_formats, cifar_test):
    transforms = [
        {"type": "crop", "crop_type": "randomarea", "area_ratio": [0.3, 1.0], "jitter_type": "uniratio"},
        {"type": "scale", "width": 32, "height": 32},
        {"type": "color", "saturation_radius": 0.5},
    ]
    plain = make_source("image", packed_formats["map"], "test", train=False, transforms=transforms, **COMMON)
    assert [type(t).__name__ for t in plain.pipeline.transforms] == ["Scale"]
    assert torch.equal(_epoch(plain)[0], torch.from_numpy(cifar_test.images).permute(0, 3, 1, 2).float())
    views = make_source(
        "image",
        packed_formats["map"],
        "test",
        train=False,
        transforms=transforms,
        eval_transforms=[{"type": "crop", "crop_type": "multiview10", "crop_size": 28}],
        **COMMON,
    )
    assert len(views) == 5000 and views.image_shape == (3, 28, 28)


def test_packed_data_with_cntk_transforms_runs_the_per_image_pipeline(packed_cifar, cifar_test):
    source = make_source(
        "packed",
        packed_cifar,
        "test",
        train=False,
        transforms=[{"type": "crop", "crop_type": "center", "crop_size": 24}],
        **COMMON,
    )
    assert isinstance(source, ImageSource) and source.image_shape == (3, 24, 24)
    features, labels = next(source.iter_epoch(0, 5))
    expected = torch.from_numpy(cifar_test.images[:5, 4:28, 4:28]).permute(0, 3, 1, 2).float()
    assert torch.equal(features, expected) and labels.tolist() == cifar_test.labels[:5].tolist()


def test_mean_transform_is_subtracted_by_every_reader(tmp_path, packed_cifar, packed_formats, cifar_train, cifar_test):
    average = cifar_train.images.astype(np.float32).mean(axis=0)
    write_mean_file(tmp_path / "mean.xml", average)
    transforms = [{"type": "mean", "filename": str(tmp_path / "mean.xml")}]
    expected = torch.from_numpy(cifar_test.images[:50].astype(np.float32) - average).permute(0, 3, 1, 2)
    packed = make_source("packed", packed_cifar, "test", train=False, transforms=transforms)
    assert isinstance(packed, PackedSource)
    for source in (
        packed,
        make_source("image", packed_formats["map"], "test", train=False, transforms=transforms, **COMMON),
        make_source("ctf", packed_formats["ctf"], "test", train=False, transforms=transforms),
    ):
        features, _ = next(source.iter_epoch(0, 50))
        assert torch.allclose(features, expected, atol=1e-4), type(source).__name__


def test_factory_partitions_and_refuses_bad_requests(packed_cifar, packed_formats):
    shares = [len(make_source("packed", packed_cifar, "train", train=True, rank=r, world_size=4)) for r in range(4)]
    assert shares == [375, 375, 375, 375]
    with pytest.raises(ValueError, match="reader must be one of"):
        make_source("tfrecord", packed_cifar, "train", train=True)
    with pytest.raises(ValueError, match="ctf reader supports only the mean transform"):
        make_source(
            "ctf", packed_formats["ctf"], "test", train=False, transforms=[{"type": "scale", "width": 8, "height": 8}]
        )
    with pytest.raises(FileNotFoundError, match="split 'val'"):
        make_source("ctf", packed_formats["ctf"], "val", train=False)
