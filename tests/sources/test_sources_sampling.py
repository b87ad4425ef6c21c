"""The class-balanced sampler over real imbalanced CIFAR data: every reader, DDP partitions, seeding, keys."""

from __future__ import annotations

import numpy as np
import pytest

from amlvision.formats.packed import write_packed
from amlvision.sources.ctf_source import CTFSource
from amlvision.sources.factory import make_source
from amlvision.sources.sampling import balanced_order, class_shares

MINORITY = {0: 8, 3: 8}  # class index -> images kept (5% of 150): airplane and cat


def _imbalanced_indexes(labels: np.ndarray) -> np.ndarray:
    keep = []
    for cls in np.unique(labels):
        members = np.flatnonzero(labels == cls)
        keep.append(members[: MINORITY.get(int(cls), len(members))])
    return np.sort(np.concatenate(keep))


@pytest.fixture(scope="module")
def imbalanced(tmp_path_factory, cifar_train, packed_formats) -> dict[str, object]:
    """The same imbalanced train subset (2 classes at 5%) as packed, map-file and CTF data."""
    subset = _imbalanced_indexes(cifar_train.labels)
    root = tmp_path_factory.mktemp("imbalanced")
    packed = write_packed(
        root / "packed", {"train": (cifar_train.images[subset], cifar_train.labels[subset])}, cifar_train.class_names
    )
    map_folder = packed_formats["map"]
    lines = (map_folder / "train_map.txt").read_text().splitlines()
    (root / "train_map.txt").write_text(
        "".join(f"{(map_folder / lines[i].split(chr(9))[0]).resolve()}\t{lines[i].split(chr(9))[1]}\n" for i in subset)
    )
    return {"indexes": subset, "labels": cifar_train.labels[subset], "packed": packed, "map": root / "train_map.txt"}


def _sources(imbalanced, packed_formats, cifar_train, **schedule):
    return {
        "packed": make_source("packed", imbalanced["packed"], "train", train=True, **schedule),
        "image": make_source(
            "image", imbalanced["map"], None, train=True, class_names=cifar_train.class_names, num_workers=0, **schedule
        ),
        "ctf": CTFSource(
            packed_formats["ctf"] / "train.ctf",
            (3, 32, 32),
            class_names=cifar_train.class_names,
            indexes=imbalanced["indexes"],
            randomize=True,
            **schedule,
        ),
    }


def test_balanced_order_gives_every_class_an_equal_share_without_needless_repeats(imbalanced) -> None:
    labels = imbalanced["labels"]
    order = balanced_order(labels, seed=3, sweep=0)
    counts = np.bincount(labels[order], minlength=10)
    assert len(order) == len(labels) and counts.max() - counts.min() <= 1
    assert sorted(class_shares(labels, len(labels)).values()) == sorted(counts.tolist())
    # a minority image is repeated evenly (~15x), a majority image at most once per sweep
    picks = np.bincount(order, minlength=len(labels))
    for cls in np.unique(labels):
        members = picks[labels == cls]
        assert members.max() - members.min() <= 1, cls
    assert picks[labels == 0].min() >= 14 and picks[labels == 1].max() <= 1
    assert np.array_equal(order, balanced_order(labels, seed=3, sweep=0))
    assert not np.array_equal(order, balanced_order(labels, seed=3, sweep=1))
    assert not np.array_equal(order, balanced_order(labels, seed=4, sweep=0))


def test_every_reader_samples_the_same_balanced_sweep(imbalanced, packed_formats, cifar_train) -> None:
    sources = _sources(imbalanced, packed_formats, cifar_train, seed=7, sampler="balanced")
    labels = imbalanced["labels"]
    plans = {}
    for reader, source in sources.items():
        assert np.array_equal(source.sample_labels(), labels), reader
        indices = np.concatenate([p.indices for p in source.epoch_plans(0, 64)])
        counts = np.bincount(labels[indices], minlength=10)
        assert len(indices) == len(labels) and counts.max() - counts.min() <= 1, (reader, counts)
        plans[reader] = indices
        _, batch_labels = next(source.iter_epoch(0, 40))  # real decoding: labels follow the balanced plan
        assert batch_labels.tolist() == labels[indices[:40]].tolist(), reader
    assert np.array_equal(plans["packed"], plans["image"]) and np.array_equal(plans["packed"], plans["ctf"])
    uniform = make_source("packed", imbalanced["packed"], "train", train=True, seed=7)
    uniform_counts = np.bincount(labels[np.concatenate([p.indices for p in uniform.epoch_plans(0, 64)])])
    assert uniform_counts[0] == 8  # the default is unchanged: one permutation, minority as rare as in the data


@pytest.mark.parametrize("drop_last", [False, True])
def test_ddp_ranks_split_the_balanced_sweep(imbalanced, packed_formats, cifar_train, drop_last) -> None:
    whole = make_source("packed", imbalanced["packed"], "train", train=True, seed=5, sampler="balanced")
    order = whole.sweep_order(1)
    world = 3
    shares = []
    for rank in range(world):
        schedule = {"seed": 5, "sampler": "balanced", "rank": rank, "world_size": world, "drop_last": drop_last}
        if rank == 1:  # ranks may even read different formats of the same data
            source = CTFSource(
                packed_formats["ctf"] / "train.ctf",
                (3, 32, 32),
                class_names=cifar_train.class_names,
                indexes=imbalanced["indexes"],
                **schedule,
            )
        else:
            source = make_source("packed", imbalanced["packed"], "train", train=True, **schedule)
        shares.append(np.concatenate([p.indices for p in source.epoch_plans(1, 16)]))
    length = len(order) - (len(order) % world if drop_last else 0)
    for rank, share in enumerate(shares):
        assert np.array_equal(share, order[rank:length:world]), rank
    if drop_last:
        assert len({len(s) for s in shares}) == 1


def test_balanced_schedule_is_independent_of_batch_size_and_keys_each_repeat(imbalanced) -> None:
    source = make_source("packed", imbalanced["packed"], "train", train=True, seed=2, sampler="balanced")
    small = list(source.epoch_plans(0, 7))
    large = list(source.epoch_plans(0, 100))
    for field in ("indices", "keys"):
        assert np.array_equal(
            np.concatenate([getattr(p, field) for p in small]), np.concatenate([getattr(p, field) for p in large])
        )
    indices = np.concatenate([p.indices for p in large])
    keys = np.concatenate([p.keys for p in large])
    assert np.bincount(indices).max() > 1  # minority images repeat within the sweep
    assert len(np.unique(keys)) == len(keys)  # a repeated minority image gets a fresh augmentation each time
    minibatch = source.next_minibatch(50)
    assert minibatch.labels.tolist() == imbalanced["labels"][indices[:50]].tolist()


def test_bad_sampler_is_refused(imbalanced) -> None:
    with pytest.raises(ValueError, match="sampler must be one of"):
        make_source("packed", imbalanced["packed"], "train", train=True, sampler="oversample")


def test_eval_sources_ignore_the_sampler(imbalanced) -> None:
    source = make_source("packed", imbalanced["packed"], "train", train=False, sampler="balanced")
    assert np.array_equal(source.sweep_order(0), np.arange(len(imbalanced["labels"])))
