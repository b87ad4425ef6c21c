"""``rank``/``world_size`` on the reader: CNTK's ``numSubsets`` partitioning by sequence position."""

from __future__ import annotations

import numpy as np
import pytest

from amlvision import ctf

from .helpers import dense, sparse, write_text


@pytest.fixture
def jagged(tmp_path):
    """50 sequences (ids 100, 101, ...) of 1-7 lines each, as CNTK's jagged_sequences test files."""
    rng = np.random.default_rng(0)
    lines, expected = [], []
    for k in range(50):
        n = int(rng.integers(1, 8))
        values = rng.integers(0, 1000, size=(n, 3))
        expected.append((100 + k, values))
        for i, row in enumerate(values):
            head = f"{100 + k} " if i == 0 or rng.random() < 0.5 else ""  # lines without id continue
            lines.append(f"{head}|x {' '.join(map(str, row))} |y {k % 4}:1\n")
    return write_text(tmp_path, "".join(lines)), expected


STREAMS = {"x": dense("x", 3), "y": sparse("y", 4)}


@pytest.mark.parametrize("world_size", [2, 3, 7])
def test_sequence_i_goes_to_rank_i_mod_world_size(jagged, world_size):
    path, expected = jagged
    everything = ctf.read_arrays(path, STREAMS)
    shares = [ctf.read_arrays(path, STREAMS, rank=r, world_size=world_size, chunk_bytes=300) for r in range(world_size)]
    for rank, share in enumerate(shares):
        mine = [seq for i, seq in enumerate(expected) if i % world_size == rank]
        assert share.ids.tolist() == [seq_id for seq_id, _ in mine]
        assert share.data["x"].tolist() == np.concatenate([v for _, v in mine]).tolist()
        assert share.data["y"].shape == (len(share.data["x"]), 4)
        assert np.diff(share.offsets["x"]).tolist() == [len(v) for _, v in mine]
    assert sum(len(s) for s in shares) == len(everything) == 50
    # the same share whatever the chunk size, and through every API
    again = ctf.read(path, STREAMS, rank=1, world_size=world_size)
    assert [s.id for s in again] == shares[1].ids.tolist()
    assert [s.id for s in ctf.iter_sequences(path, STREAMS, rank=1, world_size=world_size, chunk_bytes=50)] == [
        s.id for s in again
    ]


def test_each_rank_parses_only_its_own_sequences(tmp_path):
    """As CNTK's workers: a malformed sequence stops only the rank that owns it."""
    path = write_text(tmp_path, "|x 1 2 3\n|x 1 x 3\n|x 4 5 6\n|x 7 8 9\n", "broken.ctf")
    assert [s.id for s in ctf.read(path, {"x": dense("x", 3)}, rank=0, world_size=2)] == [0, 2]
    with pytest.raises(ctf.CTFError, match=r"broken\.ctf:2:6: .*'x' is not a number"):
        ctf.read(path, {"x": dense("x", 3)}, rank=1, world_size=2)
    assert [s.id for s in ctf.read(path, {"x": dense("x", 3)}, rank=1, world_size=2, max_errors=1)] == [3]


@pytest.mark.parametrize(("rank", "world_size"), [(2, 2), (-1, 2), (0, 0), (True, 2)])
def test_bad_partition(rank, world_size):
    with pytest.raises(ValueError, match="rank|world_size"):
        ctf.read("unused", STREAMS, rank=rank, world_size=world_size)
