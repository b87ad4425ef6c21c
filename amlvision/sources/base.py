"""The sample schedule every minibatch source shares: sweeps, epochs, randomisation and partitioning.

A *source* (CNTK: a reader built from "deserializers") owns N samples of one split. This module
decides **which** samples come next; subclasses only decode them (``_load_batch``). Keeping the
schedule in one place is what makes ``PackedSource``, ``ImageSource`` and ``CTFSource`` agree on
CNTK's semantics:

Global sample stream
    Sweep ``s`` (one full pass) is a permutation of ``range(N)`` drawn from
    ``np.random.default_rng([seed, s])`` (``randomize=False``: file order). Sweeps are concatenated
    into one global stream; global position ``g = s * L + p`` where ``p`` is the position inside
    the sweep and ``L`` the sweep length. The permutation depends only on ``(seed, s)``, so it is
    the same whatever minibatch sizes are requested, and any epoch can be regenerated on its own
    (resume after a crash, evaluate a given epoch).

Partitioning (CNTK ``num_data_partitions`` / ``partition_index``; here ``world_size`` / ``rank``)
    Position ``p`` of a sweep belongs to rank ``p % world_size``. Ranks therefore see disjoint
    shares whose union is the whole sweep and whose sizes differ by at most one. With
    ``drop_last=True`` (PyTorch ``DistributedSampler`` meaning) the last ``N % world_size``
    positions of every sweep are skipped (``L = N - N % world_size``) so every rank gets exactly
    ``N // world_size`` samples per sweep; the skipped samples change from sweep to sweep when
    randomised.

Ending the stream
    ``max_sweeps`` or ``max_samples`` (global samples, all ranks together; mutually exclusive as in
    CNTK) end the stream; ``None`` = CNTK's ``INFINITELY_REPEAT``.

Epochs
    ``epoch_size`` counts global samples. ``FULL_DATA_SWEEP`` (the default) makes epoch ``e`` equal
    to sweep ``e``; any other value makes epoch ``e`` the global positions
    ``[e * epoch_size, (e + 1) * epoch_size)``, which may straddle sweeps exactly as in CNTK.

Two ways to read
    * ``next_minibatch(n)`` (CNTK style, stateful): the next ``n`` global positions, of which this
      rank receives its share (CNTK minibatch sizes are aggregate over workers). A minibatch never
      crosses a sweep boundary, so the last one of a sweep may be short and has ``sweep_end=True``.
      Returns ``None`` once ``max_sweeps`` / ``max_samples`` are exhausted (CNTK: an empty dict).
      ``get_checkpoint_state`` / ``restore_from_checkpoint`` save and restore the cursor.
    * ``iter_epoch(epoch, batch_size, drop_last=False)`` (Pythonic, stateless): this rank's share
      of epoch ``epoch`` in batches of ``batch_size`` local samples (PyTorch convention: per
      process), optionally dropping the final short batch.

Samplers
    ``sampler="balanced"`` replaces the permutation of a sweep with a class-balanced draw of the
    same length (``amlvision.sources.sampling``): every class gets an equal share of the sweep's
    positions. It depends only on ``(seed, sweep)`` too, so partitioning, epochs, resume and
    ``next_minibatch`` work unchanged; subclasses provide the labels through ``sample_labels``.
    A sample repeated within a balanced sweep gets a different random key at each position.

Per-sample randomness
    Random augmentation must also be independent of batch size and of worker scheduling. Every
    scheduled sample therefore carries a 64-bit key ``sample_key(seed, sweep, index)``; subclasses
    derive their random draws from it (``key_uniform``) instead of from a shared generator.

Output contract (docs/CONTRACTS.md)
    ``(features, labels)``: ``torch.float32`` ``N x C x H x W`` in 0-255 pixel units RGB (minus the
    mean image if a CNTK ``mean`` transform is configured) and ``torch.int64`` class indexes, moved
    to ``device`` and optionally in ``channels_last`` memory format.

Writing a subclass
    Call ``super().__init__(num_samples=..., class_names=..., image_shape=(C, H, W), **schedule)``
    once the split's size is known, and implement ``_load_batch(plan) -> (features, labels)``
    where ``features`` is any real or uint8 tensor/array ``n x C x H x W`` for the dataset indexes
    ``plan.indices`` and ``labels`` has ``n`` class indexes. Override ``_load_batches`` to overlap
    loading with training (thread pool, prefetch); the base class does the float32 / device /
    memory-format conversion.
"""

from __future__ import annotations

import sys
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from amlvision.sources.sampling import SAMPLERS, balanced_order

INFINITELY_REPEAT = sys.maxsize
"""CNTK's constant for ``max_sweeps`` / ``max_samples``: never end (``None`` means the same here)."""
FULL_DATA_SWEEP = sys.maxsize - 2
"""CNTK's constant for ``epoch_size``: one epoch is one sweep over the data."""

_MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def splitmix64(values: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser, vectorised: a fast, well-mixed 64-bit hash of each element."""
    z = np.asarray(values, dtype=np.uint64) + np.uint64(0x9E3779B97F4A7C15)
    with np.errstate(over="ignore"):
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return (z ^ (z >> np.uint64(31))) & _MASK64


def sample_key(seed: int, sweeps: np.ndarray | int, indices: np.ndarray) -> np.ndarray:
    """The 64-bit random key of dataset sample ``indices`` in sweep ``sweeps`` for ``seed``."""
    indices = np.asarray(indices, dtype=np.uint64)
    sweeps = np.broadcast_to(np.asarray(sweeps, dtype=np.uint64), indices.shape)
    base = splitmix64(np.array([seed & 0xFFFFFFFFFFFFFFFF], dtype=np.uint64))
    with np.errstate(over="ignore"):
        return splitmix64(splitmix64(base ^ sweeps) ^ indices)


def key_uniform(keys: np.ndarray, stream: int) -> np.ndarray:
    """Uniform float64 draws in ``[0, 1)``, one per key, independent for each ``stream`` number."""
    with np.errstate(over="ignore"):
        mixed = splitmix64(np.asarray(keys, dtype=np.uint64) ^ splitmix64(np.array([stream], dtype=np.uint64)))
    return (mixed >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))


@dataclass(frozen=True)
class BatchPlan:
    """Which samples one minibatch holds, decided before any decoding happens.

    ``indices``: dataset indexes (int64); ``sweeps``: the sweep each sample comes from;
    ``keys``: per-sample random keys (uint64, see ``sample_key``); ``ends_sweep``: per sample,
    whether it is this rank's last sample of its sweep.
    """

    indices: np.ndarray
    sweeps: np.ndarray
    keys: np.ndarray
    ends_sweep: np.ndarray

    def __len__(self) -> int:
        return len(self.indices)

    @property
    def sweep_end(self) -> bool:
        """The batch holds the end of a sweep (CNTK ``MinibatchData.end_of_sweep``)."""
        return bool(self.ends_sweep.any())

    def __getitem__(self, item: slice) -> BatchPlan:
        return BatchPlan(self.indices[item], self.sweeps[item], self.keys[item], self.ends_sweep[item])

    @staticmethod
    def concat(plans: Sequence[BatchPlan]) -> BatchPlan:
        if len(plans) == 1:
            return plans[0]
        return BatchPlan(*(np.concatenate([getattr(p, f) for p in plans]) for f in _PLAN_FIELDS))


@dataclass
class Minibatch:
    """What ``next_minibatch`` returns: CNTK's ``MinibatchData`` for the features and labels streams."""

    features: torch.Tensor
    labels: torch.Tensor
    sweep_end: bool
    sweep: int

    @property
    def num_samples(self) -> int:
        return int(self.labels.shape[0])


class MinibatchSource(ABC):
    """Base class: the CNTK sample schedule (see module docstring) plus output conversion."""

    def __init__(
        self,
        *,
        num_samples: int,
        class_names: Sequence[str],
        image_shape: tuple[int, int, int],
        randomize: bool = True,
        seed: int = 0,
        max_sweeps: int | None = None,
        max_samples: int | None = None,
        epoch_size: int = FULL_DATA_SWEEP,
        rank: int = 0,
        world_size: int = 1,
        drop_last: bool = False,
        device: torch.device | str | None = None,
        channels_last: bool = False,
        sampler: str = "uniform",
    ):
        if sampler not in SAMPLERS:
            raise ValueError(f"sampler must be one of {SAMPLERS}, got {sampler!r}")
        if seed < 0:
            raise ValueError(f"seed must be >= 0, got {seed}")
        if world_size < 1 or not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is not within world_size {world_size}")
        if max_sweeps is not None and max_sweeps == INFINITELY_REPEAT:
            max_sweeps = None
        if max_samples is not None and max_samples == INFINITELY_REPEAT:
            max_samples = None
        if max_sweeps is not None and max_samples is not None:
            raise ValueError("max_sweeps and max_samples are mutually exclusive (as in CNTK)")
        for name, value in (("max_sweeps", max_sweeps), ("max_samples", max_samples)):
            if value is not None and value < 0:
                raise ValueError(f"{name} must be >= 0, got {value}")
        if epoch_size != FULL_DATA_SWEEP and epoch_size <= 0:
            raise ValueError(f"epoch_size must be positive or FULL_DATA_SWEEP, got {epoch_size}")
        self.num_samples = int(num_samples)
        self.class_names = list(class_names)
        self.image_shape = tuple(int(v) for v in image_shape)
        self.randomize = randomize
        self.sampler = sampler
        self.seed = int(seed)
        self.rank = rank
        self.world_size = world_size
        self.drop_last = drop_last
        self.sweep_length = self.num_samples - (self.num_samples % world_size if drop_last else 0)
        if self.sweep_length <= 0:
            raise ValueError(f"{type(self).__name__}: {self.num_samples} samples cannot feed {world_size} ranks")
        self.max_sweeps = max_sweeps
        self.max_samples = max_samples
        self.epoch_size = self.sweep_length if epoch_size == FULL_DATA_SWEEP else int(epoch_size)
        self.device = torch.device(device) if device is not None else None
        self.channels_last = channels_last
        self._cursor = 0  # global position of next_minibatch
        self._perm_cache: tuple[int, np.ndarray] | None = None

    # ----------------------------------------------------------------- attributes
    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def end_position(self) -> int | None:
        """Global position where the stream ends (``None``: never)."""
        if self.max_sweeps is not None:
            return self.max_sweeps * self.sweep_length
        return self.max_samples

    def __len__(self) -> int:
        """Samples this rank sees in epoch 0 (with ``FULL_DATA_SWEEP``: its share of one sweep)."""
        return self.epoch_samples(0)

    # ----------------------------------------------------------------- the schedule
    def sweep_order(self, sweep: int) -> np.ndarray:
        """Dataset indexes in the order of sweep ``sweep`` (all ranks, before partitioning)."""
        if not self.randomize:
            return np.arange(self.num_samples, dtype=np.int64)
        if self._perm_cache is None or self._perm_cache[0] != sweep:
            if self.balanced:
                perm = balanced_order(self.sample_labels(), self.seed, sweep)
            else:
                perm = np.random.default_rng([self.seed, sweep]).permutation(self.num_samples)
            self._perm_cache = (sweep, perm.astype(np.int64))
        return self._perm_cache[1]

    def _local_positions(self, start: int, stop: int) -> Iterator[tuple[int, np.ndarray]]:
        """``(sweep, positions-in-sweep)`` of this rank for global positions ``[start, stop)``."""
        end = self.end_position
        if end is not None:
            stop = min(stop, end)
        length = self.sweep_length
        while start < stop:
            sweep, offset = divmod(start, length)
            upto = min(stop - sweep * length, length)
            first = offset + (self.rank - offset) % self.world_size
            yield sweep, np.arange(first, upto, self.world_size, dtype=np.int64)
            start = sweep * length + upto

    @property
    def balanced(self) -> bool:
        """Sweeps are class-balanced draws (``sampler="balanced"`` on a randomised source)."""
        return self.randomize and self.sampler == "balanced"

    def sample_labels(self) -> np.ndarray:
        """The class index (int64) of every sample ``0 .. num_samples - 1``; needed by the balanced sampler."""
        raise NotImplementedError(f"{type(self).__name__} does not expose its labels; it cannot sample balanced")

    def _plan(self, sweep: int, positions: np.ndarray) -> BatchPlan:
        indices = self.sweep_order(sweep)[positions]
        # A balanced sweep may hold a sample several times: key each occurrence by its position too.
        key_of = indices
        if self.balanced:
            key_of = self.num_samples * positions.astype(np.uint64) + indices.astype(np.uint64)
        return BatchPlan(
            indices=indices,
            sweeps=np.full(len(indices), sweep, dtype=np.int64),
            keys=sample_key(self.seed, sweep, key_of),
            ends_sweep=positions >= self.sweep_length - self.world_size,
        )

    def epoch_range(self, epoch: int) -> tuple[int, int]:
        """Global positions ``[start, stop)`` of epoch ``epoch``, clipped to the end of the stream."""
        start, stop = epoch * self.epoch_size, (epoch + 1) * self.epoch_size
        end = self.end_position
        if end is not None:
            start, stop = min(start, end), min(stop, end)
        return start, stop

    def epoch_samples(self, epoch: int) -> int:
        """How many samples this rank receives in epoch ``epoch``."""
        start, stop = self.epoch_range(epoch)
        return sum(len(p) for _, p in self._local_positions(start, stop))

    def num_batches(self, epoch: int, batch_size: int, drop_last: bool = False) -> int:
        n = self.epoch_samples(epoch)
        return n // batch_size if drop_last else -(-n // batch_size)

    def epoch_plans(self, epoch: int, batch_size: int, drop_last: bool = False) -> Iterator[BatchPlan]:
        """The batch plans of ``iter_epoch`` without loading anything."""
        if batch_size <= 0:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        start, stop = self.epoch_range(epoch)
        pending: list[BatchPlan] = []
        pending_n = 0
        for sweep, positions in self._local_positions(start, stop):
            plan = self._plan(sweep, positions)
            pending.append(plan)
            pending_n += len(plan)
            while pending_n >= batch_size:
                merged = BatchPlan.concat(pending)
                yield merged[:batch_size]
                rest = merged[batch_size:]
                pending, pending_n = ([rest], len(rest)) if len(rest) else ([], 0)
        if pending_n and not drop_last:
            yield BatchPlan.concat(pending)

    # ----------------------------------------------------------------- reading
    def iter_epoch(
        self, epoch: int, batch_size: int, drop_last: bool = False
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Yield ``(features, labels)`` batches of this rank's share of epoch ``epoch``."""
        for features, labels in self._load_batches(self.epoch_plans(epoch, batch_size, drop_last)):
            yield self._finish(features, labels)

    def next_minibatch(self, minibatch_size_in_samples: int) -> Minibatch | None:
        """CNTK ``next_minibatch``: the next ``n`` global positions (this rank's share of them).

        Never crosses a sweep boundary; ``None`` when the stream has ended. A rank's share may be
        empty for tiny ``n`` with many ranks; the cursor still advances so all ranks stay in step.
        """
        n = int(minibatch_size_in_samples)
        if n <= 0:
            raise ValueError(f"minibatch size must be > 0, got {n}")
        end = self.end_position
        if end is not None and self._cursor >= end:
            return None
        sweep = self._cursor // self.sweep_length
        stop = min(self._cursor + n, (sweep + 1) * self.sweep_length)
        if end is not None:
            stop = min(stop, end)
        parts = list(self._local_positions(self._cursor, stop))
        positions = parts[0][1] if parts else np.zeros(0, dtype=np.int64)
        plan = self._plan(sweep, positions)
        sweep_end = stop == (sweep + 1) * self.sweep_length
        self._cursor = stop
        if len(plan):
            features, labels = self._finish(*next(iter(self._load_batches(iter([plan])))))
        else:
            features, labels = self._finish(torch.zeros((0, *self.image_shape)), torch.zeros(0, dtype=torch.int64))
        return Minibatch(features=features, labels=labels, sweep_end=sweep_end, sweep=sweep)

    def get_checkpoint_state(self) -> dict[str, Any]:
        """The ``next_minibatch`` cursor (CNTK ``get_checkpoint_state``)."""
        return {"position": self._cursor, "seed": self.seed, "num_samples": self.num_samples}

    def restore_from_checkpoint(self, state: dict[str, Any]) -> None:
        if state.get("num_samples") != self.num_samples or state.get("seed") != self.seed:
            raise ValueError(f"checkpoint state {state} was written by a source with other data or seed")
        self._cursor = int(state["position"])

    # ----------------------------------------------------------------- subclass hooks
    @abstractmethod
    def _load_batch(self, plan: BatchPlan) -> tuple[torch.Tensor | np.ndarray, torch.Tensor | np.ndarray]:
        """Decode the samples of ``plan``: features ``n x C x H x W`` and ``n`` labels."""

    def _load_batches(self, plans: Iterable[BatchPlan]) -> Iterator[tuple[Any, Any]]:
        """Load plans in order; override to prefetch or parallelise."""
        for plan in plans:
            yield self._load_batch(plan)

    def _finish(self, features: Any, labels: Any) -> tuple[torch.Tensor, torch.Tensor]:
        features = torch.as_tensor(features)
        labels = torch.as_tensor(labels).to(torch.int64)
        if self.device is not None:
            non_blocking = self.device.type == "cuda"
            if non_blocking and features.device.type == "cpu":
                features = features.pin_memory()
            features = features.to(self.device, non_blocking=non_blocking)
            labels = labels.to(self.device, non_blocking=non_blocking)
        features = features.to(torch.float32)
        if self.channels_last and features.ndim == 4:
            features = features.contiguous(memory_format=torch.channels_last)
        return features, labels


_PLAN_FIELDS = ("indices", "sweeps", "keys", "ends_sweep")
