"""CTFSource over a real CIFAR-10 CTF file: shapes, labels, seeding and rank partitioning."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from amlvision import ctf
from amlvision.sources.ctf_source import CTFSource

torch.set_num_threads(2)
N = 400


@pytest.fixture(scope="module")
def cifar_ctf(tmp_path_factory, cifar_arrays):
    images, labels, classes = cifar_arrays
    pick = np.random.default_rng(0).permutation(len(images))[:N]  # every class, file order unrelated to class
    path = tmp_path_factory.mktemp("ctf_source") / "train_cntk_text.txt"
    ctf.write_images(path, images[pick], labels[pick], num_classes=10)
    return path, images[pick], labels[pick], classes


def _epoch(source, epoch=0, batch_size=64):
    batches = list(source.iter_epoch(epoch, batch_size))
    return torch.cat([x for x, _ in batches]), torch.cat([y for _, y in batches])


def test_batches_are_float_nchw_pixels_and_int64_labels_in_file_order(cifar_ctf):
    path, images, labels, classes = cifar_ctf
    source = CTFSource(path, (3, 32, 32), class_names=classes, randomize=False)
    assert len(source) == N and source.image_shape == (3, 32, 32) and source.class_names == classes
    x, y = next(source.iter_epoch(0, 32))
    assert x.dtype == torch.float32 and x.shape == (32, 3, 32, 32) and y.dtype == torch.int64
    features, targets = _epoch(source)
    expected = torch.from_numpy(images).permute(0, 3, 1, 2).float()
    assert torch.equal(features, expected)  # 0-255 units, RGB, channel-major decoded back to NCHW
    assert targets.tolist() == labels.tolist()


def test_seeded_shuffle_is_reproducible_and_changes_per_sweep(cifar_ctf):
    path, _, labels, _ = cifar_ctf
    a = CTFSource(path, (3, 32, 32), 10, seed=7)
    b = CTFSource(path, (3, 32, 32), 10, seed=7)
    c = CTFSource(path, (3, 32, 32), 10, seed=8)
    ya, yb, yc = _epoch(a)[1], _epoch(b)[1], _epoch(c)[1]
    assert torch.equal(ya, yb) and not torch.equal(ya, yc)
    assert sorted(ya.tolist()) == sorted(labels.tolist())  # a permutation of the file
    assert not torch.equal(_epoch(a, epoch=1)[1], ya)


def test_ranks_partition_each_sweep(cifar_ctf):
    path, images, _, _ = cifar_ctf
    shares = [CTFSource(path, (3, 32, 32), 10, seed=3, rank=r, world_size=3) for r in range(3)]
    seen = [_epoch(s)[0] for s in shares]
    assert sorted(len(x) for x in seen) == [133, 133, 134]
    # identify images by their bytes: the shares are disjoint and together hold every image
    keys = [bytes(img.to(torch.uint8).numpy().tobytes()) for x in seen for img in x]
    assert len(set(keys)) == N == len({bytes(i.transpose(2, 0, 1).tobytes()) for i in images})


def test_sparse_labels_are_detected(cifar_ctf, tmp_path):
    _, images, labels, _ = cifar_ctf
    path = tmp_path / "sparse.ctf"
    ctf.write_images(path, images[:50], labels[:50], num_classes=10, label_format="sparse")
    source = CTFSource(path, (3, 32, 32), 10, randomize=False)
    assert _epoch(source)[1].tolist() == labels[:50].tolist()
    with pytest.raises(ValueError, match="give num_classes or class_names"):
        CTFSource(path, (3, 32, 32))


def test_number_of_classes_is_read_from_dense_labels(cifar_ctf):
    source = CTFSource(cifar_ctf[0], (3, 32, 32), randomize=False)
    assert source.num_classes == 10 and source.class_names == [str(k) for k in range(10)]


def test_mean_is_subtracted_and_indexes_select_a_subset(cifar_ctf):
    path, images, _, _ = cifar_ctf
    mean = np.array([125.0, 120.0, 110.0])
    source = CTFSource(path, (3, 32, 32), 10, randomize=False, indexes=[5, 2], mean=mean)
    x, _ = next(source.iter_epoch(0, 8))
    expected = torch.from_numpy(images[[5, 2]]).permute(0, 3, 1, 2).float() - torch.tensor(mean).float().view(3, 1, 1)
    assert torch.allclose(x, expected)


def test_labels_that_are_not_one_hot_are_rejected(tmp_path):
    path = tmp_path / "soft.ctf"
    path.write_text("|labels 0 1 |features 1 2 3 4\n|labels 0.5 0.5 |features 1 2 3 4\n")
    with pytest.raises(ctf.CTFError, match=r"soft\.ctf:2: the label is not one-hot"):
        CTFSource(path, (1, 2, 2), 2)


def test_image_shape_must_match_the_feature_dimension(tmp_path, cifar_ctf):
    path = cifar_ctf[0]
    with pytest.raises(ctf.CTFError, match=r"train_cntk_text\.txt:1:.*has 3072 values, expected dim=1024"):
        CTFSource(path, (1, 32, 32), 10)


def test_file_partition_reads_only_this_ranks_sequences_and_agrees_with_sweep_partition(cifar_ctf):
    path, images, labels, _ = cifar_ctf
    for rank in range(3):
        by_file = CTFSource(path, (3, 32, 32), 10, randomize=False, rank=rank, world_size=3, partition="file")
        by_sweep = CTFSource(path, (3, 32, 32), 10, randomize=False, rank=rank, world_size=3)
        assert len(by_file.images) == len(range(rank, N, 3)) and len(by_sweep.images) == N  # 1/3 in memory
        (x_file, y_file), (x_sweep, y_sweep) = _epoch(by_file), _epoch(by_sweep)
        assert torch.equal(x_file, x_sweep) and torch.equal(y_file, y_sweep)  # the same samples, in order
        expected = torch.from_numpy(images[rank::3]).permute(0, 3, 1, 2).float()
        assert torch.equal(x_file, expected) and y_file.tolist() == labels[rank::3].tolist()
    shuffled = CTFSource(path, (3, 32, 32), 10, seed=5, rank=1, world_size=3, partition="file")
    assert sorted(_epoch(shuffled)[1].tolist()) == sorted(labels[1::3].tolist())  # shuffles its own share
    with pytest.raises(ValueError, match="partition"):
        CTFSource(path, (3, 32, 32), 10, partition="chunk")


def test_float_features_max_errors_and_strict(tmp_path):
    path = tmp_path / "float.ctf"
    path.write_text(
        "|labels 0 1 |features 0.5 1 2 3\n|labels 1 0 |features 1 2 x 4\n|labels 1 0 |features -1.25 2 3 4\n"
    )
    for dtype in (np.uint8, np.float32):
        with pytest.raises(ctf.CTFError, match=r"float\.ctf:2:27: .*'x' is not a number"):
            CTFSource(path, (1, 2, 2), 2, dtype=dtype)
    with pytest.raises(ctf.CTFError, match=r"float\.ctf:1:22: .*not integers in \[0, 255\]"):
        CTFSource(path, (1, 2, 2), 2, max_errors=1)  # uint8 pixels (the default) must be integers
    with pytest.raises(ctf.CTFError, match=r"float\.ctf:2: sequence 1 has no sample of input 'features'"):
        CTFSource(path, (1, 2, 2), 2, dtype=np.float32, max_errors=1, strict=True)  # CNTK: "Bailing out"
    source = CTFSource(path, (1, 2, 2), 2, dtype=np.float32, max_errors=1, randomize=False)  # line 2 skipped
    x, y = _epoch(source)
    assert x.view(2, 4).tolist() == [[0.5, 1, 2, 3], [-1.25, 2, 3, 4]] and y.tolist() == [1, 0]
    with pytest.raises(ValueError, match="np.uint8 or np.float32"):
        CTFSource(path, (1, 2, 2), 2, dtype=np.float64)
