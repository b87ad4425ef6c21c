"""CNTK sample-schedule semantics of MinibatchSource, exercised through PackedSource on real CIFAR images."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from amlvision.sources import FULL_DATA_SWEEP, INFINITELY_REPEAT
from amlvision.sources.packed_source import PackedSource


def _indices(source: PackedSource, epoch: int, batch_size: int, drop_last: bool = False) -> np.ndarray:
    plans = list(source.epoch_plans(epoch, batch_size, drop_last))
    return np.concatenate([p.indices for p in plans]) if plans else np.zeros(0, dtype=np.int64)


def test_batches_hold_the_scheduled_images_and_labels(packed_cifar, cifar_train):
    source = PackedSource(packed_cifar, "train", seed=3)
    seen = []
    for batch, (features, labels) in zip(source.epoch_plans(0, 200), source.iter_epoch(0, 200), strict=True):
        assert features.dtype == torch.float32 and labels.dtype == torch.int64
        expected = torch.from_numpy(cifar_train.images[batch.indices]).permute(0, 3, 1, 2).float()
        assert torch.equal(features, expected)
        assert labels.tolist() == cifar_train.labels[batch.indices].tolist()
        seen.append(batch.indices)
    assert sorted(np.concatenate(seen).tolist()) == list(range(len(cifar_train.labels)))


def test_sweep_permutation_is_seeded_and_independent_of_batch_size(packed_cifar):
    a = PackedSource(packed_cifar, "train", seed=7)
    b = PackedSource(packed_cifar, "train", seed=7)
    c = PackedSource(packed_cifar, "train", seed=8)
    for epoch in (0, 1):
        assert np.array_equal(_indices(a, epoch, 64), _indices(b, epoch, 1000))
        assert not np.array_equal(_indices(a, epoch, 64), _indices(c, epoch, 64))
    assert not np.array_equal(_indices(a, 0, 64), _indices(a, 1, 64)), "each sweep gets its own permutation"
    # The permutation is drawn from (seed, sweep) only: reading epoch 5 first changes nothing.
    assert np.array_equal(_indices(PackedSource(packed_cifar, "train", seed=7), 5, 99), _indices(a, 5, 64))


def test_randomize_false_keeps_file_order(packed_cifar, cifar_train):
    source = PackedSource(packed_cifar, "train", randomize=False)
    n = len(cifar_train.labels)
    assert _indices(source, 0, 128).tolist() == list(range(n))
    assert _indices(source, 3, 7).tolist() == list(range(n))


@pytest.mark.parametrize("world_size", [2, 3, 7])
def test_partitions_are_disjoint_cover_the_sweep_and_differ_by_at_most_one(packed_cifar, world_size):
    n = PackedSource(packed_cifar, "train").num_samples
    for epoch in (0, 1):
        shares = [
            _indices(PackedSource(packed_cifar, "train", seed=1, rank=r, world_size=world_size), epoch, 50)
            for r in range(world_size)
        ]
        joined = np.concatenate(shares)
        assert len(joined) == n and len(np.unique(joined)) == n
        sizes = [len(s) for s in shares]
        assert max(sizes) - min(sizes) <= 1
        lengths = [len(PackedSource(packed_cifar, "train", rank=r, world_size=world_size)) for r in range(world_size)]
        assert lengths == sizes


def test_drop_last_gives_equal_shares(packed_cifar):
    world_size = 7
    n = PackedSource(packed_cifar, "train").num_samples
    assert n % world_size, "the test needs a remainder to drop"
    shares = [
        _indices(PackedSource(packed_cifar, "train", seed=2, rank=r, world_size=world_size, drop_last=True), 0, 64)
        for r in range(world_size)
    ]
    assert {len(s) for s in shares} == {n // world_size}
    joined = np.concatenate(shares)
    assert len(np.unique(joined)) == len(joined) == n - n % world_size


def test_epoch_size_straddles_sweeps_like_cntk(packed_cifar):
    sweep = PackedSource(packed_cifar, "train", seed=4)
    n = sweep.num_samples
    stream = np.concatenate([_indices(sweep, s, 256) for s in range(3)])  # sweeps 0, 1, 2 back to back
    epoch_size = 700
    fixed = PackedSource(packed_cifar, "train", seed=4, epoch_size=epoch_size)
    epochs = [_indices(fixed, e, 64) for e in range(3 * n // epoch_size)]
    assert all(len(e) == epoch_size for e in epochs)
    assert np.array_equal(np.concatenate(epochs), stream[: len(epochs) * epoch_size])
    assert fixed.epoch_range(2) == (1400, 2100) and 1400 < n < 2100, "epoch 2 straddles sweeps 0 and 1"
    assert sweep.epoch_size == n and PackedSource(packed_cifar, "train", epoch_size=FULL_DATA_SWEEP).epoch_size == n


def test_max_sweeps_and_max_samples_end_the_stream(packed_cifar):
    n = PackedSource(packed_cifar, "train").num_samples
    two = PackedSource(packed_cifar, "train", max_sweeps=2)
    assert len(_indices(two, 1, 100)) == n and len(_indices(two, 2, 100)) == 0
    capped = PackedSource(packed_cifar, "train", max_samples=n + 10, epoch_size=FULL_DATA_SWEEP)
    assert len(_indices(capped, 0, 100)) == n and len(_indices(capped, 1, 100)) == 10
    assert PackedSource(packed_cifar, "train", max_sweeps=INFINITELY_REPEAT).end_position is None
    with pytest.raises(ValueError, match="mutually exclusive"):
        PackedSource(packed_cifar, "train", max_sweeps=1, max_samples=10)


def test_drop_last_batch_and_num_batches(packed_cifar):
    source = PackedSource(packed_cifar, "train")
    n = source.num_samples
    sizes = [len(y) for _, y in source.iter_epoch(0, 128, drop_last=True)]
    assert sizes == [128] * (n // 128) == [128] * source.num_batches(0, 128, drop_last=True)
    assert [len(y) for _, y in source.iter_epoch(0, 128)][-1] == n % 128
    assert source.num_batches(0, 128) == -(-n // 128)


def test_next_minibatch_stops_at_sweep_ends_and_at_max_sweeps(packed_cifar):
    source = PackedSource(packed_cifar, "train", seed=5, max_sweeps=2)
    n = source.num_samples
    got, ends = [], []
    while (mb := source.next_minibatch(400)) is not None:
        assert mb.num_samples <= 400
        got.append((mb.sweep, mb.labels))
        ends.append(mb.sweep_end)
    per_sweep = [-(-n // 400)] * 2
    assert len(got) == sum(per_sweep)
    assert ends == ([False] * (per_sweep[0] - 1) + [True]) * 2
    assert sum(len(labels) for sweep, labels in got if sweep == 0) == n
    assert source.next_minibatch(400) is None


def test_next_minibatch_shares_each_window_between_ranks_and_checkpoints(packed_cifar):
    ranks = [PackedSource(packed_cifar, "train", seed=9, rank=r, world_size=3) for r in range(3)]
    reference = PackedSource(packed_cifar, "train", seed=9)
    for _ in range(3):
        parts = [src.next_minibatch(90) for src in ranks]
        whole = reference.next_minibatch(90)
        assert sum(p.num_samples for p in parts) == whole.num_samples == 90
        assert sorted(torch.cat([p.labels for p in parts]).tolist()) == sorted(whole.labels.tolist())
    state = reference.get_checkpoint_state()
    after = reference.next_minibatch(50)
    restored = PackedSource(packed_cifar, "train", seed=9)
    restored.restore_from_checkpoint(state)
    again = restored.next_minibatch(50)
    assert torch.equal(after.features, again.features) and torch.equal(after.labels, again.labels)
    with pytest.raises(ValueError, match="other data or seed"):
        PackedSource(packed_cifar, "train", seed=10).restore_from_checkpoint(state)


def test_bad_schedule_arguments_are_refused(packed_cifar):
    with pytest.raises(ValueError, match="rank 3 is not within world_size 3"):
        PackedSource(packed_cifar, "train", rank=3, world_size=3)
    with pytest.raises(ValueError, match="epoch_size"):
        PackedSource(packed_cifar, "train", epoch_size=0)
    with pytest.raises(ValueError, match="batch_size"):
        next(PackedSource(packed_cifar, "train").iter_epoch(0, 0))


def test_channels_last_output(packed_cifar):
    features, _ = next(PackedSource(packed_cifar, "test", channels_last=True).iter_epoch(0, 8))
    assert features.is_contiguous(memory_format=torch.channels_last) and features.shape == (8, 3, 32, 32)
