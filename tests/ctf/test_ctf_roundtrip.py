"""Write the 2,000-image CIFAR-10 subset as CTF and read back every pixel and label."""

from __future__ import annotations

import numpy as np

from amlvision import ctf


def _streams(label_format: str = "dense") -> dict[str, ctf.StreamDef]:
    return {
        "features": ctf.StreamDef("features", 3 * 32 * 32),
        "labels": ctf.StreamDef("labels", 10, is_sparse=label_format == "sparse"),
    }


def test_cifar_subset_round_trip_as_arrays(tmp_path, cifar_arrays):
    images, labels, _ = cifar_arrays
    assert images.shape == (2000, 32, 32, 3)
    path = tmp_path / "cifar.ctf"
    written = ctf.write_images(path, images, labels, num_classes=10)
    assert written == path.stat().st_size
    arrays = ctf.read_arrays(path, _streams(), dtype=np.uint8)
    assert len(arrays) == 2000 and arrays.ids.tolist() == list(range(2000))
    back = arrays.data["features"].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    np.testing.assert_array_equal(back, images)
    np.testing.assert_array_equal(arrays.data["labels"].argmax(axis=1), labels)
    assert (arrays.data["labels"].sum(axis=1) == 1).all()


def test_cifar_subset_round_trip_per_sequence_with_sparse_labels(tmp_path, cifar_arrays):
    images, labels, _ = cifar_arrays
    path = tmp_path / "cifar_sparse.ctf"
    ctf.write_images(path, images[:300], labels[:300], num_classes=10, label_format="sparse")
    seqs = ctf.read(path, _streams("sparse"), chunk_bytes=1 << 16)
    assert len(seqs) == 300
    for i, seq in enumerate(seqs):
        assert seq["features"].dtype == np.float32 and seq["features"].shape == (1, 3072)
        np.testing.assert_array_equal(seq["features"].reshape(3, 32, 32).transpose(1, 2, 0), images[i])
        assert seq["labels"].indices.tolist() == [labels[i]] and seq["labels"].data.tolist() == [1.0]
